// The harness side of a probe agent: spawns the C agent in a namespace and turns its result
// lines into typed outcomes. Many requests may be in flight; each carries its own id.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { agentPath } from './build-agent.js';

export type Outcome = 'connected' | 'refused' | 'timeout' | 'unreachable';

export interface ProbeResult {
  outcome: Outcome | 'error';
  seen?: string; // source address the listener saw
  seenPort?: number;
  detail?: string;
  ms: number;
}

interface Pending {
  resolve: (words: string[]) => void;
  reject: (e: Error) => void;
}

export class ProbeAgent {
  private readonly pending = new Map<string, Pending>();
  private next = 0;
  private stderr = '';
  private exited = false;
  private stopped?: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  static async start(opts: { netns?: string; mntns?: string; envFile?: string; label: string }): Promise<ProbeAgent> {
    const args: string[] = [];
    if (opts.netns) args.push('--netns', opts.netns);
    if (opts.mntns) args.push('--mntns', opts.mntns);
    if (opts.envFile) args.push('--env-file', opts.envFile);
    const child = spawn(agentPath(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const agent = new ProbeAgent(child, opts.label);
    await agent.attach();
    return agent;
  }

  private attach(): Promise<void> {
    return new Promise((resolveReady, rejectReady) => {
      let ready = false;
      this.child.stderr!.on('data', (d) => (this.stderr += String(d)));
      this.child.on('error', (e) => this.fail(new Error(`probe agent ${this.label}: ${e.message}`), rejectReady));
      this.child.on('exit', (code, sig) => {
        this.exited = true;
        this.fail(new Error(`probe agent ${this.label} exited (${sig ?? code}): ${this.stderr.trim()}`), ready ? undefined : rejectReady);
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

  private request(cmd: string, args: (string | number | undefined)[]): Promise<string[]> {
    if (this.exited) return Promise.reject(new Error(`probe agent ${this.label} is not running: ${this.stderr.trim()}`));
    const id = `r${++this.next}`;
    const line = [cmd, id, ...args.map((a) => (a === undefined ? '-' : String(a)))].join(' ');
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin!.write(line + '\n');
    });
  }

  private static check(words: string[], what: string): void {
    if (words[0] !== 'ok') throw new Error(`${what}: ${words.join(' ')}`);
  }

  async listen(proto: 'tcp' | 'udp', port: number, bind?: string): Promise<void> {
    ProbeAgent.check(await this.request('L', [proto, port, bind ?? '0.0.0.0']), `${this.label}: listen ${proto}/${port}`);
  }

  private async probe(cmd: string, args: (string | number | undefined)[]): Promise<ProbeResult> {
    const t = performance.now();
    const w = await this.request(cmd, args);
    const ms = performance.now() - t;
    const outcome = w[0] as ProbeResult['outcome'];
    if (outcome === 'connected') {
      const m = /^seen=(.+):(\d+)$/.exec(w[1] ?? '');
      return { outcome, seen: m?.[1], seenPort: m ? Number(m[2]) : undefined, ms };
    }
    if (['refused', 'timeout', 'unreachable'].includes(outcome)) return { outcome, detail: w.slice(1).join(' ') || undefined, ms };
    return { outcome: 'error', detail: w.join(' '), ms };
  }

  tcp(dst: string, port: number, timeoutMs: number, opts: { source?: string; token?: string } = {}): Promise<ProbeResult> {
    return this.probe('C', ['tcp', dst, port, timeoutMs, opts.source, opts.token]);
  }

  udp(dst: string, port: number, timeoutMs: number, opts: { source?: string; token?: string } = {}): Promise<ProbeResult> {
    return this.probe('U', [dst, port, timeoutMs, opts.source, opts.token]);
  }

  icmp(dst: string, timeoutMs: number, opts: { source?: string } = {}): Promise<ProbeResult> {
    return this.probe('P', [dst, timeoutMs, opts.source]);
  }

  /** The source address:port a listener of this agent saw with this token. */
  async seen(token: string): Promise<string | undefined> {
    const w = await this.request('S', [token]);
    return w[0] === 'seen' ? w[1] : undefined;
  }

  async proxy(proto: 'tcp' | 'udp', listenPort: number, dst: string, dstPort: number, bind = '0.0.0.0'): Promise<void> {
    ProbeAgent.check(await this.request('X', [proto, listenPort, dst, dstPort, bind]), `${this.label}: proxy ${bind}:${listenPort}/${proto}`);
  }

  async close(proto: 'tcp' | 'udp', port: number): Promise<void> {
    await this.request('K', [port, proto]);
  }

  async readFile(path: string): Promise<string> {
    const w = await this.request('R', [path]);
    if (w[0] !== 'file') throw new Error(`${this.label}: cannot read ${path}: ${w.join(' ')}`);
    return Buffer.from(w[1] ?? '', 'base64').toString('utf8');
  }

  async getenv(name: string): Promise<string | undefined> {
    const w = await this.request('E', [name]);
    return w[0] === 'env' ? Buffer.from(w[1] ?? '', 'base64').toString('utf8') : undefined;
  }

  /** Quit, then SIGKILL by pid if it is still there; idempotent. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      if (this.exited) return resolve();
      const timer = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 200);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      this.child.stdin!.end('Q\n');
    });
    return this.stopped;
  }
}
