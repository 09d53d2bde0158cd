// The real Docker engine: a dockerd of the run's pool (see pool.ts), driven through
// testcontainers for containers and through the Engine API (dockerode, which testcontainers
// carries) for what testcontainers does not expose: networks with options, --internal,
// links, fixed addresses, aliases, connect/disconnect. Everything the harness knows about
// the lab (addresses, bridges, published ports) is read back from the engine, never assumed.
import type Dockerode from 'dockerode';
import { GenericContainer } from 'testcontainers';
import type { ContainerSpec, HostSpec, NetworkSpec, Scenario } from '../../scenario/types.js';
import { EngineError, type ContainerInfo, type Engine, type EngineContext, type NetworkInfo, type PortBinding } from '../types.js';
import { withClient } from './client.js';
import { HANG_GUARD_MS, processGone, type Machine } from '../../machine/machine.js';
import { IMAGE } from './image.js';
import { containerInfo, networkInfo, parseEnviron, portBindings } from './inspect.js';
import { dockerPool, type DaemonPool, type PooledDaemon } from './pool.js';
import { connectRequest, containerRequest, dockerName, networkRequest, type ContainerRequest } from './requests.js';

/** The main process runs once started: the probes enter its namespaces, nothing to wait for. */
const RUNNING = {
  startupTimeoutMs: 10_000,
  async waitUntilReady() {},
  withStartupTimeout(ms: number) {
    this.startupTimeoutMs = ms;
    return this;
  },
  isStartupTimeoutSet: () => false,
  getStartupTimeout() {
    return this.startupTimeoutMs;
  },
};

/** A `docker run` with the full request (testcontainers' fluent API lacks links, HostIp, fixed IPs). */
class ScenarioContainer extends GenericContainer {
  constructor(req: ContainerRequest) {
    super(IMAGE);
    const { NetworkMode, ...hostConfig } = req.hostConfig;
    this.createOpts = { ...this.createOpts, ...req.create };
    this.hostConfig = { ...this.hostConfig, ...hostConfig };
    this.withNetworkMode(NetworkMode!).withWaitStrategy(RUNNING).withAutoCleanup(false).withAutoRemove(false);
  }
}

async function interfaceAddress(ctx: EngineContext, ifname: string): Promise<string> {
  const [link] = await ctx.lab.ipJson(ctx.hostNs, ['-4', 'addr', 'show', 'dev', ifname]);
  return link?.addr_info?.[0]?.local ?? '';
}

function firstHost(cidr: string): string {
  const [base] = cidr.split('/');
  const n = base.split('.').reduce((a, o) => a * 256 + Number(o), 0) + 1;
  return [24, 16, 8, 0].map((sh) => Math.floor(n / 2 ** sh) % 256).join('.');
}

/** The daemon's message ("Bind for 0.0.0.0:8080 failed: port is already allocated"), not the HTTP wrapping. */
function engineMessage(e: unknown): string {
  const j = (e as { json?: { message?: string } }).json;
  return (j?.message ?? (e as Error).message ?? String(e)).trim();
}

export interface DockerTimings {
  daemonStartMs?: number;
  imageMs?: number;
  /** true when this scenario started the daemon, false when it reused one */
  freshDaemon?: boolean;
  /** per container: `docker run` until inspected */
  containerMs: Record<string, number>;
}

interface Running {
  spec: ContainerSpec;
  info: ContainerInfo;
  ports: PortBinding[];
}

export class DockerEngine implements Engine {
  readonly name = 'docker';
  private d?: PooledDaemon;
  private docker?: Dockerode;
  private sc?: Scenario;
  private host?: HostSpec;
  private ctx?: EngineContext;
  private readonly nets = new Map<string, NetworkInfo>();
  private readonly conts = new Map<string, Running>();
  /**
   * a scenario that made the daemon hand out ephemeral ports or default address pools leaves
   * its allocators moved on (libnetwork's IPAM rolls over to the pool after the last one it
   * gave, even once that is free again): such a daemon is not reused
   */
  private dirty = false;
  readonly timings: DockerTimings = { containerMs: {} };
  private logFrom = { dockerd: 0, containerd: 0 };

  constructor(private readonly pool: DaemonPool = dockerPool()) {}

  describe(): string {
    const v = this.d?.daemon?.install.version.replace(/^Docker version /, '') ?? '';
    return `dockerd ${v}`.trim();
  }

  async provideHost(sc: Scenario, host: HostSpec): Promise<string> {
    this.sc = sc;
    this.host = host;
    // a flush or a firewall reload rewrites every table (it makes the raw and mangle tables
    // where there were none): a reset to the daemon's start state cannot undo that
    if (sc.phases.some((p) => p.steps.some((s) => (s.kind === 'flush-rules' || s.kind === 'reload-firewall') && s.host === host.name))) this.dirty = true;
    this.d = await this.pool.acquire(host);
    // a pooled daemon served earlier scenarios: this one's part of its logs starts here
    const m = this.pool.machine;
    this.logFrom = { dockerd: (await readLog(m, this.d.paths.dockerdLog)).length, containerd: (await readLog(m, this.d.paths.containerdLog)).length };
    return this.d.hostNs;
  }

  /** dockerd's and containerd's log lines of this scenario (from the daemon's start when it started for it). */
  async evidence(): Promise<{ name: string; text: string }[]> {
    if (!this.d) return [];
    const m = this.pool.machine;
    return [
      { name: 'dockerd.log', text: await readFrom(m, this.d.paths.dockerdLog, this.logFrom.dockerd) },
      { name: 'containerd.log', text: await readFrom(m, this.d.paths.containerdLog, this.logFrom.containerd) },
    ].filter((e) => e.text);
  }

  async start(ctx: EngineContext): Promise<void> {
    if (!this.d || !this.host) throw new Error('the docker engine needs provideHost() before start()');
    const fresh = !this.d.daemon;
    await this.pool.prepare(this.d, this.host, ctx.log);
    this.timings.freshDaemon = fresh;
    this.timings.daemonStartMs = fresh ? this.d.times?.startMs : 0;
    this.timings.imageMs = fresh ? this.d.times?.imageMs : 0;
    this.docker = this.d.docker!;
    this.ctx = ctx;
    this.nets.set('bridge', await this.readNetwork('bridge', await this.docker.getNetwork('bridge').inspect()));
  }

  private async readNetwork(name: string, inspect: Dockerode.NetworkInspectInfo): Promise<NetworkInfo> {
    const info = networkInfo(name, inspect);
    // dockerd leaves the gateway out of the IPAM config when it chose it itself (the default
    // bridge, a network given only a subnet): the bridge interface carries it
    if (!info.gateway && info.bridge && inspect.Driver === 'bridge') info.gateway = await interfaceAddress(this.ctx!, info.bridge);
    // a macvlan network has no interface that carries it: IPAM reserved the subnet's first address
    if (!info.gateway && inspect.Driver === 'macvlan' && info.subnet) info.gateway = firstHost(info.subnet);
    return info;
  }

  private dockerOf(): Dockerode {
    if (!this.docker) throw new Error('docker engine not started');
    return this.docker;
  }

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    if (!spec.subnet) this.dirty = true;
    try {
      const net = await withClient(this.d!.api!, (c) => c.network.create(networkRequest(spec, this.sc!.id)));
      const info = await this.readNetwork(spec.name, await net.inspect());
      this.nets.set(spec.name, info);
      return info;
    } catch (e) {
      throw new EngineError(engineMessage(e));
    }
  }

  private networkNames(): Map<string, string> {
    return new Map([...this.nets.keys()].map((n) => [n, n]));
  }

  /** Inspect again (addresses and ports change with connect/disconnect and restarts). */
  private async refresh(name: string): Promise<Running> {
    const r = this.conts.get(name)!;
    const c = await this.dockerOf().getContainer(dockerName(name)).inspect();
    const env = await mainProcessEnv(this.pool.machine, c.State.Pid);
    r.info = containerInfo(r.spec, c, env, this.networkNames());
    if (r.info.mode === 'container') {
      // it has the other container's network namespace, and so its addresses
      const other = this.conts.get(r.spec.network.slice('container:'.length));
      if (other) Object.assign(r.info, { addresses: { ...other.info.addresses }, ip: other.info.ip });
    }
    r.ports = portBindings(r.spec.name, c);
    return r;
  }

  async runContainer(spec: ContainerSpec): Promise<ContainerInfo> {
    const t0 = performance.now();
    if (spec.publishAll || spec.publish.some((p) => p.hostPort === undefined)) this.dirty = true;
    try {
      // testcontainers finds its client itself: hold it, pointed at this daemon
      await withClient(this.d!.api!, () => new ScenarioContainer(containerRequest(spec, this.sc!.id)).start());
    } catch (e) {
      // `docker run` leaves a refused container created but not running (nothing of it is in
      // the kernel); a name conflict (409) is another container's, which stays
      if ((e as { statusCode?: number }).statusCode !== 409) await this.dockerOf().getContainer(dockerName(spec.name)).remove({ force: true }).catch(() => {});
      throw new EngineError(engineMessage(e));
    }
    this.conts.set(spec.name, { spec, info: { name: spec.name, netnsPath: '', env: [], addresses: {}, mode: 'bridge' }, ports: [] });
    for (const n of spec.networks) await this.connectTo(spec.name, n, spec.aliases);
    const r = await this.refresh(spec.name);
    this.timings.containerMs[spec.name] = performance.now() - t0;
    return r.info;
  }

  private async connectTo(container: string, network: string, aliases: string[] = []): Promise<void> {
    try {
      await this.dockerOf().getNetwork(network).connect(connectRequest(container, { aliases: network === 'bridge' ? [] : aliases }));
    } catch (e) {
      throw new EngineError(engineMessage(e));
    }
  }

  async connect(container: string, network: string): Promise<void> {
    const r = this.mustGet(container);
    await this.connectTo(container, network, r.spec.aliases);
    await this.refresh(container);
  }

  async disconnect(container: string, network: string): Promise<void> {
    this.mustGet(container);
    try {
      await this.dockerOf().getNetwork(network).disconnect({ Container: dockerName(container), Force: false });
    } catch (e) {
      throw new EngineError(engineMessage(e));
    }
    await this.refresh(container);
  }

  async remove(container: string): Promise<void> {
    this.mustGet(container);
    try {
      await this.dockerOf().getContainer(dockerName(container)).remove({ force: true, v: true });
    } catch (e) {
      throw new EngineError(engineMessage(e));
    }
    this.conts.delete(container);
  }

  /** `docker rm --link /<container>/<alias>` */
  async unlink(container: string, alias: string): Promise<void> {
    this.mustGet(container);
    try {
      await this.dockerOf().getContainer(`${dockerName(container)}/${alias}`).remove({ link: true });
    } catch (e) {
      throw new EngineError(engineMessage(e));
    }
    await this.refresh(container);
  }

  /** A daemon restart: dockerd reprograms its rules at start; containers live on (--live-restore). */
  async reloadRules(): Promise<void> {
    await this.d!.daemon!.restart();
    for (const name of this.conts.keys()) await this.refresh(name);
  }

  async sync(): Promise<void> {
    /* the API returns when the work is done */
  }

  private mustGet(name: string): Running {
    const r = this.conts.get(name);
    if (!r) throw new EngineError(`No such container: ${name}`);
    return r;
  }

  networks(): NetworkInfo[] {
    return [...this.nets.values()];
  }

  containers(): ContainerInfo[] {
    return [...this.conts.values()].map((c) => c.info);
  }

  ports(): PortBinding[] {
    return [...this.conts.values()].flatMap((c) => c.ports);
  }

  /** Give the daemon back to the pool, emptied; the lab is still there (its teardown runs after). */
  async stop(): Promise<void> {
    const d = this.d;
    this.d = undefined;
    if (d) await this.pool.release(d, !this.dirty);
  }
}

/**
 * The environment of a container's main process. Right after the start its pid may still be
 * runc's init, whose environment is not the container's: wait for the exec (dockerd always
 * gives the process HOSTNAME), however long a loaded machine makes it (a fixed second once
 * read runc's environment); an exited container has none.
 */
async function mainProcessEnv(m: Machine, pid: number): Promise<string[]> {
  const t0 = performance.now();
  for (;;) {
    if (performance.now() - t0 > HANG_GUARD_MS) throw new Error(`the container's process ${pid} never ran its program (no HOSTNAME in its environment after ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    if (await processGone(m, pid)) return []; // a zombie's environ reads empty
    let env: string[];
    try {
      env = parseEnviron(await m.readFile(`/proc/${pid}/environ`));
    } catch {
      return []; // not running
    }
    if (env.some((kv) => kv.startsWith('HOSTNAME='))) return env;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A daemon's log on its machine (a guest's logs are in the guest), as bytes; empty when it is not there. */
async function readLog(m: Machine, path: string): Promise<Buffer> {
  return Buffer.from(await m.readFile(path).catch(() => ''));
}

/** A log file from a byte offset on (at most its last 4 MB). */
async function readFrom(m: Machine, path: string, offset: number): Promise<string> {
  const log = await readLog(m, path);
  return log.subarray(Math.max(offset, log.length - (4 << 20))).toString('utf8');
}
