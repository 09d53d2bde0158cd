// testcontainers' runtime client, pointed at the daemon of the scenario under way.
//
// testcontainers keeps one client per process (getContainerRuntimeClient() caches it, found
// through DOCKER_HOST), while a run has several daemons, one per set of daemon options. The
// client is created once against the first daemon, and its container, image and network
// clients are pointed at the daemon of each request. Docker hosts of one scenario build in
// parallel, so every use of the shared client holds it (withClient) until the request is done.
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

let held: Promise<unknown> = Promise.resolve();

/** Run `fn` with the shared testcontainers client pointed at `socket`, one caller at a time. */
export function withClient<T>(socket: string, fn: (client: ContainerRuntimeClient) => Promise<T>): Promise<T> {
  const turn = held.then(async () => fn(await runtimeClient(socket)));
  held = turn.catch(() => {});
  return turn;
}

/** The testcontainers client, talking to the daemon on `socket` (see withClient). */
async function runtimeClient(socket: string): Promise<ContainerRuntimeClient> {
  if (pointedAt === undefined) configure(socket);
  const client = await getContainerRuntimeClient();
  if (pointedAt !== socket) {
    const docker = new Dockerode({ socketPath: socket });
    for (const part of [client.container, client.image, client.network]) (part as unknown as { dockerode: Dockerode }).dockerode = docker;
    pointedAt = socket;
  }
  return client;
}
