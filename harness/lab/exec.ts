// Running the few system tools the lab needs, on the machine the work is on (this host, or a
// microVM guest). Every command that acts on network state runs inside a lab namespace
// (`netns` or `ip -n`), never in the starting one.
import { finished } from 'node:stream/promises';
import '../machine/local.js';
import { currentMachine, hangGuard, type Machine } from '../machine/machine.js';
import { traceLine } from '../util/trace.js';

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    readonly exitCode: number | undefined,
  ) {
    super(`${command} failed (exit ${exitCode ?? '?'}): ${stderr.trim() || '(no output)'}`);
  }
}

export interface RunOptions {
  input?: string;
  /** do not throw on a non-zero exit */
  allowFail?: boolean;
  /** kill a command that hangs after this long (default: HANG_GUARD_MS; 0: never) */
  timeoutMs?: number;
  /** extra environment variables for the command */
  env?: Record<string, string>;
  /** run it inside this network namespace (a /run/netns/… or /proc/<pid>/ns/net path) */
  netns?: string;
  /** and inside this mount namespace (a /proc/<pid>/ns/mnt path) */
  mntns?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** Runs a command to completion on the current machine. */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return runOn(currentMachine(), file, args, opts);
}

/** Runs a command to completion on machine `m`. */
export async function runOn(m: Machine, file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const shown = [...(opts.netns ? [`[${opts.netns.replace(/^\/run\/netns\//, '')}]`] : []), file, ...args].join(' ');
  let p;
  try {
    p = await m.spawn(file, args, { env: opts.env, netns: opts.netns, mntns: opts.mntns });
  } catch (e) {
    throw new CommandError(shown, (e as Error).message, undefined);
  }
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  p.stdout?.on('data', (d: Buffer) => stdout.push(d));
  p.stderr?.on('data', (d: Buffer) => stderr.push(d));
  // A command that hangs must not hang the run; the guard is far above what load makes of a
  // command's time, and says what it was when it trips.
  let timedOut: string | undefined;
  const guard = hangGuard(opts.timeoutMs, (why) => {
    timedOut = why;
    p.kill('SIGKILL');
  });
  p.stdin?.on('error', () => {}); // EPIPE: the command exited without reading its input
  p.stdin?.end(opts.input ?? '');
  const exit = await p.exited;
  guard.clear();
  // the output may still be in the streams' buffers: a guest's process can start, print and
  // exit in one read of its port, before the 'data' listeners above ever ran (its stdout was
  // then read as empty: `ip -json link show` saw no links)
  await drained(p.stdout, p.stderr);
  traceLine(started, m.name === 'host' ? shown : `${m.name}: ${shown}`);
  if (exit.error) throw new CommandError(shown, exit.error, undefined);
  const out = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), exitCode: exit.code ?? -1 };
  if (out.exitCode === 0 || opts.allowFail) return out;
  const detail = timedOut
    ? `killed: ${timedOut}${out.stderr ? `: ${out.stderr}` : ''}`
    : out.stderr || (exit.signal ? `killed by ${exit.signal}` : '') || (opts.input ? `input was:\n${opts.input.slice(0, 2000)}` : '');
  throw new CommandError(shown, detail, exit.code ?? undefined);
}

/** Resolves once every given stream has delivered all it holds (or failed). */
export function drained(...streams: (NodeJS.ReadableStream | undefined)[]): Promise<unknown> {
  return Promise.all(streams.map((s) => s && finished(s).catch(() => {})));
}

/** Run a command with its network namespace switched to `nsPath` (mount namespace untouched). */
export function runInNetns(nsPath: string, file: string, args: string[], opts: RunOptions = {}) {
  return run(file, args, { ...opts, netns: nsPath });
}
