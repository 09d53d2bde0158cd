// This host as a Machine: plain child_process and node:fs. Namespaces are entered with
// `nsenter` (not `ip netns exec`, which remounts /sys and hides the cgroup mounts dockerd
// needs). Plain child_process rather than execa: a lab spawns a few dozen short commands and
// execa's per-process bookkeeping (≈2 ms each, measured here) was a fifth of a five-container
// lab's build time.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, readlinkSync, rmSync, rmdirSync, statSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { setLocalMachine, type Machine, type MachineProcess, type ProcessExit, type SpawnOptions } from './machine.js';

function nsenterArgs(o: SpawnOptions): string[] {
  return [...(o.netns ? [`--net=${o.netns}`] : []), ...(o.mntns ? [`--mount=${o.mntns}`] : []), '--'];
}

class LocalProcess implements MachineProcess {
  exit?: ProcessExit;
  readonly exited: Promise<ProcessExit>;
  constructor(private readonly child: ReturnType<typeof spawn>) {
    this.exited = new Promise((resolve) => {
      // 'close' (not 'exit'): the output has arrived too
      child.once(child.stdout ? 'close' : 'exit', (code: number | null, signal: string | null) => resolve((this.exit ??= { code, signal })));
      child.once('error', (e) => resolve((this.exit ??= { code: null, signal: null, error: e.message })));
    });
  }
  get pid(): number {
    return this.child.pid ?? -1;
  }
  get stdin() {
    return this.child.stdin ?? undefined;
  }
  get stdout() {
    return this.child.stdout ?? undefined;
  }
  get stderr() {
    return this.child.stderr ?? undefined;
  }
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exit || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      this.child.kill(signal);
    } catch {
      /* gone */
    }
  }
}

export const localMachine: Machine = {
  name: 'host',
  local: true,
  speed: { factor: 1, detail: 'this host' },
  baseEnv: process.env,
  sharedDir: tmpdir(),
  runDir: tmpdir(),
  alive: () => true,

  async spawn(file, args, opts = {}) {
    const [cmd, argv] = opts.netns || opts.mntns ? ['nsenter', [...nsenterArgs(opts), file, ...args]] : [file, args];
    const env = opts.replaceEnv ? (opts.env ?? {}) : opts.env ? { ...process.env, ...opts.env } : undefined;
    if (opts.detached) {
      const fd = openSync(opts.logFile ?? '/dev/null', 'a');
      try {
        // its own process group: a Ctrl-C reaches the harness, which then stops it in order
        const child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], detached: true, env });
        child.unref();
        return new LocalProcess(child);
      } finally {
        closeSync(fd);
      }
    }
    return new LocalProcess(spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env }));
  },

  async readFile(path) {
    return readFileSync(path, 'utf8');
  },
  async writeFile(path, data, opts = {}) {
    writeFileSync(path, data, { mode: opts.mode });
  },
  async mkdir(path) {
    mkdirSync(path, { recursive: true, mode: 0o755 });
  },
  async rm(path) {
    rmSync(path, { recursive: true, force: true });
  },
  async rmdir(path) {
    try {
      rmdirSync(path);
      return true;
    } catch {
      return false;
    }
  },
  async readdir(path) {
    return readdirSync(path, { withFileTypes: true }).map((e) => ({ name: e.name, dir: e.isDirectory() }));
  },
  async readlink(path) {
    try {
      return readlinkSync(path);
    } catch {
      return undefined;
    }
  },
  async kill(pid, signal) {
    try {
      process.kill(pid, signal);
      return true;
    } catch {
      return false;
    }
  },
  async pidsInNetns(nsPaths) {
    return pidsInNetnsHere(nsPaths);
  },
  waitForPath(path, until) {
    return new Promise((resolve) => {
      // watch the folder first, then look: a creation in between is not missed
      const w = watch(dirname(path), (_, name) => {
        if ((name === null || name === basename(path)) && existsSync(path)) done(true);
      });
      const done = (v: boolean) => {
        w.close();
        resolve(v);
      };
      w.on('error', () => done(existsSync(path)));
      if (existsSync(path)) done(true);
      until?.then(
        () => done(existsSync(path)),
        () => done(existsSync(path)),
      );
    });
  },
  async unixSocket(path) {
    return path;
  },
};

/**
 * One pass over /proc compares each process's network namespace with the given ones
 * (`ip netns pids` per namespace would be a process each).
 */
export function pidsInNetnsHere(nsPaths: string[]): number[] {
  const inodes = new Set<number>();
  for (const p of nsPaths) {
    try {
      inodes.add(statSync(p).ino);
    } catch {
      /* not there (any more) */
    }
  }
  if (inodes.size === 0) return [];
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      if (inodes.has(statSync(`/proc/${entry}/ns/net`).ino)) out.push(Number(entry));
    } catch {
      /* gone, or a kernel thread */
    }
  }
  return out;
}

setLocalMachine(localMachine);
