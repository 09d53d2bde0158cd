// A lab: the set of network namespaces one scenario run lives in, named with a prefix unique
// to this process and run, so parallel runs never see each other and `gc` can find what a
// killed run left behind (the prefix carries the owning pid).
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOn, type RunOptions } from './exec.js';
import { collectable, keptLive as isKeptLive, type GcScope } from './owners.js';
import { DumpCache } from './dump-cache.js';
import { pidsInNetnsHere } from '../machine/local.js';
import { currentMachine, type Machine } from '../machine/machine.js';
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
  /** namespaces waiting for the batch after the one under way (addNamespaces) */
  private queuedNamespaces: string[] = [];
  private nextBatch?: Promise<void>;
  private batchUnderWay?: Promise<unknown>;
  private destroying?: Promise<void>;
  private dir?: string;
  private readonly dumps: DumpCache;
  private local?: string;

  private constructor(
    prefix: string,
    /** where its namespaces and processes are: this host, or a microVM guest */
    readonly machine: Machine,
  ) {
    this.prefix = prefix;
    this.dumps = new DumpCache(machine);
  }

  /** A lab on the machine the work is on (see onMachine). */
  static create(): Lab {
    if (closing) throw new Error('this run is stopping: its labs are being torn down, and no new one starts');
    const lab = new Lab(`${LAB_PREFIX}-${process.pid}-${randomBytes(3).toString('hex')}`, currentMachine());
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

  /** Whether a lab name stands for a namespace someone else owns (adopt()). */
  isAdopted(name: string): boolean {
    return this.adopted.has(name);
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

  /**
   * Create namespaces with one `ip -batch` call. Those asked for while a batch is being made go
   * out together in the next one: the engines of a multi-host scenario ask at about the same
   * time, and in an emulated guest each process costs 100-300 ms.
   */
  async addNamespaces(names: string[]): Promise<void> {
    const fresh = names.filter((n) => !this.names.has(n) && !this.adopted.has(n));
    if (fresh.length === 0) return;
    // a build still running when Ctrl-C tore the lab down must not make namespaces after it
    if (this.destroyed) throw new Error('the lab is torn down');
    for (const n of fresh) this.names.add(n); // registered first so teardown covers a half-made batch
    this.queuedNamespaces.push(...fresh);
    const underWay = this.batchUnderWay;
    if (!underWay) return this.makeBatch();
    this.nextBatch ??= underWay.then(
      () => this.makeBatch(),
      () => this.makeBatch(),
    );
    return this.nextBatch;
  }

  private async makeBatch(): Promise<void> {
    const names = this.queuedNamespaces;
    this.queuedNamespaces = [];
    this.nextBatch = undefined;
    if (this.destroyed) throw new Error('the lab is torn down');
    const made = this.run('ip', ['-batch', '-'], { input: names.map((n) => `netns add ${this.ns(n)}`).join('\n') + '\n' });
    this.batchUnderWay = made;
    this.creating.add(made);
    try {
      await made;
    } finally {
      this.creating.delete(made);
      if (this.batchUnderWay === made) this.batchUnderWay = undefined;
    }
  }

  async removeNamespace(name: string): Promise<void> {
    if (this.adopted.delete(name)) return;
    if (!this.names.delete(name)) return;
    await this.run('ip', ['netns', 'del', this.ns(name)], { allowFail: true });
  }

  /** A command on the lab's machine (outside its namespaces unless it enters them itself, as `ip -n` does). */
  run(file: string, args: string[], opts: RunOptions = {}) {
    return runOn(this.machine, file, args, opts);
  }

  /** Run `ip` commands (one per line, without the leading "ip") inside a lab namespace. */
  async ip(name: string, lines: string[]): Promise<void> {
    if (lines.length === 0) return;
    await this.run('ip', ['-n', this.ns(name), '-batch', '-'], { input: lines.join('\n') + '\n' });
  }

  /** Read `ip -json` output from inside a lab namespace. */
  async ipJson(name: string, args: string[]): Promise<any[]> {
    const r = await this.run('ip', ['-n', this.ns(name), '-json', ...args]);
    return r.stdout.trim() ? JSON.parse(r.stdout) : [];
  }

  /** Run a command with its network namespace switched into the lab namespace. */
  exec(name: string, file: string, args: string[], opts: { input?: string; allowFail?: boolean } = {}) {
    return this.run(file, args, { ...opts, netns: this.nsPath(name) });
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
    // A machine that writes them itself (a guest's agent) saves the shell: a process there costs 100-300 ms.
    if (this.machine.sysctls && entries.length) {
      await this.machine.sysctls(this.nsPath(name), Object.fromEntries(entries), []);
      if (what.load) await this.exec(name, what.load.file, what.load.args, { input: what.load.input });
      return;
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

  /**
   * Read sysctls and rule dumps (iptables-save, nft -j list ruleset) of a lab namespace in one
   * process; dumps the kernel says are unchanged since the last read are not read again.
   */
  async snapshot(name: string, sysctls: string[], dumps: Command[] = []): Promise<{ sysctls: Record<string, string>; dumps: string[] }> {
    const known = await this.dumps.known(this.nsPath(name), dumps);
    const outs = known.outs ?? dumps.map(() => undefined);
    const missing = dumps.filter((_, i) => outs[i] === undefined);
    if (missing.length === 0 && sysctls.length === 0) return { sysctls: {}, dumps: outs as string[] };
    const r = await this.read(name, sysctls, missing);
    let k = 0;
    const all = outs.map((o) => o ?? r.dumps[k++]);
    if (known.gen !== undefined) this.dumps.store(this.nsPath(name), known.gen, dumps, all);
    return { sysctls: r.sysctls, dumps: all };
  }

  private async read(name: string, sysctls: string[], dumps: Command[]): Promise<{ sysctls: Record<string, string>; dumps: string[] }> {
    // a single dump needs no shell (a process less)
    if (sysctls.length === 0 && dumps.length === 1) return { sysctls: {}, dumps: [(await this.exec(name, dumps[0].file, dumps[0].args)).stdout] };
    // a machine that reads sysctls itself (a guest's agent) needs a process per dump only
    if (this.machine.sysctls) {
      const [values, ...outs] = await Promise.all([this.machine.sysctls(this.nsPath(name), {}, sysctls), ...dumps.map((d) => this.exec(name, d.file, d.args))]);
      return { sysctls: values, dumps: outs.map((o) => o.stdout) };
    }
    const reads = sysctls.map((k) => `cat /proc/sys/${k.replace(/\./g, '/')}`);
    const r = await this.exec(name, 'sh', ['-ec', [...reads, ...dumps.flatMap((d) => [`echo ${DUMP_MARK}`, shellLine(d)])].join('\n')]);
    const [head, ...parts] = r.stdout.split(`${DUMP_MARK}\n`);
    const lines = head.split('\n');
    return { sysctls: Object.fromEntries(sysctls.map((k, i) => [k, lines[i].trim()])), dumps: parts };
  }

  async getSysctl(name: string, key: string): Promise<string> {
    return (await this.snapshot(name, [key])).sysctls[key];
  }

  /**
   * A private folder for this lab's files (containers' /etc files), removed with the lab. It is
   * in the machine's shared folder: the harness writes there and the lab's processes read.
   */
  stateDir(): string {
    if (!this.dir) {
      this.dir = join(this.machine.sharedDir, this.prefix);
      mkdirSync(this.dir, { recursive: true, mode: 0o755 });
    }
    return this.dir;
  }

  /**
   * A private folder on the lab's machine for what must be the machine's own (daemons' unix
   * sockets: a guest cannot bind one on the shared folder), removed with the lab. On this host
   * it is the state folder.
   */
  async localDir(): Promise<string> {
    if (this.machine.local) return this.stateDir();
    if (!this.local) {
      this.local = join(this.machine.runDir, this.prefix);
      await this.machine.mkdir(this.local);
    }
    return this.local;
  }

  /** Register a cleanup that runs (in reverse order) before the namespaces are deleted. */
  onDestroy(fn: () => Promise<void> | void): void {
    this.cleanups.push(fn);
  }

  /**
   * Tear the lab down. A second call (Ctrl-C's teardown while a scenario's own finally is under
   * way) waits for the first: returning at once let the run exit with a namespace not yet deleted.
   */
  destroy(): Promise<void> {
    this.destroying ??= this.tearDown();
    return this.destroying;
  }

  private async tearDown(): Promise<void> {
    this.destroyed = true;
    if (!this.machine.alive()) {
      // a guest that stopped took its namespaces and processes along; only its files are here
      liveLabs.delete(this);
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      return;
    }
    try {
      for (const fn of this.cleanups.reverse()) {
        try {
          await fn();
        } catch (e) {
          process.stderr.write(`warning: lab cleanup step failed: ${(e as Error).message}\n`);
        }
      }
      await Promise.allSettled([...this.creating]);
      // processes still inside our namespaces were started by this suite: end them by pid
      const pids = await this.machine.pidsInNetns([...this.names].map((n) => this.nsPath(n)));
      await Promise.all(pids.map((pid) => this.machine.kill(pid, 'SIGKILL')));
      if (this.names.size > 0) {
        const lines = [...this.names].map((n) => `netns del ${this.ns(n)}`);
        await this.run('ip', ['-force', '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
      }
      this.names.clear();
      if (this.dir) rmSync(this.dir, { recursive: true, force: true });
      if (this.local) await this.machine.rm(this.local);
    } finally {
      liveLabs.delete(this);
    }
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Processes of this host inside these namespaces (a killed run's): end them by pid. */
function killProcessesIn(fullNames: string[]): void {
  for (const pid of pidsInNetnsHere(fullNames.map((n) => `/run/netns/${n}`))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

/** Tear down every lab of this process (used by the SIGINT/SIGTERM handler). */
/** Set once this process is stopping: no lab may start after its teardown began. */
let closing = false;

/** Tear down every lab of this process, and refuse new ones (a run that stops early). */
export async function destroyAllLabs(): Promise<void> {
  closing = true;
  await Promise.all([...liveLabs].map((l) => l.destroy()));
}

export interface GcReport {
  removed: string[];
  keptLive: string[];
}

/** Remove namespaces left by runs whose process is gone (a SIGKILLed run). */
export async function gc(opts: GcScope = {}): Promise<GcReport> {
  const r = await run('ip', ['netns', 'list'], { allowFail: true });
  const names = r.stdout
    .split('\n')
    .map((l) => l.split(/\s+/)[0])
    .filter((n) => n && NAME_RE.test(n));
  const removed: string[] = [];
  const keptLive: string[] = [];
  for (const n of names) {
    const pid = Number(NAME_RE.exec(n)![1]);
    if (!collectable(pid, opts)) {
      if (isKeptLive(pid, opts)) keptLive.push(n);
      continue;
    }
    removed.push(n);
  }
  killProcessesIn(removed);
  if (removed.length) {
    await run('ip', ['-force', '-batch', '-'], { input: removed.map((n) => `netns del ${n}`).join('\n') + '\n', allowFail: true });
  }
  // the state folders of those labs (same prefix, under the temp folder)
  for (const d of readdirSync(tmpdir())) {
    const m = NAME_RE.exec(`${d}-`);
    if (!m) continue;
    const pid = Number(m[1]);
    if (!collectable(pid, opts)) continue;
    rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
  return { removed, keptLive };
}
