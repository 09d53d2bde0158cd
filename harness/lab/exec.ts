// Running the few system tools the lab needs. Every command that acts on network state runs
// inside a lab namespace (`nsenter --net=<path>` or `ip -n`), never in the starting one.
import { spawn } from 'node:child_process';
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
  timeoutMs?: number;
  /** extra environment variables for the command */
  env?: Record<string, string>;
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/**
 * Runs a command to completion. Plain child_process rather than execa: a lab spawns a few
 * dozen short commands and execa's per-process bookkeeping (≈2 ms each, measured here) was a
 * fifth of a five-container lab's build time.
 */
export function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const started = performance.now();
  const shown = [file, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => stdout.push(d));
    child.stderr.on('data', (d: Buffer) => stderr.push(d));
    // Our own child, by its handle: a command that hangs must not hang the run.
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(new CommandError(shown, e.message, undefined));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      traceLine(started, shown);
      const out = { stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString(), exitCode: code ?? -1 };
      if (out.exitCode === 0 || opts.allowFail) return resolve(out);
      const detail = out.stderr || (signal ? `killed by ${signal}` : '') || (opts.input ? `input was:\n${opts.input.slice(0, 2000)}` : '');
      reject(new CommandError(shown, detail, code ?? undefined));
    });
    child.stdin.on('error', () => {}); // EPIPE: the command exited without reading its input
    child.stdin.end(opts.input ?? '');
  });
}

/** Run a command with its network namespace switched to `nsPath` (mount namespace untouched). */
export function runInNetns(nsPath: string, file: string, args: string[], opts: RunOptions = {}) {
  return run('nsenter', [`--net=${nsPath}`, '--', file, ...args], opts);
}
