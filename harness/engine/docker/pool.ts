// Daemons of one run, shared by scenarios with the same daemon options (and the same host
// sysctls and pre-start rules, which the daemon's start reacts to). Each daemon lives in a
// host namespace of its own, a lab of its own (so Ctrl-C and `gc` treat it like any lab);
// a scenario's lab adopts that namespace as its `host`. Between scenarios the daemon is
// emptied (containers, networks) and its namespace reset; a daemon whose memory a scenario
// changed in ways a reset cannot undo (its ephemeral port allocator) is not reused.
// Each machine (this host, a microVM guest) has a pool of its own.
import Dockerode from 'dockerode';
import { Lab } from '../../lab/lab.js';
import { currentMachine, type Machine } from '../../machine/machine.js';
import type { HostSpec } from '../../scenario/types.js';
import { DockerDaemon } from './daemon.js';
import { Firewalld } from '../../lab/firewalld.js';
import { machineIptablesVariant } from '../../rules/iptables/tools.js';
import { dataRootSeed } from './seed.js';
import { bridgeSetup, daemonKey } from './flags.js';
import { ensureImage } from './image.js';
import { linkNames, resetHost, restoreHost, snapshotHost, type HostSnapshot } from './hoststate.js';
import { DockerNotFoundError, type DockerInstall } from './locate.js';
import { buildFor } from './builds.js';
import { parseTarget } from '../../targets.js';
import { newDaemonPaths, removeIfEmpty, stateBase, type DaemonPaths } from './paths.js';

const HOST = 'host';
const PREDEFINED_NETWORKS = new Set(['bridge', 'host', 'none']);

export interface DaemonTimes {
  /** spawning containerd and dockerd until the API answered */
  startMs: number;
  /** `docker import` of the busybox image */
  imageMs: number;
}

export interface PooledDaemon {
  key: string;
  lab: Lab;
  /** full name of the host namespace (what a scenario's lab adopts) */
  hostNs: string;
  paths: DaemonPaths;
  /** the API socket as this process reaches it (a guest's is forwarded) */
  api?: string;
  daemon?: DockerDaemon;
  docker?: Dockerode;
  snapshot?: HostSnapshot;
  times?: DaemonTimes;
  /** scenarios served so far */
  served: number;
}

export interface PoolOptions {
  /** the target whose daemons these are ("docker", "docker:docker-28"): which build, which profile */
  label?: string;
  /** dockerd binary to certify (default: NETCONFORM_DOCKERD, the engine cache for a named release, then PATH) */
  dockerd?: string;
  /** the build, when the edge has located and checked it already (a guest's pool takes the host's: it sees the same files) */
  install?: DockerInstall;
  /** idle daemons kept for later scenarios (default 6, about 60 MB each) */
  maxIdle?: number;
}

export class DaemonPool {
  private installation?: Promise<DockerInstall>;
  private readonly idle: PooledDaemon[] = []; // least recently used first
  private readonly all = new Set<PooledDaemon>();
  private readonly stopping = new Set<Promise<unknown>>();

  constructor(
    private readonly opts: PoolOptions = {},
    readonly machine: Machine = currentMachine(),
  ) {}

  /**
   * The dockerd build in use; rejects with DockerNotFoundError when there is none, or when its
   * version is another release than the pool's target expects.
   */
  install(): Promise<DockerInstall> {
    this.installation ??= this.opts.install ? Promise.resolve(this.opts.install) : this.locate();
    return this.installation;
  }

  private async locate(): Promise<DockerInstall> {
    const label = this.opts.label ?? 'docker';
    const b = await buildFor(parseTarget(label), { dockerd: this.opts.dockerd });
    if (b.label !== label) throw new DockerNotFoundError(`${b.install.dockerd} is ${b.install.version.replace(/,.*/, '')}: run it as --engine docker:${b.profile.slice('docker-'.length)} (profile ${b.profile}), not ${label}`);
    return b.install;
  }

  /** A daemon for one Docker host of a scenario: an idle one with the same key, or a new (not yet started) one. */
  async acquire(h: HostSpec): Promise<PooledDaemon> {
    await this.install();
    const key = daemonKey(h.daemon, h);
    const i = this.idle.findIndex((d) => d.key === key);
    if (i >= 0) return this.idle.splice(i, 1)[0];
    const lab = Lab.create();
    const d: PooledDaemon = { key, lab, hostNs: lab.ns(HOST), paths: newDaemonPaths(stateBase(this.machine)), served: 0 };
    this.all.add(d);
    lab.onDestroy(async () => {
      this.all.delete(d);
      await d.daemon?.stop();
      await this.machine.rm(d.paths.stateDir);
    });
    await lab.addNamespaces([HOST]);
    return d;
  }

  /**
   * Called once the scenario's lab has prepared the host namespace (its outside link,
   * sysctls, pre-start rules): start the daemon there, or restore its start state.
   */
  async prepare(d: PooledDaemon, h: HostSpec, log: (l: string) => void): Promise<void> {
    if (d.daemon && d.snapshot) {
      await restoreHost(d.lab, HOST, d.snapshot);
      return;
    }
    const install = await this.install();
    const linksBefore = await linkNames(d.lab, HOST);
    await d.lab.ip(HOST, bridgeSetup(h.daemon));
    // the host firewall comes up first and the daemon finds it on the lab's bus (it lives, and
    // is stopped, with the daemon's lab; scenarios that adopt the namespace reload it)
    const fw = h.firewalld ? await Firewalld.start(d.lab, HOST, log) : undefined;
    d.daemon = new DockerDaemon(install, d.paths, d.lab.nsPath(HOST), h.daemon, this.machine, h.iptables ?? (await machineIptablesVariant()), { ...h.daemonEnv, ...(fw ? { DBUS_SYSTEM_BUS_ADDRESS: fw.bus } : {}) });
    const seed = await this.seed(install, log);
    const { startMs } = await d.daemon.start(seed);
    d.api = await d.daemon.api();
    d.docker = new Dockerode({ socketPath: d.api });
    const imageMs = await ensureImage(d.docker);
    d.times = { startMs, imageMs };
    // storage and cgroups depend on the kernel it runs on (a microVM guest's differs from the host's)
    const info = (await d.docker.info()) as { Driver?: string; CgroupVersion?: string; CgroupDriver?: string };
    const image = seed && imageMs === 0 ? 'image from the seeded data root' : `image imported in ${imageMs.toFixed(0)} ms`;
    log(`dockerd started in ${d.hostNs} in ${startMs.toFixed(0)} ms, ${image} (storage ${info.Driver}, cgroup v${info.CgroupVersion} ${info.CgroupDriver})`);
    d.snapshot = await snapshotHost(d.lab, HOST, Object.keys(h.sysctls), linksBefore, d.daemon.iptables);
  }

  /**
   * A guest's daemons start from a seeded data root (seed.ts): an import there costs seconds.
   * This host imports in a tenth of a second, less than making a seed costs. Without a seed, they import.
   */
  private async seed(install: DockerInstall, log: (l: string) => void): Promise<string | undefined> {
    if (this.machine.local) return undefined;
    return dataRootSeed(install).catch((e: Error) => {
      log(`no seeded data root (${e.message.split('\n')[0]}): the daemon imports the image`);
      return undefined;
    });
  }

  /** Empty the daemon and its namespace; keep it for later scenarios when it can serve them. */
  async release(d: PooledDaemon, reusable: boolean): Promise<void> {
    d.served++;
    if (!this.all.has(d)) return; // already torn down (Ctrl-C)
    if (d.daemon && d.docker && d.snapshot) {
      try {
        await emptyDaemon(d.docker);
        await resetHost(d.lab, HOST, d.snapshot);
      } catch (e) {
        process.stderr.write(`warning: could not reset dockerd ${d.paths.id} for reuse: ${(e as Error).message}\n`);
        reusable = false;
      }
    } else {
      reusable = false;
    }
    if (reusable) this.idle.push(d);
    else this.retire(d);
    while (this.idle.length > (this.opts.maxIdle ?? 6)) this.retire(this.idle.shift()!);
  }

  /** Stop a daemon in the background (dockerd takes a second or two to shut down); shutdown() waits. */
  private retire(d: PooledDaemon): void {
    const p = d.lab.destroy().catch((e: Error) => process.stderr.write(`warning: stopping dockerd ${d.paths.id}: ${e.message}\n`));
    this.stopping.add(p);
    void p.finally(() => this.stopping.delete(p));
  }

  /** Stop every daemon of this pool. */
  async shutdown(): Promise<void> {
    this.idle.length = 0;
    await Promise.all([...[...this.all].map((d) => d.lab.destroy()), ...this.stopping]);
    if (this.machine.alive()) await removeIfEmpty(stateBase(this.machine), this.machine);
  }

  /** Daemons alive now (for reports and tests). */
  daemons(): PooledDaemon[] {
    return [...this.all];
  }
}

/** Remove every container (killed, not stopped: the idle process ignores SIGTERM) and network. */
async function emptyDaemon(docker: Dockerode): Promise<void> {
  const containers = await docker.listContainers({ all: true });
  await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })));
  const networks = await docker.listNetworks();
  await Promise.all(networks.filter((n) => !PREDEFINED_NETWORKS.has(n.Name)).map((n) => docker.getNetwork(n.Id).remove()));
}

/** The pools of this process: per machine (this host, a guest), one per docker target. */
const pools = new Map<Machine, Map<string, DaemonPool>>();

function poolsHere(): Map<string, DaemonPool> {
  const m = currentMachine();
  let here = pools.get(m);
  if (!here) pools.set(m, (here = new Map()));
  return here;
}

/** The pool of a docker target on the current machine ("docker" is Debian's 20.10, or the --dockerd build). */
export function dockerPool(label = 'docker'): DaemonPool {
  const here = poolsHere();
  let p = here.get(label);
  if (!p) here.set(label, (p = new DaemonPool({ label })));
  return p;
}

/** Choose the dockerd of a target (`run --dockerd PATH`, a cached release) before its first scenario on this machine. */
export function configureDockerPool(opts: PoolOptions): DaemonPool {
  const label = opts.label ?? 'docker';
  const here = poolsHere();
  if (here.get(label)?.daemons().length) throw new Error(`the docker daemon pool of ${label} is in use; configure it before the first scenario`);
  const p = new DaemonPool({ ...opts, label });
  here.set(label, p);
  return p;
}

/** Stop the daemons of one target (its last scenario is done), or of every target of this process, on the current machine. */
export async function shutdownDockerPool(label?: string): Promise<void> {
  const here = poolsHere();
  const which = label === undefined ? [...here.keys()] : [label];
  const stopping = which.map((l) => here.get(l)).filter((p): p is DaemonPool => p !== undefined);
  for (const l of which) here.delete(l);
  if (here.size === 0) pools.delete(currentMachine());
  await Promise.all(stopping.map((p) => p.shutdown()));
}
