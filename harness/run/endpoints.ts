// Resolves the endpoint names scenarios use ("web", "web@backend", "host", "host@bridge",
// "wan", a literal address) to probe agents and addresses of the running lab.
import type { Engine } from '../engine/types.js';
import type { ProbeAgent } from '../probe/agent.js';
import type { Scenario } from '../scenario/types.js';

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

export class Endpoints {
  constructor(
    private readonly sc: Scenario,
    private readonly engine: Engine,
    private readonly agents: { host: ProbeAgent; wan: ProbeAgent; containers: Map<string, ProbeAgent> },
  ) {}

  /** The agent that sends from this endpoint. */
  agentOf(name: string): ProbeAgent {
    const base = name.split('@')[0];
    if (base === 'host') return this.agents.host;
    if (base === 'wan') return this.agents.wan;
    const a = this.agents.containers.get(base);
    if (!a) throw new Error(`no running container ${base} to probe from`);
    return a;
  }

  /** Every agent, to ask which one saw a probe's token. */
  all(): ProbeAgent[] {
    return [this.agents.host, this.agents.wan, ...this.agents.containers.values()];
  }

  /** The IPv4 address an endpoint name stands for. */
  address(name: string): string {
    if (IPV4.test(name)) return name;
    const [base, net] = name.split('@');
    if (base === 'host') {
      if (!net) return this.sc.host.address.split('/')[0];
      const n = this.engine.networks().find((x) => x.name === net);
      if (!n) throw new Error(`no network ${net} for ${name}`);
      return n.gateway;
    }
    if (base === 'wan') return net ?? this.sc.wan.servers[0];
    const c = this.engine.containers().find((x) => x.name === base);
    if (!c) throw new Error(`no running container ${base}`);
    const ip = net ? c.addresses[net] : c.ip;
    if (!ip) throw new Error(`container ${base} has no address${net ? ` on ${net}` : ''}`);
    return ip;
  }

  /** The host port published for "container:port/proto", as the engine reports it. */
  publishedPort(spec: string): number {
    const m = /^([^:]+):(\d+)\/(tcp|udp)$/.exec(spec);
    if (!m) throw new Error(`published port must look like web:80/tcp, got ${spec}`);
    const b = this.engine.ports().find((p) => p.container === m[1] && p.containerPort === Number(m[2]) && p.proto === m[3]);
    if (!b) throw new Error(`${m[1]} publishes no ${m[2]}/${m[3]}`);
    return b.hostPort;
  }

  /** Name an address for transcripts and truth tables ("203.0.113.1 (host)"). */
  nameOf(ip: string): string {
    if (ip === this.sc.host.address.split('/')[0]) return 'host';
    for (const n of this.engine.networks()) if (n.gateway === ip) return `host@${n.name}`;
    for (const c of this.engine.containers()) {
      for (const [net, a] of Object.entries(c.addresses)) if (a === ip) return net === Object.keys(c.addresses)[0] ? c.name : `${c.name}@${net}`;
    }
    if (this.sc.wan.servers.includes(ip)) return ip === this.sc.wan.servers[0] ? 'wan' : `wan@${ip}`;
    if (ip === this.sc.host.gateway) return 'wan router';
    return ip;
  }
}
