// testcontainers' runtime client, pointed at the daemon of the scenario under way.
//
// testcontainers keeps one client per process (getContainerRuntimeClient() caches it, found
// through DOCKER_HOST), while a run has several daemons, one per set of daemon options. The
// client is created once against the first daemon, and its container, image and network
// clients are pointed at the daemon in use before each scenario; scenarios run one at a time.
import Dockerode from 'dockerode';
import { getContainerRuntimeClient, type ContainerRuntimeClient } from 'testcontainers';

let pointedAt: string | undefined;

function configure(socket: string): void {
  // The harness owns cleanup (no Ryuk: its image cannot be pulled here anyway), and the
  // host is this machine: without the override testcontainers pulls alpine to find it.
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true';
  process.env.TESTCONTAINERS_HOST_OVERRIDE = 'localhost';
  process.env.DOCKER_HOST = `unix://${socket}`;
}

/** The testcontainers client, talking to the daemon on `socket`. */
export async function runtimeClient(socket: string): Promise<ContainerRuntimeClient> {
  if (pointedAt === undefined) configure(socket);
  const client = await getContainerRuntimeClient();
  if (pointedAt !== socket) {
    const docker = new Dockerode({ socketPath: socket });
    for (const part of [client.container, client.image, client.network]) (part as unknown as { dockerode: Dockerode }).dockerode = docker;
    pointedAt = socket;
  }
  return client;
}
