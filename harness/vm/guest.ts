// One microVM guest, host side: start qemu (restoring the saved guest when there is one, else
// booting the kernel and saving it for next time), say hello to the guest's agent (which mounts
// the machine's root), measure how fast the guest runs a process, and hand out the guest as a
// Machine. Its end is always told: boot failure, module failure, mount failure, timeout, a guest
// that stopped answering, interruption. qemu is killed by pid on stop, abort (Ctrl-C, SIGTERM)
// and process exit; the job folder is removed. `gcGuests` removes what a SIGKILLed run left
// (the folder carries the owning pid, and qemu's pid is written into it).
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { GUEST_MARK } from './guest-init.js';
import { buildInitramfs, initramfsCacheDir, BOOT_MODULES } from './initramfs.js';
import type { GuestKernel } from './kernel.js';
import { readModuleIndex, resolveModules, type ModuleFile } from './modules.js';
import { QemuProcess, chooseAccel, qemuArgs, qemuInstalled, type Accel } from './qemu.js';
import { GuestMachine } from './guest-machine.js';
import { encodeFields } from './agent-protocol.js';
import { Qmp } from './qmp.js';
import { discardSnapshot, haveSnapshot, loadSnapshot, saveSnapshot, snapshotFile } from './snapshot.js';
import { runOn } from '../lab/exec.js';
import { hostLoad } from '../machine/machine.js';
import { collectable, type GcScope } from '../lab/owners.js';
import { untilCpuCountRead } from '../lab/ovs.js';

export const JOB_PREFIX = 'ncf-vm-';

/**
 * How long a guest may say nothing before it is declared hung (no init after qemu started, no
 * reply to a ping): 5 minutes. Its init comes 6-26 s after qemu starts here (43 s beside a
 * build), a ping's reply in milliseconds: only a hang gets there, however busy the host is.
 */
export const GUEST_SILENCE_MS = 300_000;

export interface GuestOptions {
  kernel: GuestKernel;
  /** modules to load in the guest (resolved with their dependencies) */
  modules: string[];
  /** modules loaded exactly as given, unresolved (tests use it to make a load fail) */
  rawModules?: ModuleFile[];
  /** the kernel may load further modules on demand (default); off proves `modules` is complete */
  autoload?: boolean;
  accel?: Accel;
  /** qemu start → the guest's init, on a fresh boot; default GUEST_SILENCE_MS */
  bootTimeoutMs?: number;
  memoryMb?: number;
  /** one by default: measured, a second emulated CPU makes every process 3-10× slower here (README) */
  cpus?: number;
  /** restore a saved guest, and save one after a fresh boot (default; NETCONFORM_VM_SNAPSHOT=0 turns it off) */
  snapshot?: boolean;
  signal?: AbortSignal;
  /** console lines meant for a person (the init's, the runner's; not the kernel's) */
  onLine?: (line: string) => void;
}

export type GuestOutcome = 'ok' | 'boot-failed' | 'module-failed' | 'mount-failed' | 'timeout' | 'harness-failed' | 'aborted';

export interface GuestTiming {
  /** the guest came from a saved one (no kernel boot) */
  restored?: boolean;
  /** qemu start → guest init running (a fresh boot) */
  bootMs?: number;
  /** qemu start → modules loaded (a fresh boot) */
  modulesMs?: number;
  /** saving the booted guest for later runs */
  savedMs?: number;
  /** loading the saved guest (part of readyMs) */
  loadMs?: number;
  /** qemu start → the agent mounted the root and answered: the guest is ready */
  readyMs?: number;
  /** a process in the guest (`true`), median of three, and the same on this host */
  processMs?: number;
  hostProcessMs?: number;
  /** qemu start → now, or → qemu gone */
  totalMs: number;
}

const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

const live = new Set<Guest>();
let exitHookInstalled = false;

export class Guest {
  outcome: GuestOutcome = 'ok';
  detail = '';
  readonly timing: GuestTiming = { totalMs: 0 };
  machine?: GuestMachine;
  release: string;
  /** the saved guest this one came from or was saved as (none with snapshots off) */
  snapshot?: string;
  private readonly lines: string[] = [];
  private q?: QemuProcess;
  private dir?: string;
  private readonly t0 = performance.now();
  private servers: Server[] = [];
  private heartbeat?: NodeJS.Timeout;
  private stopped?: Promise<void>;

  constructor(
    readonly opts: GuestOptions,
    public accel: Accel,
    public accelReason: string,
  ) {
    this.release = opts.kernel.release;
  }

  /** The whole serial console so far, kernel lines included. */
  console(): string {
    return this.lines.join('\n');
  }

  get ready(): boolean {
    return this.outcome === 'ok' && Boolean(this.machine?.alive());
  }

  /** Record why the guest ended (the first reason wins) and stop it. */
  fail(outcome: GuestOutcome, detail: string): void {
    if (this.outcome === 'ok') Object.assign(this, { outcome, detail });
    this.q?.kill();
    this.machine?.gone(`${outcome}: ${detail}`);
  }

  private since(): number {
    return performance.now() - this.t0;
  }

  private line(raw: string): void {
    const line = stripTerminalControls(raw);
    this.lines.push(line);
    const status = guestStatus(line);
    if (status) {
      const { event, args } = status;
      if (event === 'init') this.timing.bootMs ??= this.since();
      else if (event === 'modules-loaded') this.timing.modulesMs ??= this.since();
      else if (event === 'module-failed') this.fail('module-failed', `module ${args[0]} failed to load in the guest: ${args.slice(1).join(' ')}`);
    }
    if (!KERNEL_LINE.test(line)) this.opts.onLine?.(line);
    else if (status) this.opts.onLine?.(status.text);
  }

  /**
   * Start qemu (restoring `incoming` when given) and wait for its agent: the frame it sends
   * once booted (a fresh boot), or nothing (a restored guest is already there).
   */
  async launch(initramfs: string, modules: ModuleFile[], incoming?: string, save?: string): Promise<'ready' | 'restore-failed' | 'failed'> {
    const dir = (this.dir ??= mkdtempSync(join(tmpdir(), `${JOB_PREFIX}${process.pid}-`)));
    const agentSock = join(dir, 'agent.sock');
    const qmpSock = join(dir, 'qmp.sock');
    for (const s of this.servers) s.close();
    rmSync(agentSock, { force: true });
    rmSync(qmpSock, { force: true });
    const agentConn = listenOnce(agentSock, this.servers);
    const qmpConn = listenOnce(qmpSock, this.servers);
    await Promise.all([agentConn.listening, qmpConn.listening]);
    const k = this.opts.kernel;
    const args = qemuArgs({ vmlinuz: k.vmlinuz, initramfs, jobDir: dir, accel: this.accel, memoryMb: this.opts.memoryMb ?? 2048, cpus: this.opts.cpus ?? 1, icount: process.env.NETCONFORM_VM_ICOUNT || undefined, agentSocket: agentSock, qmpSocket: qmpSock, incoming: Boolean(incoming) });
    const started = performance.now();
    const q = QemuProcess.start(args, (l) => this.line(l));
    this.q = q;
    writeFileSync(join(dir, 'qemu.pid'), String(q.pid));
    const exited = q.exited.then((x) => {
      const why = x.error ?? `qemu exited (${x.signal ?? x.code})`;
      this.machine?.gone(why);
      return why;
    });
    const conns = Promise.all([agentConn.socket, qmpConn.socket]);
    const first = await Promise.race([conns, exited]);
    if (typeof first === 'string') {
      if (incoming) return 'restore-failed';
      this.fail('boot-failed', `${first} before connecting to the runner${this.silence()}`);
      return 'failed';
    }
    const [agent, qmpSocket] = first;
    const qmp = new Qmp(qmpSocket);
    const machine = new GuestMachine(`microVM ${k.release}`, agent, dir, join(dir, 'sockets'));
    this.machine = machine;
    if (incoming) {
      // a restored guest is up to its agent once qemu loaded and continued it
      const loaded = (async () => {
        await qmp.start();
        this.timing.loadMs = (await loadSnapshot(qmp, incoming)).ms;
        return true;
      })().catch((e: Error) => {
        this.lines.push(`microVM: ${e.message}`);
        return false;
      });
      const ok = await Promise.race([loaded, exited.then(() => false)]);
      if (!ok) {
        q.kill();
        await q.exited;
        return 'restore-failed';
      }
      this.timing.restored = true;
      return 'ready';
    }
    // a fresh boot: the init loads the modules, then the agent says it is there
    const bootLimit = this.opts.bootTimeoutMs ?? GUEST_SILENCE_MS;
    const initTimer = setTimeout(() => {
      if (this.timing.bootMs === undefined) this.fail('boot-failed', `the guest kernel did not reach its init within ${(bootLimit / 1000).toFixed(0)} s (${this.accel}; ${hostLoad().detail} then); qemu was killed`);
    }, bootLimit);
    const booted = new Promise<boolean>((resolve) => machine.onControl((type) => type === 'B' && resolve(true)));
    await qmp.start().catch(() => {});
    const ok = await Promise.race([booted, exited.then(() => false)]);
    clearTimeout(initTimer);
    if (!ok) {
      if (this.outcome === 'ok') {
        const how = this.timing.bootMs === undefined ? 'the guest kernel never reached its init' : 'the guest stopped before its agent started (kernel panic or crash of the guest init; see the console)';
        this.fail('boot-failed', `${how} (${await exited}${this.silence()})`);
      }
      return 'failed';
    }
    this.opts.onLine?.(`microVM: booted in ${((performance.now() - started) / 1000).toFixed(1)} s (${this.accel})`);
    if (save) {
      try {
        // the saved clock is every restored guest's: past the point where OVS counts its CPUs
        await untilCpuCountRead(machine);
        const s = await saveSnapshot(qmp, save);
        this.timing.savedMs = s.ms;
        this.opts.onLine?.(`microVM: saved the booted guest in ${(s.ms / 1000).toFixed(1)} s (${(s.bytes / 2 ** 20).toFixed(0)} MiB, ${save}); later runs restore it`);
      } catch (e) {
        this.opts.onLine?.(`microVM: could not save the booted guest (${(e as Error).message}); every run boots it`);
        await qmp.execute('cont').catch(() => {});
      }
    }
    return 'ready';
  }

  private silence(): string {
    return this.lines.length === 0 ? '; the console stayed empty' : '';
  }

  /** Hello: the agent sets the clock, mixes in fresh randomness and mounts the machine's root. */
  async hello(): Promise<boolean> {
    const m = this.machine!;
    const k = this.opts.kernel;
    const reply = new Promise<{ type: string; text: string }>((resolve) => m.onControl((type, payload) => (type === 'H' || type === 'E' || type === '!') && resolve({ type, text: payload.toString() })));
    m.send(
      0,
      'H',
      encodeFields([
        ['time', Date.now()],
        ['seed', randomBytes(32).toString('hex')],
        ['moddir', k.modulesDir],
        ['release', k.release],
        ['share', m.sharedDir],
        ['autoload', this.opts.autoload === false ? '0' : '1'],
        ['hostname', hostname()],
      ]),
    );
    const r = await reply;
    if (r.type === 'H') {
      this.timing.readyMs = this.since();
      return true;
    }
    if (r.type === 'E' && r.text.startsWith('mount-failed')) this.fail('mount-failed', `the guest could not mount ${r.text.slice('mount-failed '.length)}`);
    else this.fail('boot-failed', `the guest agent did not answer its hello: ${r.text}`);
    return false;
  }

  /** How much slower than this host the guest runs a process (limits in the guest scale by it). */
  async calibrate(): Promise<void> {
    const m = this.machine!;
    const time = async (run: () => Promise<unknown>) => {
      const xs: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        await run();
        xs.push(performance.now() - t);
      }
      return xs.sort((a, b) => a - b)[1];
    };
    const guestMs = await time(() => runOn(m, 'true', []));
    const hostMs = hostProcessMs ?? (hostProcessMs = await time(async () => spawnSync('true')));
    this.timing.processMs = guestMs;
    this.timing.hostProcessMs = hostMs;
    const factor = Math.max(1, guestMs / hostMs);
    m.speed = { factor, detail: `a process took ${guestMs.toFixed(0)} ms in the guest against ${hostMs.toFixed(1)} ms on this host when it started` };
  }

  /**
   * A guest that stops answering (a hung kernel or agent) is declared gone, so nothing waits on
   * it forever. The limit is GUEST_SILENCE_MS, whatever the guest's speed measured at its start.
   */
  watch(): void {
    const m = this.machine!;
    const limitMs = GUEST_SILENCE_MS;
    let since: number | undefined;
    this.heartbeat = setInterval(() => {
      if (!m.alive()) return this.unwatch();
      if (since !== undefined) {
        if (performance.now() - since > limitMs) this.fail('timeout', `the guest stopped answering: no reply to a ping for ${((performance.now() - since) / 1000).toFixed(0)} s (limit ${limitMs / 1000} s; ${hostLoad().detail} then; ${m.speed.detail}); qemu was killed`);
        return;
      }
      since = performance.now();
      void m.readlink('/proc/self').finally(() => (since = undefined));
    }, 5_000);
    this.heartbeat.unref();
  }

  private unwatch(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = undefined;
  }

  /** Kill qemu, wait for it, remove the job folder (NETCONFORM_VM_KEEP=1 keeps it). */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      this.unwatch();
      this.q?.kill();
      if (this.q) await this.q.exited;
      this.machine?.gone('the run stopped the guest');
      for (const s of this.servers) s.close();
      this.timing.totalMs = this.since();
      live.delete(this);
      if (this.dir && !process.env.NETCONFORM_VM_KEEP) rmSync(this.dir, { recursive: true, force: true });
    })();
    return this.stopped;
  }

  /** Synchronous, for exit handlers. */
  killNow(): void {
    this.q?.kill();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

let hostProcessMs: number | undefined;

/** A unix socket this process listens on for exactly one connection (qemu's). */
function listenOnce(path: string, servers: Server[]): { listening: Promise<void>; socket: Promise<Socket> } {
  let take!: (s: Socket) => void;
  const socket = new Promise<Socket>((r) => (take = r));
  const server = createServer((s) => {
    take(s);
    server.close();
  });
  servers.push(server);
  const listening = new Promise<void>((resolve, reject) => server.listen(path, resolve).once('error', reject));
  return { listening, socket };
}

/**
 * A ready guest (restored, or booted and saved), or one whose `outcome` says why not. A KVM
 * guest that does not reach its init is retried under software emulation.
 */
export async function startGuest(opts: GuestOptions): Promise<Guest> {
  const choice = opts.accel ? { accel: opts.accel, reason: 'asked for' } : chooseAccel();
  const g = await startOnce(opts, choice.accel, choice.reason);
  if (g.outcome === 'boot-failed' && choice.accel === 'kvm' && g.timing.bootMs === undefined && !opts.signal?.aborted) {
    opts.onLine?.(`microVM: ${g.detail}; retrying under software emulation`);
    await g.stop();
    const second = await startOnce(opts, 'tcg', 'KVM guest did not boot: software emulation');
    return second;
  }
  return g;
}

async function startOnce(opts: GuestOptions, accel: Accel, accelReason: string): Promise<Guest> {
  const g = new Guest(opts, accel, accelReason);
  if (!qemuInstalled()) {
    g.fail('boot-failed', 'qemu-system-x86_64 is not installed (apt-get install -y qemu-system-x86, or ./scripts/setup.sh)');
    return g;
  }
  let modules: ModuleFile[];
  let initramfs: string;
  try {
    modules = opts.rawModules ? [...resolveModules(readModuleIndex(opts.kernel.modulesDir), BOOT_MODULES), ...opts.rawModules] : resolveModules(readModuleIndex(opts.kernel.modulesDir), [...BOOT_MODULES, ...opts.modules]);
  } catch (e) {
    g.fail('module-failed', (e as Error).message);
    return g;
  }
  try {
    initramfs = buildInitramfs(opts.kernel, modules);
  } catch (e) {
    g.fail('boot-failed', `cannot build the guest's initramfs: ${(e as Error).message}`);
    return g;
  }
  live.add(g);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', () => {
      for (const x of live) x.killNow();
    });
  }
  const onAbort = () => g.fail('aborted', 'the run was interrupted; qemu was killed');
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();
  try {
    const snapshots = (opts.snapshot ?? process.env.NETCONFORM_VM_SNAPSHOT !== '0') && g.outcome === 'ok';
    const k = opts.kernel;
    const shapeArgs = qemuArgs({ vmlinuz: k.vmlinuz, initramfs, jobDir: '<job>', accel, memoryMb: opts.memoryMb ?? 2048, cpus: opts.cpus ?? 1, icount: process.env.NETCONFORM_VM_ICOUNT || undefined, agentSocket: '<agent>', qmpSocket: '<qmp>' });
    const file = snapshots ? snapshotFile({ release: k.release, vmlinuz: k.vmlinuz, initramfs, args: shapeArgs }, initramfsCacheDir()) : undefined;
    g.snapshot = file;
    let r: Awaited<ReturnType<Guest['launch']>> = 'failed';
    if (g.outcome === 'ok' && file && haveSnapshot(file)) {
      r = await g.launch(initramfs, modules, file);
      if (r === 'restore-failed') {
        opts.onLine?.(`microVM: the saved guest ${file} did not load (${g.console().split('\n').slice(-3).join(' ').trim()}); booting and saving it again`);
        discardSnapshot(file);
      }
    }
    if (g.outcome === 'ok' && r !== 'ready') r = await g.launch(initramfs, modules, undefined, file);
    if (r !== 'ready' || g.outcome !== 'ok') return g;
    if (!(await g.hello())) return g;
    await g.calibrate();
    g.watch();
    return g;
  } catch (e) {
    g.fail('harness-failed', `starting the guest: ${(e as Error).message}`);
    return g;
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
  }
}

/** A status line of the guest init ("netconform-guest: module-failed 8021q …"), also when the kernel log timestamps it. */
export function guestStatus(line: string): { event: string; args: string[]; text: string } | undefined {
  const text = line.replace(KERNEL_LINE, '').trim();
  if (!text.startsWith(GUEST_MARK)) return undefined;
  const [event, ...args] = text.slice(GUEST_MARK.length).trim().split(' ');
  return { event, args, text };
}

/** The firmware clears the screen with escape sequences; a console log wants plain text. */
export function stripTerminalControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[c()][0-9A-Za-z]?|\x1b/g, '');
}

/** The last lines of a console log, for messages (the whole log goes to JUnit system-out). */
export function consoleTail(console: string, n = 40): string {
  const lines = console.split('\n');
  return (lines.length > n ? [`… (${lines.length - n} earlier lines in the JUnit system-out)`] : []).concat(lines.slice(-n)).join('\n');
}

/** Job folders (and their qemu) left by runs that are gone; `all` also takes those of live runs. */
export function gcGuests(opts: GcScope & { dir?: string } = {}): { removed: string[]; killed: number[] } {
  const base = opts.dir ?? tmpdir();
  const removed: string[] = [];
  const killed: number[] = [];
  const re = new RegExp(`^${JOB_PREFIX}(\\d+)-`);
  for (const name of readdirSync(base)) {
    const m = re.exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (!collectable(owner, opts)) continue;
    const dir = join(base, name);
    try {
      const pid = Number(readFileSync(join(dir, 'qemu.pid'), 'utf8'));
      // only a qemu whose command line names this job folder is ours
      if (pid && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      }
    } catch {
      /* no pid file, or the process is gone */
    }
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return { removed, killed };
}
