// IPv4 address management as Docker's default IPAM does it: networks get /16 pools from
// 172.17.0.0/16 upwards (then 192.168.0.0/20 steps); containers get the lowest free address
// of the network (or of its --fixed-cidr sub-range), the gateway and network address excluded.
import { EngineError } from '../types.js';

export function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

export interface Cidr {
  base: number; // network address
  prefix: number;
  size: number;
}

export function parseCidr(cidr: string): Cidr {
  const [ip, len] = cidr.split('/');
  const prefix = len === undefined ? 32 : Number(len);
  const size = 2 ** (32 - prefix);
  const base = (ipToInt(ip) - (ipToInt(ip) % size)) >>> 0;
  return { base, prefix, size };
}

export function cidrString(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

/** "172.17.0.1/16" → "172.17.0.0/16" */
export function networkOf(cidr: string): string {
  return cidrString(parseCidr(cidr));
}

export function inCidr(ip: string, cidr: string): boolean {
  const c = parseCidr(cidr);
  const n = ipToInt(ip);
  return n >= c.base && n < c.base + c.size;
}

export function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  return x.base < y.base + y.size && y.base < x.base + x.size;
}

/** Docker's default local address pools, in the order they are handed out. */
function* defaultPools(): Generator<string> {
  for (let b = 17; b <= 31; b++) yield `172.${b}.0.0/16`;
  for (let c = 0; c < 256; c += 16) yield `192.168.${c}.0/20`;
}

/** Hands out network subnets, skipping ones already claimed by explicit configuration. */
export class PoolAllocator {
  private readonly claimed: string[] = [];

  claim(subnet: string): void {
    const clash = this.claimed.find((c) => overlaps(c, subnet));
    if (clash) throw new EngineError(`Pool overlaps with other one on this address space (${subnet} overlaps ${clash})`);
    this.claimed.push(subnet);
  }

  release(subnet: string): void {
    const i = this.claimed.indexOf(subnet);
    if (i >= 0) this.claimed.splice(i, 1);
  }

  next(): string {
    for (const p of defaultPools()) {
      if (!this.claimed.some((c) => overlaps(c, p))) {
        this.claimed.push(p);
        return p;
      }
    }
    throw new EngineError('could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network');
  }
}

/** Addresses of one network. */
export class AddressPool {
  private readonly subnet: Cidr;
  private readonly range: Cidr;
  private readonly used = new Set<number>();

  constructor(subnet: string, readonly gateway: string, range?: string) {
    this.subnet = parseCidr(subnet);
    this.range = range ? parseCidr(range) : this.subnet;
    this.used.add(ipToInt(gateway));
  }

  get prefix(): number {
    return this.subnet.prefix;
  }

  allocate(preferred?: string): string {
    const first = this.subnet.base;
    const last = this.subnet.base + this.subnet.size - 1; // broadcast
    if (preferred) {
      const n = ipToInt(preferred);
      if (n <= first || n >= last || !inCidr(preferred, cidrString(this.subnet))) {
        throw new EngineError(`Address ${preferred} does not belong to the network's subnet ${cidrString(this.subnet)}`);
      }
      if (this.used.has(n)) throw new EngineError(`Address already in use: ${preferred}`);
      this.used.add(n);
      return preferred;
    }
    for (let n = this.range.base; n < this.range.base + this.range.size; n++) {
      if (n <= first || n >= last || this.used.has(n)) continue;
      this.used.add(n);
      return intToIp(n);
    }
    throw new EngineError(`no available IPv4 addresses on this network's address pools: ${cidrString(this.range)}`);
  }

  release(ip: string): void {
    this.used.delete(ipToInt(ip));
  }
}

/** Docker derives a container's MAC from its IPv4 address: 02:42 followed by the four octets. */
export function macFor(ip: string): string {
  return ['02', '42', ...ip.split('.').map((o) => Number(o).toString(16).padStart(2, '0'))].join(':');
}
