// A child process spoken to in lines: "CMD id args…" in, "id words…" out, many requests in
// flight at once. The probe agent and the reference engine's helper both speak it. It runs on
// the machine the work is on (this host, or a microVM guest).
import { createInterface } from 'node:readline';
import '../machine/local.js';
import { currentMachine, type MachineProcess } from '../machine/machine.js';
import { traced } from './trace.js';

interface Pending {
  resolve: (words: string[]) => void;
  reject: (e: Error) => void;
}

export class LineProcess {
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private stderr = '';
  private exited = false;
  private stopped?: Promise<void>;

  private constructor(
    private readonly child: MachineProcess,
    readonly label: string,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  /** Spawn and wait for its "ready" line; `env` is its whole environment when given. */
  static async start(file: string, args: string[], label: string, env?: Record<string, string>): Promise<LineProcess> {
    const child = await currentMachine().spawn(file, args, env ? { env, replaceEnv: true } : {});
    const p = new LineProcess(child, label);
    await traced(`start ${label}`, p.attach());
    return p;
  }

  private attach(): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      let ready = false;
      this.child.stderr!.on('data', (d) => (this.stderr += String(d)));
      // EPIPE: the process died (its namespace's last process went with a container); the
      // exit handler reports it, a write to it must not crash the run
      this.child.stdin!.on('error', () => {});
      void this.child.exited.then((x) => {
        this.exited = true;
        const why = x.error ?? `${x.signal ?? x.code}`;
        this.fail(new Error(`${this.label} exited (${why}): ${this.stderr.trim()}`), ready ? undefined : rejectReady);
      });
      createInterface({ input: this.child.stdout! }).on('line', (line) => {
        if (!ready && line === 'ready') {
          ready = true;
          return resolveReady();
        }
        const words = line.split(' ');
        const p = this.pending.get(words[0]);
        if (!p) return;
        this.pending.delete(words[0]);
        p.resolve(words.slice(1));
      });
    });
  }

  private fail(e: Error, also?: (e: Error) => void): void {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    also?.(e);
  }

  /** Send one command; resolves with the words of its reply (after the id). */
  request(cmd: string, args: (string | number | undefined)[]): Promise<string[]> {
    if (this.exited) return Promise.reject(new Error(`${this.label} is not running: ${this.stderr.trim()}`));
    const id = `r${++this.next}`;
    const line = [cmd, id, ...args.map((a) => (a === undefined ? '-' : String(a)))].join(' ');
    return traced(
      `${this.label}: ${cmd} ${args.join(' ')}`,
      new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.child.stdin!.write(line + '\n');
      }),
    );
  }

  /** Quit, then SIGKILL by pid if it is still there; idempotent. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 200);
      void this.child.exited.then(() => {
        clearTimeout(timer);
        resolve();
      });
      this.child.stdin!.end('Q\n');
    });
    return this.stopped;
  }
}
