// A lab: the set of network namespaces one scenario run lives in, named with a prefix unique
// to this process and run, so parallel runs never see each other and `gc` can find what a
// killed run left behind (the prefix carries the owning pid).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runInNetns } from './exec.js';
import { shellLine, type Command, type Write } from '../rules/backend.js';

const DUMP_MARK = '--netconform-dump--';

export const LAB_PREFIX = 'ncf';
const NAME_RE = new RegExp(`^${LAB_PREFIX}-(\\d+)-([a-z0-9]+)-`);

/** Only per-namespace sysctls may be set: anything else would leak out of the lab. */
const NETNS_SYSCTL = /^net\.(ipv4|ipv6|bridge|netfilter|core\.somaxconn)[.\w/-]*$/;

const liveLabs = new Set<Lab>();

export class Lab {
  readonly prefix: string;
  private readonly names = new Set<string>();
  /** lab names standing for namespaces owned by someone else (an engine's daemon host) */
  private readonly adopted = new Map<string, string>();
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private destroyed = false;
  /** namespace creations under way: teardown waits for them, or it would miss what they make */
  private readonly creating = new Set<Promise<unknown>>();
  private dir?: string;

  private constructor(prefix: string) {
    this.prefix = prefix;
  }

  static create(): Lab {
    const lab = new Lab(`${LAB_PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}`);
    liveLabs.add(lab);
    return lab;
  }

  /** Full namespace name of a lab-local name (e.g. "host" → "ncf-123-ab12cd-host"). */
  ns(name: string): string {
    return this.adopted.get(name) ?? `${this.prefix}-${name.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  }

  nsPath(name: string): string {
    return `/run/netns/${this.ns(name)}`;
  }

  has(name: string): boolean {
    return this.names.has(name) || this.adopted.has(name);
  }

  /**
   * Use an existing namespace under a lab name (e.g. the host namespace a Docker daemon lives
   * in, kept across scenarios). The lab builds in it like in its own, but never deletes it
   * nor ends the processes in it: its owner cleans it up.
   */
  adopt(name: string, fullName: string): void {
    if (this.names.has(name)) throw new Error(`lab namespace ${name} already exists; adopt before building`);
    this.adopted.set(name, fullName);
  }

  /** Whether a lab name stands for a namespace someone else owns (see adopt). */
  isAdopted(name: string): boolean {
    return this.adopted.has(name);
  }

  /** Create namespaces in one `ip -batch` call. */
  async addNamespaces(names: string[]): Promise<void> {
    const fresh = names.filter((n) => !this.names.has(n) && !this.adopted.has(n));
    if (fresh.length === 0) return;
    // a build still running when Ctrl-C tore the lab down must not make namespaces after it
    if (this.destroyed) throw new Error('the lab is torn down');
    for (const n of fresh) this.names.add(n); // registered first so teardown covers a half-made batch
    const made = run('ip', ['-batch', '-'], { input: fresh.map((n) => `netns add ${this.ns(n)}`).join('\n') + '\n' });
    this.creating.add(made);
    try {
      await made;
    } finally {
      this.creating.delete(made);
    }
  }

  async removeNamespace(name: string): Promise<void> {
    if (this.adopted.delete(name)) return;
    if (!this.names.delete(name)) return;
    await run('ip', ['netns', 'del', this.ns(name)], { allowFail: true });
  }

  /** Run `ip` commands (one per line, without the leading "ip") inside a lab namespace. */
  async ip(name: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await run('ip', ['-n', this.ns(name), '-batch', '-'], { input: lines.join('\n') + '\n' });
  }

  /** Read `ip -json` output from inside a lab namespace. */
  async ipJson(name: string, args: string[]): Promise<any[]> {
    const r = await run('ip', ['-n', this.ns(name), '-json', ...args]);
    return r.stdout.trim() ? JSON.parse(r.stdout) : [];
  }

  /** Run a command with its network namespace switched into the lab namespace. */
  exec(name: string, file: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
    return runInNetns(this.nsPath(name), file, args, opts);
  }

  async setSysctls(name: string, values: Record<string, string>): Promise<void> {
    await this.configure(name, { sysctls: values });
  }

  /**
   * Set sysctls and load a rule set (a backend's write: iptables-restore, nft -f) in one
   * process inside a lab namespace (each process spawned costs milliseconds; the kernel work
   * itself costs microseconds).
   */
  async configure(name: string, what: { sysctls?: Record<string, string>; load?: Write }): Promise<void> {
    const entries = Object.entries(what.sysctls ?? {});
    for (const [k] of entries) {
      if (!NETNS_SYSCTL.test(k)) throw new Error(`sysctl ${k} is not per network namespace; the lab refuses to set it`);
    }
    // /proc/sys/net reflects the network namespace of the writing process.
    const writes = entries.map(([k, v]) => `echo ${shellQuote(v)} > /proc/sys/${k.replace(/\./g, '/')}`);
    const load = what.load;
    if (load) {
      if (writes.length === 0) {
        await this.exec(name, load.file, load.args, { input: load.input });
        return;
      }
      writes.push(`exec ${shellLine(load)}`);
    }
    if (writes.length === 0) return;
    await this.exec(name, 'sh', ['-ec', writes.join('\n')], { input: load?.input });
  }

  /** Read sysctls and rule dumps (iptables-save, nft -j list ruleset) of a lab namespace in one process. */
  async snapshot(name: string, sysctls: string[], dumps: Command[] = []): Promise<{ sysctls: Record<string, string>; dumps: string[] }> {
    // a single dump needs no shell (a process less)
    if (sysctls.length === 0 && dumps.length === 1) return { sysctls: {}, dumps: [(await this.exec(name, dumps[0].file, dumps[0].args)).stdout] };
    const reads = sysctls.map((k) => `cat /proc/sys/${k.replace(/\./g, '/')}`);
    const r = await this.exec(name, 'sh', ['-ec', [...reads, ...dumps.flatMap((d) => [`echo ${DUMP_MARK}`, shellLine(d)])].join('\n')]);
    const [head, ...parts] = r.stdout.split(`${DUMP_MARK}\n`);
    const lines = head.split('\n');
    return { sysctls: Object.fromEntries(sysctls.map((k, i) => [k, lines[i].trim()])), dumps: parts };
  }

  async getSysctl(name: string, key: string): Promise<string> {
    return (await this.snapshot(name, [key])).sysctls[key];
  }

  /** A private folder for this lab's files (containers' /etc files), removed with the lab. */
  stateDir(): string {
    if (!this.dir) {
      this.dir = join(tmpdir(), this.prefix);
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    }
    return this.dir;
  }

  /** Register a cleanup that runs (in reverse order) before the namespaces are deleted. */
  onDestroy(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    try {
      for (const fn of this.cleanups.reverse()) {
        try {
          await fn();
        } catch (e) {
          process.stderr.write(`warning: lab cleanup step failed: ${(e as Error).message}\n`);
        }
      }
      await Promise.allSettled([...this.creating]);
      await killProcessesIn([...this.names].map((n) => this.ns(n)));
      if (this.names.size > 0) {
        const lines = [...this.names].map((n) => `netns del ${this.ns(n)}`);
        await run('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
      }
      this.names.clear();
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    } finally {
      liveLabs.delete(this);
    }
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Processes still inside our namespaces were started by this suite: end them by pid. One pass
 * over /proc compares each process's network namespace with ours (`ip netns pids` per
 * namespace would be a process each).
 */
async function killProcessesIn(fullNames: string[]): Promise<void> {
  if (fullNames.length === 0) return;
  const inodes = new Set<number>();
  for (const n of fullNames) {
    try {
      inodes.add(statSync(`/run/netns/${n}`).ino);
    } catch {
      /* not there (any more) */
    }
  }
  if (inodes.size === 0) return;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let ino: number;
    try {
      ino = statSync(`/proc/${entry}/ns/net`).ino;
    } catch {
      continue; // gone, or a kernel thread
    }
    if (!inodes.has(ino)) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Tear down every lab of this process (used by the SIGINT/SIGTERM handler). */
export async function destroyAllLabs(): Promise<void> {
  await Promise.all([...liveLabs].map((l) => l.destroy()));
}

/** Whether a process (a run's owner) still exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface GcReport {
  removed: string[];
  keptLive: string[];
}

/** Remove namespaces left by runs whose process is gone (a SIGKILLed run). */
export async function gc(opts: { all?: boolean } = {}): Promise<GcReport> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  const names = r.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0])
    .filter((n) => n && NAME_RE.test(n));
  const removed: string[] = [];
  const keptLive: string[] = [];
  for (const n of names) {
    const pid = Number(NAME_RE.exec(n)![1]);
    if (!opts.all && pid !== process.pid && alive(pid)) {
      keptLive.push(n);
      continue;
    }
    removed.push(n);
  }
  await killProcessesIn(removed);
  if (removed.length) {
    await run('ip', ['-force', '-batch', '-'], { input: removed.map((n) => `netns del ${n}`).join('\n') + '\n', allowFail: true });
  }
  // the state folders of those labs (same prefix, under the temp folder)
  for (const d of readdirSync(tmpdir())) {
    const m = NAME_RE.exec(`${d}-`);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!opts.all && pid !== process.pid && alive(pid)) continue;
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
  return { removed, keptLive };
}
