// One guest boot, host side: write the job, start qemu, read the console as it comes, enforce
// the timeouts, and say what happened (ran, boot failure, module failure, timeout, harness
// crash) with the console log as evidence. qemu is killed by pid on timeout, abort (Ctrl-C,
// SIGTERM) and process exit; the job folder is removed. `gcGuests` removes what a SIGKILLed
// run left (the folder carries the owning pid, and qemu's pid is written into it).
import { existsSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { GUEST_MARK } from './guest-init.js';
import { buildInitramfs } from './initramfs.js';
import { CAPABILITIES_FILE, MODULES_FILE, RESULTS_FILE, type GuestCapabilities, type GuestJob } from './job.js';
import type { GuestKernel } from './kernel.js';
import { readModuleIndex, resolveModules, type ModuleFile } from './modules.js';
import { QemuProcess, chooseAccel, qemuArgs, qemuInstalled, type Accel } from './qemu.js';
import type { ScenarioResult } from '../report/results.js';

export const JOB_PREFIX = 'ncf-vm-';

export interface GuestOptions {
  kernel: GuestKernel;
  /** modules to load in the guest (resolved with their dependencies) */
  modules: string[];
  /** modules loaded exactly as given, unresolved (tests use it to make a load fail) */
  rawModules?: ModuleFile[];
  /** the kernel may load further modules on demand (default); off proves `modules` is complete */
  autoload?: boolean;
  accel?: Accel;
  /** the whole guest run, from qemu start to power-off */
  timeoutMs: number;
  /** from qemu start to the guest's init; a KVM guest that misses it is retried under TCG */
  bootTimeoutMs?: number;
  memoryMb?: number;
  cpus?: number;
  initramfs?: string;
  signal?: AbortSignal;
  /** console lines meant for a person (the init's and the harness's, not the kernel's) */
  onLine?: (line: string) => void;
}

export type GuestOutcome = 'ok' | 'boot-failed' | 'module-failed' | 'mount-failed' | 'timeout' | 'harness-failed' | 'aborted';

export interface GuestTiming {
  /** qemu start → guest init running */
  bootMs?: number;
  /** qemu start → modules loaded */
  modulesMs?: number;
  /** qemu start → harness loaded in the guest (node started) */
  harnessReadyMs?: number;
  /** qemu start → qemu gone */
  totalMs: number;
}

export interface GuestRun {
  outcome: GuestOutcome;
  /** what went wrong, for a person; empty when ok */
  detail: string;
  /** the whole serial console, kernel lines included */
  console: string;
  accel: Accel;
  accelReason: string;
  release: string;
  timing: GuestTiming;
  results?: ScenarioResult[];
  capabilities?: GuestCapabilities;
  /** modules loaded in the guest when the harness finished */
  loadedModules?: string[];
}

const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

const live = new Set<{ q: QemuProcess; dir: string }>();
let exitHookInstalled = false;

function killAllGuests(): void {
  for (const g of live) {
    g.q.kill();
    rmSync(g.dir, { recursive: true, force: true });
  }
  live.clear();
}

export async function bootGuest(job: GuestJob, opts: GuestOptions): Promise<GuestRun> {
  const choice = opts.accel ? { accel: opts.accel, reason: 'asked for' } : chooseAccel();
  const first = await bootOnce(job, opts, choice.accel, choice.reason);
  if (first.outcome === 'boot-failed' && choice.accel === 'kvm' && first.timing.bootMs === undefined && !opts.signal?.aborted) {
    opts.onLine?.(`microVM: ${first.detail}; retrying under software emulation`);
    const second = await bootOnce(job, opts, 'tcg', 'KVM guest did not boot: software emulation');
    second.console = `${first.console}\n--- retry under TCG ---\n${second.console}`;
    return second;
  }
  return first;
}

async function bootOnce(job: GuestJob, opts: GuestOptions, accel: Accel, accelReason: string): Promise<GuestRun> {
  const run: GuestRun = { outcome: 'ok', detail: '', console: '', accel, accelReason, release: opts.kernel.release, timing: { totalMs: 0 } };
  const fail = (outcome: GuestOutcome, detail: string) => {
    if (run.outcome === 'ok') Object.assign(run, { outcome, detail });
  };
  if (!qemuInstalled()) {
    fail('boot-failed', 'qemu-system-x86_64 is not installed (apt-get install -y qemu-system-x86, or ./scripts/setup.sh)');
    return run;
  }
  let modules: ModuleFile[];
  let initramfs: string;
  try {
    modules = opts.rawModules ?? resolveModules(readModuleIndex(opts.kernel.modulesDir), opts.modules);
  } catch (e) {
    fail('module-failed', (e as Error).message);
    return run;
  }
  try {
    initramfs = opts.initramfs ?? buildInitramfs(opts.kernel);
  } catch (e) {
    fail('boot-failed', `cannot build the guest's initramfs: ${(e as Error).message}`);
    return run;
  }

  const dir = mkdtempSync(join(tmpdir(), `${JOB_PREFIX}${process.pid}-`));
  writeFileSync(join(dir, 'job.json'), JSON.stringify(job));
  writeFileSync(join(dir, 'guest.env'), guestEnv(opts.kernel, modules, opts.autoload ?? true));
  const lines: string[] = [];
  const t0 = performance.now();
  let initSeen = false;
  let exitCode: number | undefined;
  const q = QemuProcess.start(qemuArgs({ vmlinuz: opts.kernel.vmlinuz, initramfs, jobDir: dir, accel, memoryMb: opts.memoryMb ?? 2048, cpus: opts.cpus ?? Number(process.env.NCF_SMP ?? 2) }), (raw) => {
    const line = stripTerminalControls(raw);
    lines.push(line);
    const since = performance.now() - t0;
    const status = guestStatus(line);
    if (status) {
      const { event, args: rest } = status;
      if (event === 'init') {
        initSeen = true;
        run.timing.bootMs = since;
      } else if (event === 'modules-loaded') run.timing.modulesMs = since;
      else if (event === 'harness-ready') run.timing.harnessReadyMs = since;
      else if (event === 'module-failed') fail('module-failed', `module ${rest[0]} failed to load in the guest: ${rest.slice(1).join(' ')}`);
      else if (event === 'mount-failed') fail('mount-failed', `the guest could not mount ${rest.join(' ')}`);
      else if (event === 'harness-exit') exitCode = Number(rest[0]);
    }
    if (!KERNEL_LINE.test(line)) opts.onLine?.(line);
    else if (status) opts.onLine?.(status.text);
  });
  writeFileSync(join(dir, 'qemu.pid'), String(q.pid));
  const entry = { q, dir };
  live.add(entry);
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.once('exit', killAllGuests);
  }
  const seconds = (ms: number) => `${(ms / 1000).toFixed(0)} s`;
  const timers = [
    setTimeout(() => {
      fail('timeout', `the guest did not finish within ${seconds(opts.timeoutMs)} (NETCONFORM_VM_TIMEOUT or --vm-timeout to change it); qemu was killed`);
      q.kill();
    }, opts.timeoutMs),
  ];
  if (opts.bootTimeoutMs) {
    timers.push(
      setTimeout(() => {
        if (initSeen) return;
        fail('boot-failed', `the guest kernel did not reach its init within ${seconds(opts.bootTimeoutMs!)} (${accel}); qemu was killed`);
        q.kill();
      }, opts.bootTimeoutMs),
    );
  }
  const onAbort = () => {
    fail('aborted', 'the run was interrupted; qemu was killed');
    q.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  if (opts.signal?.aborted) onAbort();

  const exit = await q.exited;
  for (const t of timers) clearTimeout(t);
  opts.signal?.removeEventListener('abort', onAbort);
  live.delete(entry);
  run.timing.totalMs = performance.now() - t0;
  if (exit.error) lines.push(exit.error);
  run.console = lines.join('\n');

  const silent = lines.length === 0 ? '; the console stayed empty' : '';
  if (!initSeen) fail('boot-failed', `the guest kernel never reached its init (qemu exit ${exit.signal ?? exit.code}${exit.error ? `: ${exit.error}` : ''}${silent})`);
  else if (exitCode === undefined) fail('harness-failed', 'the guest stopped before the harness finished (kernel panic or crash of the guest init; see the console)');
  else if (exitCode !== 0) fail('harness-failed', `the harness in the guest exited with code ${exitCode}`);

  try {
    if (existsSync(join(dir, RESULTS_FILE))) run.results = JSON.parse(readFileSync(join(dir, RESULTS_FILE), 'utf8'));
    if (existsSync(join(dir, CAPABILITIES_FILE))) run.capabilities = JSON.parse(readFileSync(join(dir, CAPABILITIES_FILE), 'utf8'));
    if (existsSync(join(dir, MODULES_FILE))) run.loadedModules = readFileSync(join(dir, MODULES_FILE), 'utf8').split('\n').filter(Boolean);
  } catch (e) {
    fail('harness-failed', `the guest's results are unreadable: ${(e as Error).message}`);
  } finally {
    if (!process.env.NETCONFORM_VM_KEEP) rmSync(dir, { recursive: true, force: true });
  }
  return run;
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

/** Shell assignments the guest init sources from the job share. */
export function guestEnv(kernel: GuestKernel, modules: ModuleFile[], autoload = true): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const vars: Record<string, string> = {
    NCF_MODDIR: kernel.modulesDir,
    // "-" marks a soft dependency: loaded when it can be, never fatal
    NCF_MODULES: modules.map((m) => `${m.optional ? '-' : ''}${m.name}:${m.path}`).join(' '),
    NCF_ROOT: packageRoot(),
    NCF_NODE: realpathSync(process.execPath),
    NCF_AUTOLOAD: autoload ? '1' : '0',
    // the host's NETCONFORM_TRACE traces the guest's labs too (on its console)
    NCF_TRACE: process.env.NETCONFORM_TRACE ?? '',
  };
  return Object.entries(vars)
    .map(([k, v]) => `${k}=${q(v)}\n`)
    .join('');
}

/** The last lines of a console log, for messages (the whole log goes to JUnit system-out). */
export function consoleTail(console: string, n = 40): string {
  const lines = console.split('\n');
  return (lines.length > n ? [`… (${lines.length - n} earlier lines in the JUnit system-out)`] : []).concat(lines.slice(-n)).join('\n');
}

/** A run is alive while its process exists and is not a zombie (a SIGKILLed run not yet reaped). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Job folders (and their qemu) left by runs that are gone; `all` also takes those of live runs. */
export function gcGuests(opts: { all?: boolean; dir?: string } = {}): { removed: string[]; killed: number[] } {
  const base = opts.dir ?? tmpdir();
  const removed: string[] = [];
  const killed: number[] = [];
  const re = new RegExp(`^${JOB_PREFIX}(\\d+)-`);
  for (const name of readdirSync(base)) {
    const m = re.exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (!opts.all && alive(owner)) continue;
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
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return { removed, killed };
}
