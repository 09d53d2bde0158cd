// Where a lab's processes run and its files live: this machine, or a microVM guest driven
// from here (harness/vm/guest-machine.ts). Everything in the lab, engine and probe layers that
// touches the operating system (commands, long-lived helpers, daemons, /proc, state files)
// goes through a Machine, so one scenario runs the same code on either. Which machine is in
// effect follows the async call chain (onMachine), like the current directory of a process.
import { AsyncLocalStorage } from 'node:async_hooks';
import { cpus, loadavg } from 'node:os';
import type { Readable, Writable } from 'node:stream';

export interface SpawnOptions {
  /** added to the machine's environment, or the whole environment with replaceEnv */
  env?: Record<string, string>;
  replaceEnv?: boolean;
  /** run it inside this network namespace (a /run/netns/… or /proc/<pid>/ns/net path) */
  netns?: string;
  /** also enter this mount namespace */
  mntns?: string;
  /** a daemon: its own session, output appended to logFile, no pipes to us */
  detached?: boolean;
  logFile?: string;
}

export interface ProcessExit {
  code: number | null;
  signal: string | null;
  /** it could not be started at all (no such file …) */
  error?: string;
}

/** A process on a machine; the streams are absent for a detached one. */
export interface MachineProcess {
  /** its pid on its machine */
  readonly pid: number;
  readonly stdin?: Writable;
  readonly stdout?: Readable;
  readonly stderr?: Readable;
  /** resolves once it is gone (and its output has arrived) */
  readonly exited: Promise<ProcessExit>;
  /** undefined while it runs */
  readonly exit?: ProcessExit;
  kill(signal?: NodeJS.Signals): void;
}

/**
 * How much slower than this host a machine runs a process, measured when it came up: for the
 * figures a run prints. No limit is scaled by it (the load that comes later changes it).
 */
export interface Speed {
  factor: number;
  /** the measurement, for messages: "the guest ran `true` in 71 ms, this host in 2.1 ms" */
  detail: string;
}

export interface Machine {
  /** "host", or "microVM 6.1.0-57-amd64" */
  readonly name: string;
  /** this host (false: a guest driven from here) */
  readonly local: boolean;
  readonly speed: Speed;
  /** the environment its commands start from (PATH …) */
  readonly baseEnv: Readonly<Record<string, string | undefined>>;
  /** a folder that this process and the machine see at the same path (labs' state files) */
  readonly sharedDir: string;
  /** a folder of the machine's own, for its daemons' sockets and state (no other machine sees it) */
  readonly runDir: string;
  /** false once it is gone (a guest that stopped): what ran there went with it */
  alive(): boolean;
  spawn(file: string, args: string[], opts?: SpawnOptions): Promise<MachineProcess>;
  readFile(path: string): Promise<string>;
  writeFile(path: string, data: string, opts?: { mode?: number }): Promise<void>;
  /** with its parents */
  mkdir(path: string): Promise<void>;
  /** recursively; no error when it is not there */
  rm(path: string): Promise<void>;
  /** an empty folder (or a cgroup); false when it is not empty, busy or gone */
  rmdir(path: string): Promise<boolean>;
  readdir(path: string): Promise<{ name: string; dir: boolean }[]>;
  /** a symbolic link's target (a /proc/<pid>/ns/… link too), or undefined when there is none */
  readlink(path: string): Promise<string | undefined>;
  /** true when the signal was delivered */
  kill(pid: number, signal: NodeJS.Signals): Promise<boolean>;
  /** pids of the processes whose network namespace is one of these namespace files */
  pidsInNetns(nsPaths: string[]): Promise<number[]>;
  /** resolves when the path exists (an event on the machine, no polling), or when `until` settles */
  waitForPath(path: string, until?: Promise<unknown>): Promise<boolean>;
  /** a unix socket path on this host that reaches the machine's socket `path` */
  unixSocket(path: string): Promise<string>;
  /**
   * Set, then read, sysctls of a network namespace without a process (this host has none:
   * /proc/sys/net is the namespace of the process that opens it, and Node cannot enter one).
   */
  sysctls?(netns: string, set: Record<string, string>, get: string[]): Promise<Record<string, string>>;
  /**
   * A network namespace's nftables generation (every committed change, iptables-nft's too,
   * makes a new one) and its number of tables, without a process (a guest's agent asks the
   * kernel); this host has none: its dumps cost milliseconds.
   */
  nftState?(netns: string): Promise<NftState>;
}

/** What a namespace's nftables hold: the generation, and tables in all, of family ip, of ip6. */
export interface NftState {
  gen: number;
  tables: number;
  ipTables: number;
  ip6Tables: number;
}

const current = new AsyncLocalStorage<Machine>();
let local: Machine | undefined;

/** This host; set once by the module that implements it (local.ts), to keep imports one-way. */
export function setLocalMachine(m: Machine): void {
  local = m;
}

/** The machine of the work under way: the one onMachine() chose, else this host. */
export function currentMachine(): Machine {
  const m = current.getStore() ?? local;
  if (!m) throw new Error('no machine: import harness/machine/local.js first');
  return m;
}

/** Run `fn` (and everything it starts) on machine `m`. */
export function onMachine<T>(m: Machine, fn: () => Promise<T>): Promise<T> {
  return current.run(m, fn);
}

/**
 * What a hang guard waits before it acts: 10 minutes. Only something that hangs gets there —
 * the slowest step under load here (dockerd starting in an emulated guest beside a build) took
 * a few minutes at worst — so no busy machine trips it. Not scaled by a speed measured once.
 */
export const HANG_GUARD_MS = 600_000;

/**
 * A guard against a hang: `onHang` runs after `ms` (default HANG_GUARD_MS; 0: never) with the
 * words that say why, the wait and the host's load then.
 */
export function hangGuard(ms: number | undefined, onHang: (why: string) => void): { clear: () => void } {
  const limit = ms ?? HANG_GUARD_MS;
  if (limit <= 0) return { clear: () => {} };
  const t0 = performance.now();
  // not unref'd: what it guards may be all that keeps the process alive (a detached daemon's
  // exit is no handle of ours), and a process must not end while it waits
  const timer = setTimeout(() => onHang(`no end after ${((performance.now() - t0) / 1000).toFixed(0)} s (the hang guard is ${(limit / 1000).toFixed(0)} s; ${hostLoad().detail} then)`), limit);
  return { clear: () => clearTimeout(timer) };
}

/** A process that exited: gone from /proc, or a zombie its parent (init, for a daemon) has not reaped yet. */
export async function processGone(m: Machine, pid: number): Promise<boolean> {
  try {
    return (await m.readFile(`/proc/${pid}/stat`)).split(') ')[1]?.startsWith('Z') ?? true;
  } catch {
    return true;
  }
}

/** How busy this host is: its 1-minute load average per core (at least 1). */
export function hostLoad(): { factor: number; detail: string } {
  const n = cpus().length || 1;
  const load = loadavg()[0];
  const factor = Math.max(1, load / n);
  return { factor, detail: `load average ${load.toFixed(1)} on ${n} cores` };
}
