// A real dockerd in the guest, guest side. The guest's /tmp is the host's /tmp under an
// overlay, so the daemons' state folders go to a folder the host never writes: the guest's
// pool and gc then see only the guest's own daemons (never a host run's state, which would
// look dead from the guest's pid namespace). The dockerd to certify is the host's choice.
import { gcDockerDaemons } from '../engine/docker/gc.js';
import { configureDockerPool } from '../engine/docker/pool.js';

export const GUEST_STATE_DIR = '/tmp/netconform-guest';

export function prepareGuestDocker(dockerds: Record<string, string> = {}): void {
  process.env.NETCONFORM_STATE_DIR = GUEST_STATE_DIR;
  for (const [label, dockerd] of Object.entries(dockerds)) configureDockerPool({ label, dockerd });
}

/** After the suite: what the pool failed to stop (state folders, daemons, container cgroups), removed and named. */
export async function dockerLeftovers(): Promise<string[]> {
  return (await gcDockerDaemons({ all: true })).removed;
}
