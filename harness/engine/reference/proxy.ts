// The userland proxy (docker-proxy): one listener per published port on the host, relaying
// to the container. Docker runs a process per port; here one agent process in the host
// namespace holds every proxy socket, which behaves the same on the wire.
import type { Lab } from '../../lab/lab.js';
import { ProbeAgent } from '../../probe/agent.js';

export interface ProxySpec {
  proto: 'tcp' | 'udp';
  port: number;
  bind: string; // host address, 0.0.0.0 for all
  dst: string;
  dstPort: number;
  /**
   * Without the userland proxy dockerd still binds each published port with a dummy proxy
   * that never serves it (libnetwork portmapper newDummyProxy), so the port is taken on the
   * host, and a TCP client still completes its handshake when no DNAT rule catches it first
   * (seen with dockerd 20.10.24 and --iptables=false --userland-proxy=false).
   */
  dummy?: boolean;
  /**
   * 29: the port allocator binds and listens with a socket filter that drops every packet, and
   * takes it off only to hand the socket to docker-proxy: without the proxy a held port drops
   * what reaches it (no handshake), where older releases' dummy proxy shook hands.
   */
  drops?: boolean;
}

export class UserlandProxies {
  private agent?: ProbeAgent;
  private toOpen: ProxySpec[] = [];
  private toClose: { proto: 'tcp' | 'udp'; port: number }[] = [];
  /** every proxy that is (or will be) listening: a second bind on an overlapping address fails */
  private readonly bound: ProxySpec[] = [];

  constructor(
    private readonly lab: Lab,
    private readonly hostNs: string,
  ) {}

  /** Throws the engine's bind error when the port is held on an overlapping address. */
  checkFree(proto: string, bind: string, port: number): void {
    // IPv4 and IPv6 bindings never clash ([::] is IPv6 only, as docker-proxy binds it)
    const v6 = bind.includes(':');
    const any = (ip: string) => ip === '0.0.0.0' || ip === '::';
    const clash = this.bound.find((p) => p.proto === proto && p.port === port && p.bind.includes(':') === v6 && (p.bind === bind || any(p.bind) || any(bind)));
    if (clash) throw new ProxyBindError(`Error starting userland proxy: listen ${proto}${v6 ? 6 : 4} ${v6 ? `[${bind}]` : bind}:${port}: bind: address already in use`);
  }

  open(p: ProxySpec): void {
    this.bound.push(p);
    this.toOpen.push(p);
  }

  close(p: ProxySpec): void {
    const i = this.bound.indexOf(p);
    if (i >= 0) this.bound.splice(i, 1);
    const pending = this.toOpen.indexOf(p);
    if (pending >= 0) this.toOpen.splice(pending, 1);
    else this.toClose.push({ proto: p.proto, port: p.port });
  }

  async apply(): Promise<void> {
    if (this.toOpen.length === 0 && this.toClose.length === 0) return;
    this.agent ??= await ProbeAgent.start({ netns: this.lab.nsPath(this.hostNs), label: 'docker-proxy' });
    const agent = this.agent;
    const closing = this.toClose;
    const opening = this.toOpen;
    this.toClose = [];
    this.toOpen = [];
    for (const c of closing) await agent.close(c.proto, c.port);
    await Promise.all(opening.map((p) => (p.dummy ? agent.hold(p.proto, p.port, p.bind, { drop: p.drops }) : agent.proxy(p.proto, p.port, p.dst, p.dstPort, p.bind))));
  }

  async stop(): Promise<void> {
    await this.agent?.stop();
    this.agent = undefined;
  }
}

export class ProxyBindError extends Error {}
