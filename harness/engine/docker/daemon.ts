// One real Docker daemon inside a lab host namespace: its own containerd, a private mount
// namespace with a tmpfs over /run (see paths.ts), private data and exec roots, pidfiles and
// a socket, on the machine the lab is on (this host, or a microVM guest). Readiness is waited
// for on events, never by polling against a clock: containerd's wrapper writes its pidfile
// once the private /run is mounted; dockerd's API answers a request that waits in its
// socket's queue until it serves, and either process exiting ends the wait with its log.
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import type { DaemonOptions } from '../../scenario/types.js';
import { xtablesMulti, type IptablesVariant } from '../../rules/iptables/tools.js';
import type { DockerInstall } from './locate.js';
import type { DaemonPaths } from './paths.js';
import { dockerdArgs } from './flags.js';
import { removeCgroup } from './cgroups.js';
import { hangGuard, type Machine, type MachineProcess } from '../../machine/machine.js';
import { runOn } from '../../lab/exec.js';

/**
 * Before SIGKILL: a daemon's own shutdown (dockerd with live-restore takes well under a second
 * here). Not a verdict: a daemon killed at its end leaves nothing the teardown misses.
 */
const SHUTDOWN_GRACE_MS = 30_000;

function containerdConfig(p: DaemonPaths): string {
  // The CRI plugin is Kubernetes' and would only slow the start down.
  return [
    'version = 2',
    `root = "${p.containerdRoot}"`,
    `state = "${p.containerdState}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${p.containerdSocket}"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${p.privateRoot}/containerd/opt"`,
    '',
  ].join('\n');
}

/**
 * GET /_ping on a unix socket (a path on this host); true when the daemon answers OK. Without a
 * timeout the request waits in the socket's queue until the daemon serves: that is the event.
 */
export function ping(socket: string, timeoutMs?: number): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', agent: false, ...(timeoutMs ? { timeout: timeoutMs } : {}) }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}

export interface StartTimes {
  /** spawn to API ready, ms */
  startMs: number;
}

export class DockerDaemon {
  private containerd?: MachineProcess;
  private dockerd?: MachineProcess;
  private apiSocket?: string;

  constructor(
    readonly install: DockerInstall,
    readonly paths: DaemonPaths,
    /** /run/netns/<lab host> */
    readonly netnsPath: string,
    readonly options: DaemonOptions,
    readonly machine: Machine,
    /** the host's iptables: what `iptables` is on the daemon's PATH */
    readonly iptables: IptablesVariant,
    /** further environment (DBUS_SYSTEM_BUS_ADDRESS of the lab's firewalld) */
    readonly extraEnv: Record<string, string> = {},
  ) {}

  get socket(): string {
    return this.paths.socket;
  }

  /** The API socket as this process reaches it (a guest's is forwarded). */
  async api(): Promise<string> {
    this.apiSocket ??= await this.machine.unixSocket(this.paths.socket);
    return this.apiSocket;
  }

  private env(): Record<string, string> {
    // the host's iptables variant first (the machine's alternatives are never consulted), then
    // companions (runc, shims, docker-proxy) from the certified build's folder
    return { ...this.extraEnv, PATH: [this.iptablesShim(), this.install.binDir, this.machine.baseEnv.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'].join(delimiter) };
  }

  /**
   * A folder whose iptables, iptables-save, iptables-restore (and ip6tables …) are the host's
   * variant: links to xtables-legacy-multi or xtables-nft-multi, which act by the name they are
   * called with. dockerd runs `iptables` from its PATH. Made with this process's own file calls:
   * here in the daemon's state folder; for a guest in the shared folder, which the guest sees at
   * the same path (and whose root is this machine's, so the links resolve there too).
   */
  private iptablesShim(): string {
    const m = this.machine;
    const dir = join(m.local ? this.paths.stateDir : m.sharedDir, `iptables-${this.iptables}`);
    const multi = findOnPath(xtablesMulti(this.iptables));
    if (!multi) throw new Error(`${xtablesMulti(this.iptables)} not found: the host's iptables is ${this.iptables}, whose binaries Debian's iptables package installs (apt-get install -y iptables)`);
    mkdirSync(dir, { recursive: true });
    for (const base of ['iptables', 'ip6tables']) {
      for (const tool of [base, `${base}-save`, `${base}-restore`]) if (!existsSync(join(dir, tool))) symlinkSync(multi, join(dir, tool));
    }
    return dir;
  }

  private async tail(file: string, lines = 15): Promise<string> {
    const text = await this.machine.readFile(file).catch(() => '(no log)');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  }

  /**
   * Start containerd, then dockerd. `seed`: a tar of a data root (seed.ts) unpacked into the
   * fresh one first, so that the image is there without an import.
   */
  async start(seed?: string): Promise<StartTimes> {
    const p = this.paths;
    const m = this.machine;
    const t0 = performance.now();
    await m.mkdir(p.stateDir);
    await m.writeFile(p.configFile, '{}\n');
    await m.writeFile(p.containerdConfig, containerdConfig(p));
    // A private mount namespace whose /run is a fresh tmpfs: everything the daemon mounts or
    // writes there disappears with its last process. The wrapper writes containerd's pidfile
    // once /run is mounted (and seeded: the tar holds paths under /run), dockerd joins that
    // mount namespace next; `exec` keeps the pid.
    const wrapper = `pidfile=$0 seed=$1; shift; mount -t tmpfs -o mode=0755 netconform /run && { [ -z "$seed" ] || tar -xf "$seed" -C /run; } && echo $$ > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile" && exec "$@"`;
    this.containerd = await m.spawn('unshare', ['--mount', '--propagation', 'private', '--', 'sh', '-c', wrapper, p.containerdPidfile, seed ?? '', this.install.containerd, '--config', p.containerdConfig], {
      netns: this.netnsPath,
      detached: true,
      logFile: p.containerdLog,
      env: this.env(),
    });
    const mounted = await m.waitForPath(p.containerdPidfile, this.containerd.exited);
    if (!mounted) throw new Error(`containerd exited (${exitText(this.containerd)}) before it started:\n${await this.tail(p.containerdLog)}`);
    await this.startDockerd();
    return { startMs: performance.now() - t0 };
  }

  private async startDockerd(): Promise<void> {
    const p = this.paths;
    const m = this.machine;
    await m.rm(p.socket); // a previous dockerd's socket would refuse the first request
    const args = dockerdArgs(this.options, p, this.install.proxy);
    const dockerd = await m.spawn(this.install.dockerd, args, { netns: this.netnsPath, mntns: `/proc/${this.containerd!.pid}/ns/mnt`, detached: true, logFile: p.dockerdLog, env: this.env() });
    this.dockerd = dockerd;
    // the one limit left: a daemon that neither answers nor exits (it starts in about a second
    // here, in a minute in an emulated guest beside six others)
    let hung: string | undefined;
    const guard = hangGuard(undefined, (why) => {
      hung = why;
      dockerd.kill('SIGKILL');
    });
    try {
      const api = await this.api();
      for (;;) {
        // the socket appears before dockerd serves (it listens early, then initialises)
        if (await m.waitForPath(p.socket, dockerd.exited)) {
          const answered = await Promise.race([ping(api), dockerd.exited.then(() => false)]);
          if (answered) return;
        }
        if (dockerd.exit) {
          const why = hung ? `did not answer and was killed: ${hung}` : `exited (${exitText(dockerd)}) before its API answered`;
          throw new Error(`dockerd ${why}; ${p.dockerdLog}:\n${await this.tail(p.dockerdLog)}`);
        }
        // refused: the socket was bound but not yet listening; it will be in a moment
        await new Promise((r) => setTimeout(r, 10));
      }
    } finally {
      guard.clear();
    }
  }

  /** Stop and start dockerd again (containers live on: --live-restore), as an operator's restart. */
  async restart(): Promise<void> {
    await terminate(this.dockerd);
    await this.startDockerd();
  }

  async logTail(): Promise<string> {
    return `dockerd:\n${await this.tail(this.paths.dockerdLog)}\ncontainerd:\n${await this.tail(this.paths.containerdLog)}`;
  }

  /**
   * Stop dockerd (containerd and the private /run stay) and write the named folders of its data
   * root, as paths under /run, to a tar at `file` (on the daemon's machine).
   */
  async exportDataRoot(folders: string[], file: string): Promise<void> {
    await terminate(this.dockerd);
    const data = this.paths.dataRoot.replace(/^\/run\//, '');
    await runOn(this.machine, 'tar', ['-C', '/run', '-cf', file, ...folders.map((f) => join(data, f))], { mntns: `/proc/${this.containerd!.pid}/ns/mnt` });
  }

  /**
   * dockerd first (it talks to containerd while shutting down), then containerd, then any
   * container process still under the daemon's cgroup parent.
   */
  async stop(): Promise<void> {
    await terminate(this.dockerd);
    await terminate(this.containerd);
    await removeCgroup(this.paths.cgroupParent, this.machine);
  }
}

function exitText(p: MachineProcess): string {
  return p.exit?.error ?? String(p.exit?.signal ?? p.exit?.code);
}

/** SIGTERM, then SIGKILL after the grace period. */
async function terminate(p: MachineProcess | undefined): Promise<void> {
  if (!p || p.exit) return;
  p.kill('SIGTERM');
  const guard = hangGuard(SHUTDOWN_GRACE_MS, () => p.kill('SIGKILL'));
  await p.exited;
  guard.clear();
}

/** A program's path on PATH (or in the sbin folders a root shell has), or undefined. */
function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}
