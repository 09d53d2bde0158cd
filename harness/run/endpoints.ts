// Resolves the endpoint names scenarios use to probe agents and addresses of the running lab:
//   a host ("host", or a host's name), HOST@NET (a network's gateway on that host),
//   a container ("web", "hostB/web") or CONTAINER@NET, a lan peer, "router",
//   "wan" / wan@IP (outside servers), or a literal IPv4 address. In a dual-stack lab
//   `ipv6:NAME` stands for the IPv6 address of any of them (ipv6:web, ipv6:host@net: the
//   network's IPv6 gateway, ipv6:wan), and literal IPv6 addresses are endpoints too.
import type { ContainerInfo, Engine } from '../engine/types.js';
import type { ProbeAgent } from '../probe/agent.js';
import type { HostSpec, Scenario } from '../scenario/types.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:]*$/;
const V6 = 'ipv6:';

export interface LabAgents {
  wan: ProbeAgent;
  hosts: Map<string, ProbeAgent>;
  peers: Map<string, ProbeAgent>;
  /** by container reference ("web", "hostB/web") */
  containers: Map<string, ProbeAgent>;
}

/** Container references ("web", "hostB/web", or a name unique across hosts) → host and name. */
export function containerIndex(sc: Scenario): Map<string, { host: HostSpec; name: string; ref: string }> {
  const index = new Map<string, { host: HostSpec; name: string; ref: string }>();
  const count = new Map<string, number>();
  for (const h of sc.hosts) for (const c of h.containers) count.set(c.name, (count.get(c.name) ?? 0) + 1);
  for (const h of sc.hosts) {
    for (const c of h.containers) {
      index.set(c.ref, { host: h, name: c.name, ref: c.ref });
      if (count.get(c.name) === 1) index.set(c.name, { host: h, name: c.name, ref: c.ref });
    }
  }
  return index;
}

export class Endpoints {
  private readonly index;
  private readonly multiHost: boolean;

  constructor(
    private readonly sc: Scenario,
    private readonly engines: Map<string, Engine>,
    private readonly agents: LabAgents,
  ) {
    this.index = containerIndex(sc);
    this.multiHost = sc.hosts.length > 1;
  }

  private container(ref: string): { info: ContainerInfo; engine: Engine; ref: string } {
    const at = this.index.get(ref);
    if (!at) throw new Error(`no container ${ref} in this scenario`);
    const engine = this.engines.get(at.host.name)!;
    const info = engine.containers().find((c) => c.name === at.name);
    if (!info) throw new Error(`container ${ref} is not running`);
    return { info, engine, ref: at.ref };
  }

  /** The agent that sends from this endpoint. */
  agentOf(name: string): ProbeAgent {
    const base = (name.startsWith(V6) ? name.slice(V6.length) : name).split('@')[0];
    if (base === 'wan' || base === 'router') return this.agents.wan;
    const a = this.agents.hosts.get(base) ?? this.agents.peers.get(base) ?? this.agents.containers.get(this.index.get(base)?.ref ?? base);
    if (!a) throw new Error(`no running endpoint ${base} to probe from`);
    return a;
  }

  /** The Docker host a container runs on (a host stands for itself; others for the first host). */
  hostOf(ref: string): string {
    if (ref.startsWith(V6)) ref = ref.slice(V6.length);
    if (this.sc.hosts.some((h) => h.name === ref)) return ref;
    return this.index.get(ref)?.host.name ?? this.sc.hosts[0].name;
  }

  /** Every agent, to ask which one saw a probe's token. */
  all(): ProbeAgent[] {
    return [this.agents.wan, ...this.agents.hosts.values(), ...this.agents.peers.values(), ...this.agents.containers.values()];
  }

  /** The IPv4 address an endpoint name stands for. */
  address(name: string): string {
    if (IPV4.test(name) || IPV6.test(name)) return name;
    if (name.startsWith(V6)) return this.address6(name.slice(V6.length));
    const [base, net] = name.split('@');
    const host = this.sc.hosts.find((h) => h.name === base);
    if (host) {
      if (!net) return host.address.split('/')[0];
      const n = this.engines.get(host.name)!.networks().find((x) => x.name === net);
      if (!n) throw new Error(`no network ${net} on ${host.name} for ${name}`);
      return n.gateway;
    }
    if (base === 'wan') return net ?? this.sc.wan.servers[0];
    if (base === 'router') return this.sc.lan.router;
    const peer = this.sc.lan.peers.find((p) => p.name === base);
    if (peer) return peer.address.split('/')[0];
    const c = this.container(base).info;
    const ip = net ? c.addresses[net] : c.ip;
    if (!ip) throw new Error(`container ${base} has no address${net ? ` on ${net}` : ''}`);
    return ip;
  }

  /** The IPv6 address an endpoint name stands for (`ipv6:NAME`). */
  private address6(name: string): string {
    const [base, net] = name.split('@');
    const host = this.sc.hosts.find((h) => h.name === base);
    if (host) {
      if (!net) return host.address6!.split('/')[0];
      const n = this.engines.get(host.name)!.networks().find((x) => x.name === net);
      if (!n?.gateway6) throw new Error(`no IPv6 network ${net} on ${host.name} for ipv6:${name}`);
      return n.gateway6;
    }
    if (base === 'wan') return net ?? this.sc.wan.servers6[0];
    if (base === 'router') return this.sc.lan.router6!;
    const peer = this.sc.lan.peers.find((p) => p.name === base);
    if (peer) return peer.address6!.split('/')[0];
    const c = this.container(base).info;
    const ip = net ? c.addresses6?.[net] : Object.values(c.addresses6 ?? {})[0];
    if (!ip) throw new Error(`container ${base} has no IPv6 address${net ? ` on ${net}` : ''}`);
    return ip;
  }

  /** The host port published for "container:port/proto", as the engine reports it. */
  publishedPort(spec: string): number {
    const m = /^(.+):(\d+)\/(tcp|udp)$/.exec(spec);
    if (!m) throw new Error(`published port must look like web:80/tcp, got ${spec}`);
    const { info, engine } = this.container(m[1]);
    const b = engine.ports().find((p) => p.container === info.name && p.containerPort === Number(m[2]) && p.proto === m[3]);
    if (!b) throw new Error(`${m[1]} publishes no ${m[2]}/${m[3]}`);
    return b.hostPort;
  }

  /** Name an address for transcripts and truth tables ("203.0.113.1 (host)"). */
  nameOf(ip: string): string {
    if (ip.includes(':')) return this.nameOf6(ip);
    for (const h of this.sc.hosts) {
      if (ip === h.address.split('/')[0]) return h.name;
      for (const n of this.engines.get(h.name)?.networks() ?? []) if (n.gateway === ip) return `${h.name}@${n.name}`;
    }
    for (const h of this.sc.hosts) {
      for (const c of this.engines.get(h.name)?.containers() ?? []) {
        const ref = this.multiHost ? `${h.name}/${c.name}` : c.name;
        for (const [net, a] of Object.entries(c.addresses)) if (a === ip) return net === Object.keys(c.addresses)[0] ? ref : `${ref}@${net}`;
      }
    }
    for (const p of this.sc.lan.peers) if (ip === p.address.split('/')[0]) return p.name;
    if (this.sc.wan.servers.includes(ip)) return ip === this.sc.wan.servers[0] ? 'wan' : `wan@${ip}`;
    if (ip === this.sc.lan.router) return 'router';
    return ip;
  }

  private nameOf6(ip: string): string {
    const v6 = (n: string) => `${V6}${n}`;
    for (const h of this.sc.hosts) {
      if (ip === h.address6?.split('/')[0]) return v6(h.name);
      for (const n of this.engines.get(h.name)?.networks() ?? []) if (n.gateway6 === ip) return v6(`${h.name}@${n.name}`);
    }
    for (const h of this.sc.hosts) {
      for (const c of this.engines.get(h.name)?.containers() ?? []) {
        const ref = this.multiHost ? `${h.name}/${c.name}` : c.name;
        const mine = Object.entries(c.addresses6 ?? {});
        for (const [net, a] of mine) if (a === ip) return v6(net === mine[0][0] ? ref : `${ref}@${net}`);
      }
    }
    for (const p of this.sc.lan.peers) if (ip === p.address6?.split('/')[0]) return v6(p.name);
    if (this.sc.wan.servers6.includes(ip)) return ip === this.sc.wan.servers6[0] ? v6('wan') : v6(`wan@${ip}`);
    if (ip === this.sc.lan.router6) return v6('router');
    return ip;
  }
}
