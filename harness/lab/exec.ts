// Running the few system tools the lab needs. Every command that acts on network state runs
// inside a lab namespace (`nsenter --net=<path>` or `ip -n`), never in the starting one.
import { execa } from 'execa';

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
}

export interface RunResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function run(file: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await execa(file, args, {
    input: opts.input,
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    stripFinalNewline: false,
  });
  const out = { stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), exitCode: r.exitCode ?? -1 };
  if (out.exitCode !== 0 && !opts.allowFail) {
    const shown = [file, ...args].join(' ');
    const detail = out.stderr || (opts.input ? `input was:\n${opts.input.slice(0, 2000)}` : '');
    throw new CommandError(shown, detail, r.exitCode);
  }
  return out;
}

/** Run a command with its network namespace switched to `nsPath` (mount namespace untouched). */
export function runInNetns(nsPath: string, file: string, args: string[], opts: RunOptions = {}) {
  return run('nsenter', [`--net=${nsPath}`, '--', file, ...args], opts);
}
