// Where one daemon keeps its files. Two places:
// - a state folder the harness sees (socket, pidfiles, logs, config), named with the owning
//   process id so `gc` can tell a killed run's leftovers from a live run's;
// - a private tmpfs over /run inside the daemon's own mount namespace (data root, exec root,
//   containerd's state, and whatever dockerd, containerd and the shims write under /run),
//   which the kernel drops with the last process of that namespace: no mount of the daemon
//   is ever visible in the starting mount namespace, and none can be left behind.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { currentMachine, type Machine } from '../../machine/machine.js';

export const STATE_PREFIX = 'docker-';
/** state folders: <base>/docker-<owner pid>-<hex> */
export const STATE_NAME_RE = /^docker-(\d+)-([0-9a-f]+)$/;

/** On this host NETCONFORM_STATE_DIR moves it; a guest's is its own (sockets cannot cross). */
export function stateBase(m: Machine = currentMachine(), env = process.env): string {
  return (m.local ? env.NETCONFORM_STATE_DIR : undefined) ?? join(m.runDir, 'netconform');
}

/** Inside the daemon's mount namespace only. */
const PRIVATE = '/run/netconform';

export interface DaemonPaths {
  id: string; // docker-<pid>-<hex>
  stateDir: string;
  socket: string;
  configFile: string;
  containerdConfig: string;
  dockerdPidfile: string;
  containerdPidfile: string;
  dockerdLog: string;
  containerdLog: string;
  /** cgroup (under each hierarchy's root) that holds every container of this daemon */
  cgroupParent: string;
  privateRoot: string;
  dataRoot: string;
  execRoot: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
}

export function pathsFor(id: string, base = stateBase()): DaemonPaths {
  const stateDir = join(base, id);
  return {
    id,
    stateDir,
    socket: join(stateDir, 'docker.sock'),
    configFile: join(stateDir, 'daemon.json'),
    containerdConfig: join(stateDir, 'containerd.toml'),
    dockerdPidfile: join(stateDir, 'dockerd.pid'),
    containerdPidfile: join(stateDir, 'containerd.pid'),
    dockerdLog: join(stateDir, 'dockerd.log'),
    containerdLog: join(stateDir, 'containerd.log'),
    cgroupParent: `netconform-${id}`,
    privateRoot: PRIVATE,
    dataRoot: `${PRIVATE}/data`,
    execRoot: `${PRIVATE}/exec`,
    containerdRoot: `${PRIVATE}/containerd/root`,
    containerdState: `${PRIVATE}/containerd/state`,
    containerdSocket: `${PRIVATE}/containerd/containerd.sock`,
  };
}

export function newDaemonPaths(base = stateBase()): DaemonPaths {
  return pathsFor(`${STATE_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`, base);
}

/** The shared state base goes when the last daemon of any run is gone. */
export async function removeIfEmpty(dir: string, m: Machine = currentMachine()): Promise<void> {
  await m.rmdir(dir); // fails while another run's daemons are in it
}
