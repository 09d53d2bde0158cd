// Host port allocation as Docker's portallocator does it. Up to 26: per (host address,
// protocol), a requested port is refused when taken, an ephemeral one is the next free port
// after the last one handed out, starting at the bottom of ip_local_port_range (32768). 28
// checks overlapping addresses too (OverlappingPortAllocator).
import { EngineError } from '../types.js';

export const EPHEMERAL_START = 32768;
export const EPHEMERAL_END = 60999;

export class PortAllocator {
  private readonly used = new Map<string, string>(); // "ip/proto/port" → owner
  private readonly last = new Map<string, number>(); // "ip/proto" → last ephemeral port

  request(hostIp: string, proto: string, owner: string, port?: number): number {
    if (port !== undefined) {
      const key = `${hostIp}/${proto}/${port}`;
      if (this.used.has(key)) throw new EngineError(`Bind for ${hostIp}:${port} failed: port is already allocated`);
      this.used.set(key, owner);
      return port;
    }
    const scope = `${hostIp}/${proto}`;
    const start = this.last.get(scope) ?? EPHEMERAL_START - 1;
    const span = EPHEMERAL_END - EPHEMERAL_START + 1;
    for (let i = 1; i <= span; i++) {
      const p = EPHEMERAL_START + ((start + i - EPHEMERAL_START) % span);
      const key = `${scope}/${p}`;
      if (this.used.has(key)) continue;
      this.used.set(key, owner);
      this.last.set(scope, p);
      return p;
    }
    throw new EngineError(`all ports are allocated for ${hostIp}/${proto}`);
  }

  /** One port for several host addresses (each address is its own pool here). */
  requestAll(ips: string[], proto: string, port?: number): number {
    const p = this.request(ips[0], proto, '', port);
    for (const ip of ips.slice(1)) this.request(ip, proto, '', p);
    return p;
  }

  release(hostIp: string, proto: string, port: number): void {
    this.used.delete(`${hostIp}/${proto}/${port}`);
  }
}

/**
 * Docker 28's portallocator (libnetwork/portallocator, RequestPortsInRange): a port is taken
 * per address, but a request for 0.0.0.0 needs the port free on every IPv4 address, and a
 * request for an address needs it free on 0.0.0.0 too. Bindings that differ only in their host
 * address are allocated one port together. An ephemeral port starts after the last one handed
 * out for the first address of the request.
 */
export class OverlappingPortAllocator {
  private readonly used = new Map<string, Set<number>>(); // "ip/proto" → ports
  private readonly last = new Map<string, number>(); // "ip/proto" → last ephemeral port

  private ports(ip: string, proto: string): Set<number> {
    const k = `${ip}/${proto}`;
    let s = this.used.get(k);
    if (!s) this.used.set(k, (s = new Set()));
    return s;
  }

  /** Every address whose pool must have the port free: the requested ones first. */
  private scope(ips: string[], proto: string): string[] {
    const known = [...this.used.keys()].filter((k) => k.endsWith(`/${proto}`)).map((k) => k.slice(0, -proto.length - 1));
    const extra = ips.includes('0.0.0.0') ? known : ['0.0.0.0'];
    return [...new Set([...ips, ...extra])];
  }

  requestAll(ips: string[], proto: string, port?: number): number {
    const scope = this.scope(ips, proto);
    const take = (p: number) => {
      for (const ip of ips) this.ports(ip, proto).add(p);
      return p;
    };
    if (port !== undefined) {
      const holder = scope.find((ip) => this.ports(ip, proto).has(port));
      if (holder) throw new EngineError(`Bind for ${holder}:${port} failed: port is already allocated`);
      return take(port);
    }
    const span = EPHEMERAL_END - EPHEMERAL_START + 1;
    const start = this.last.get(`${ips[0]}/${proto}`) ?? EPHEMERAL_END;
    for (let i = 1; i <= span; i++) {
      const p = EPHEMERAL_START + ((start + i - EPHEMERAL_START) % span);
      if (scope.some((ip) => this.ports(ip, proto).has(p))) continue;
      for (const ip of ips) this.last.set(`${ip}/${proto}`, p);
      return take(p);
    }
    throw new EngineError('all ports are allocated');
  }

  release(hostIp: string, proto: string, port: number): void {
    this.used.get(`${hostIp}/${proto}`)?.delete(port);
  }
}
