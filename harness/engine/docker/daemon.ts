// One real Docker daemon inside a lab host namespace: its own containerd, a private mount
// namespace with a tmpfs over /run (see paths.ts), private data and exec roots, pidfiles and
// a socket. Started with `nsenter --net=` (not `ip netns exec`, which remounts /sys and hides
// the cgroup mounts dockerd needs); ready when its API answers; stopped by pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { delimiter, join } from 'node:path';
import type { DaemonOptions } from '../../scenario/types.js';
import { xtablesMulti, type IptablesVariant } from '../../rules/iptables/tools.js';
import type { DockerInstall } from './locate.js';
import type { DaemonPaths } from './paths.js';
import { dockerdArgs } from './flags.js';
import { removeCgroup } from './cgroups.js';

const READY_TIMEOUT_MS = 60_000;

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

/** GET /_ping on a unix socket; true when the daemon answers OK. */
export function ping(socket: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath: socket, path: '/_ping', method: 'GET', agent: false, timeout: timeoutMs }, (res) => {
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

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((r) => child.once('exit', () => r()));
}

/** SIGTERM, then SIGKILL after the grace period. */
async function terminate(child: ChildProcess | undefined, graceMs: number): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited(child);
  clearTimeout(timer);
}

export interface StartTimes {
  /** spawn to API ready, ms */
  startMs: number;
}

export class DockerDaemon {
  private containerd?: ChildProcess;
  private dockerd?: ChildProcess;

  constructor(
    readonly install: DockerInstall,
    readonly paths: DaemonPaths,
    /** /run/netns/<lab host> */
    readonly netnsPath: string,
    readonly options: DaemonOptions,
    /** the host's iptables: what `iptables` is on the daemon's PATH */
    readonly iptables: IptablesVariant,
    /** further environment (DBUS_SYSTEM_BUS_ADDRESS of the lab's firewalld) */
    readonly extraEnv: Record<string, string> = {},
  ) {}

  get socket(): string {
    return this.paths.socket;
  }

  private env(): NodeJS.ProcessEnv {
    // the host's iptables variant first (the machine's alternatives are never consulted), then
    // companions (runc, shims, docker-proxy) from the certified build's folder
    return { ...process.env, ...this.extraEnv, PATH: [this.iptablesShim(), this.install.binDir, process.env.PATH ?? ''].join(delimiter) };
  }

  /**
   * A folder of its own whose iptables, iptables-save, iptables-restore (and ip6tables …) are
   * the host's variant: links to xtables-legacy-multi or xtables-nft-multi, which act by the
   * name they are called with. dockerd runs `iptables` from its PATH.
   */
  private iptablesShim(): string {
    const dir = join(this.paths.stateDir, `iptables-${this.iptables}`);
    const multi = findOnPath(xtablesMulti(this.iptables));
    if (!multi) throw new Error(`${xtablesMulti(this.iptables)} not found: the host's iptables is ${this.iptables}, whose binaries Debian's iptables package installs (apt-get install -y iptables)`);
    mkdirSync(dir, { recursive: true });
    for (const base of ['iptables', 'ip6tables']) {
      for (const tool of [base, `${base}-save`, `${base}-restore`]) if (!existsSync(join(dir, tool))) symlinkSync(multi, join(dir, tool));
    }
    return dir;
  }

  private spawnLogged(args: string[], log: string): ChildProcess {
    const fd = openSync(log, 'a');
    try {
      // its own process group: a Ctrl-C reaches the harness, which then stops the daemon in order
      const child = spawn('nsenter', args, { stdio: ['ignore', fd, fd], detached: true, env: this.env() });
      child.unref();
      child.on('error', () => {}); // reported through the readiness wait
      return child;
    } finally {
      closeSync(fd);
    }
  }

  async start(): Promise<StartTimes> {
    const p = this.paths;
    const t0 = performance.now();
    mkdirSync(p.stateDir, { recursive: true, mode: 0o700 });
    writeFileSync(p.configFile, '{}\n');
    writeFileSync(p.containerdConfig, containerdConfig(p));
    // A private mount namespace whose /run is a fresh tmpfs: everything the daemon mounts or
    // writes there disappears with its last process. `exec` keeps the pid containerd's.
    this.containerd = this.spawnLogged(
      [`--net=${this.netnsPath}`, '--', 'unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', 'mount -t tmpfs -o mode=0755 netconform /run && exec "$0" "$@"', this.install.containerd, '--config', p.containerdConfig],
      p.containerdLog,
    );
    writeFileSync(p.containerdPidfile, `${this.containerd.pid}\n`);
    await this.waitForMountNamespace();
    await this.startDockerd();
    return { startMs: performance.now() - t0 };
  }

  /** containerd's mount namespace differs from ours once unshare has run and /run is mounted. */
  private async waitForMountNamespace(): Promise<void> {
    const pid = this.containerd!.pid!;
    const ours = procLink(process.pid, 'ns/mnt');
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (this.containerd!.exitCode !== null) throw new Error(`containerd exited (${this.containerd!.exitCode}):\n${tail(this.paths.containerdLog)}`);
      const theirs = procLink(pid, 'ns/mnt');
      if (theirs && theirs !== ours && procLink(pid, 'exe')?.endsWith('containerd')) return;
      if (Date.now() > deadline) throw new Error(`containerd did not start within ${READY_TIMEOUT_MS} ms:\n${tail(this.paths.containerdLog)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  private async startDockerd(): Promise<void> {
    const p = this.paths;
    const args = dockerdArgs(this.options, p, this.install.proxy);
    this.dockerd = this.spawnLogged([`--net=${this.netnsPath}`, `--mount=/proc/${this.containerd!.pid}/ns/mnt`, '--', this.install.dockerd, ...args], p.dockerdLog);
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (await ping(p.socket, 500)) return;
      const code = this.dockerd.exitCode ?? this.dockerd.signalCode;
      if (code !== null) throw new Error(`dockerd exited (${code}) before its API answered; ${p.dockerdLog}:\n${tail(p.dockerdLog)}`);
      if (Date.now() > deadline) throw new Error(`dockerd did not answer on ${p.socket} within ${READY_TIMEOUT_MS} ms:\n${tail(p.dockerdLog)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stop and start dockerd again (containers live on: --live-restore), as an operator's restart. */
  async restart(): Promise<void> {
    await terminate(this.dockerd, 15_000);
    await this.startDockerd();
  }

  logTail(): string {
    return `dockerd:\n${tail(this.paths.dockerdLog)}\ncontainerd:\n${tail(this.paths.containerdLog)}`;
  }

  /**
   * dockerd first (it talks to containerd while shutting down), then containerd, then any
   * container process still under the daemon's cgroup parent.
   */
  async stop(): Promise<void> {
    await terminate(this.dockerd, 10_000);
    await terminate(this.containerd, 5_000);
    await removeCgroup(this.paths.cgroupParent);
  }
}

/** A program's path on PATH (or in the sbin folders a root shell has), or undefined. */
function findOnPath(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/sbin', '/usr/bin', '/bin'].filter(Boolean);
  return dirs.map((d) => join(d, name)).find((p) => existsSync(p));
}

/** A /proc link (namespace, exe) of a process, or undefined when it is gone. */
function procLink(pid: number, what: string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/${what}`);
  } catch {
    return undefined;
  }
}
