// The harness side of a probe agent: spawns the C agent in a namespace and turns its result
// lines into typed outcomes. Many requests may be in flight; each carries its own id.
import { LineProcess } from '../util/line-process.js';
import { agentPath } from '../native.js';

export type Outcome = 'connected' | 'refused' | 'timeout' | 'unreachable';

/** An address and where it came from ("hosts", "dns:127.0.0.11"), or why there is none. */
export type Resolution = { address: string; via: string; failure?: undefined } | { failure: string; address?: undefined; via?: undefined };

/**
 * What identifies the packet a probe sent, as a trace of the namespaces it crossed shows it:
 * the source address and port the kernel gave a TCP or UDP probe, or an echo request's
 * identifier and sequence number. Absent when no packet left (no route at the sender).
 */
export type PacketIdentity = { kind: 'port'; address: string; port: number } | { kind: 'icmp'; id: number; seq: number };

export interface ProbeResult {
  outcome: Outcome | 'error';
  seen?: string; // source address the listener saw
  seenPort?: number;
  detail?: string;
  ms: number;
  sent?: PacketIdentity;
}

/** Takes the identity word ("local=IP:PORT", "icmp=ID:SEQ") out of an outcome's words. */
export function identityOf(words: string[]): { rest: string[]; sent?: PacketIdentity } {
  let sent: PacketIdentity | undefined;
  const rest = words.filter((w) => {
    const local = /^local=(\d+\.\d+\.\d+\.\d+):(\d+)$/.exec(w);
    const icmp = /^icmp=(\d+):(\d+)$/.exec(w);
    if (local) sent = { kind: 'port', address: local[1], port: Number(local[2]) };
    else if (icmp) sent = { kind: 'icmp', id: Number(icmp[1]), seq: Number(icmp[2]) };
    return !local && !icmp;
  });
  return { rest, sent };
}

export class ProbeAgent {
  private constructor(private readonly proc: LineProcess) {}

  get label(): string {
    return this.proc.label;
  }

  get pid(): number {
    return this.proc.pid;
  }

  /**
   * An agent inside a network namespace (and a mount namespace, to read files as the
   * container's processes do), with the container's environment as its own.
   */
  static async start(opts: { netns?: string; mntns?: string; env?: string[]; label: string }): Promise<ProbeAgent> {
    const args: string[] = [];
    if (opts.netns) args.push('--netns', opts.netns);
    if (opts.mntns) args.push('--mntns', opts.mntns);
    const env = opts.env ? Object.fromEntries(opts.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])) : {};
    return new ProbeAgent(await LineProcess.start(agentPath(), args, `probe agent ${opts.label}`, env));
  }

  private request(cmd: string, args: (string | number | undefined)[]): Promise<string[]> {
    return this.proc.request(cmd, args);
  }

  private static check(words: string[], what: string): void {
    if (words[0] !== 'ok') throw new Error(`${what}: ${words.join(' ')}`);
  }

  async listen(proto: 'tcp' | 'udp', port: number, bind?: string): Promise<void> {
    // without an address: all of them (TCP dual-stack, IPv4 and IPv6)
    ProbeAgent.check(await this.request('L', [proto, port, ...(bind ? [bind] : [])]), `${this.label}: listen ${proto}/${port}`);
  }

  private async probe(cmd: string, args: (string | number | undefined)[]): Promise<ProbeResult> {
    const t = performance.now();
    const { rest: w, sent } = identityOf(await this.request(cmd, args));
    const ms = performance.now() - t;
    const outcome = w[0] as ProbeResult['outcome'];
    if (outcome === 'connected') {
      const m = /^seen=(.+):(\d+)$/.exec(w[1] ?? '');
      return { outcome, seen: m?.[1], seenPort: m ? Number(m[2]) : undefined, ms, sent };
    }
    if (['refused', 'timeout', 'unreachable'].includes(outcome)) return { outcome, detail: w.slice(1).join(' ') || undefined, ms, sent };
    return { outcome: 'error', detail: w.join(' '), ms, sent };
  }

  /** `seenWaitMs`: once connected, how long the listener's "seen" line may take (default: timeoutMs). */
  tcp(dst: string, port: number, timeoutMs: number, opts: { source?: string; token?: string; seenWaitMs?: number } = {}): Promise<ProbeResult> {
    return this.probe('C', ['tcp', dst, port, timeoutMs, opts.source, opts.token, ...(opts.seenWaitMs ? [opts.seenWaitMs] : [])]);
  }

  udp(dst: string, port: number, timeoutMs: number, opts: { source?: string; token?: string } = {}): Promise<ProbeResult> {
    return this.probe('U', [dst, port, timeoutMs, opts.source, opts.token]);
  }

  icmp(dst: string, timeoutMs: number, opts: { source?: string } = {}): Promise<ProbeResult> {
    return this.probe('P', [dst, timeoutMs, opts.source]);
  }

  /**
   * The source address:port a listener of this agent saw with this token; with `waitMs`, the
   * agent answers when the token arrives, or says none after waitMs.
   */
  async seen(token: string, waitMs = 0): Promise<string | undefined> {
    const w = await this.request('S', [token, ...(waitMs > 0 ? [waitMs] : [])]);
    return w[0] === 'seen' ? w[1] : undefined;
  }

  async proxy(proto: 'tcp' | 'udp', listenPort: number, dst: string, dstPort: number, bind = '0.0.0.0'): Promise<void> {
    ProbeAgent.check(await this.request('X', [proto, listenPort, dst, dstPort, bind]), `${this.label}: proxy ${bind}:${listenPort}/${proto}`);
  }

  /**
   * Bind (and listen on) a port without ever serving it, as dockerd's dummy proxy does; `drop`:
   * with a socket filter that drops every packet, as 29's port allocator leaves it.
   */
  async hold(proto: 'tcp' | 'udp', port: number, bind = '0.0.0.0', opts: { drop?: boolean } = {}): Promise<void> {
    ProbeAgent.check(await this.request('H', [proto, port, bind, ...(opts.drop ? ['drop'] : [])]), `${this.label}: hold ${bind}:${port}/${proto}`);
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

  /** Forget this namespace's ARP entries; returns how many went. */
  async forgetArp(): Promise<number> {
    const w = await this.request('A', []);
    if (w[0] !== 'ok') throw new Error(`${this.label}: forget ARP entries: ${w.join(' ')}`);
    return Number(w[1]);
  }

  /** Start counting the 802.1Q tags of the IPv4 frames between a and b on dev; returns a handle for captured(). */
  async capture(dev: string, a: string, b: string, proto: 'tcp' | 'udp' | 'icmp'): Promise<string> {
    const w = await this.request('T', [dev, a, b, proto]);
    ProbeAgent.check(w, `${this.label}: capture on ${dev}`);
    return w[1];
  }

  /** Stop a capture: frames counted per tag ("none": untagged). */
  async captured(handle: string): Promise<Map<string, number>> {
    const w = await this.request('Y', [handle]);
    if (w[0] !== 'frames') throw new Error(`${this.label}: capture: ${w.join(' ')}`);
    return new Map(w.slice(2).map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]));
  }

  /** Resolve a name as a process in this namespace would (/etc/hosts, then its nameserver). */
  async resolve(name: string, timeoutMs: number): Promise<Resolution> {
    const w = await this.request('N', [name, timeoutMs]);
    if (w[0] === 'resolved') return { address: w[1], via: w[2] };
    if (w[0] === 'none') return { failure: w[1] ?? 'unknown' };
    throw new Error(`${this.label}: resolve ${name}: ${w.join(' ')}`);
  }

  stop(): Promise<void> {
    return this.proc.stop();
  }
}
