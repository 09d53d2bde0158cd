// IPv6 address management of the reference engine: a network's IPv6 subnet, its gateway (the
// subnet's first address, as Docker picks it) and container addresses handed out in order after
// it. IPv6 subnets without one given come from a ULA pool (fd00:0:0:N::/64), as Docker 27+
// allocate them from their default pool.
import { bigToIp6, ip6ToBig, network6Of, parseCidr6 } from '../../util/ipv6.js';

export { network6Of };

export class AddressPool6 {
  readonly gateway: string;
  private readonly base: bigint;
  private readonly size: bigint;
  private readonly used = new Set<bigint>();

  constructor(readonly subnet: string, gateway?: string) {
    const { base, prefix } = parseCidr6(subnet);
    this.base = base;
    this.size = 1n << BigInt(128 - prefix);
    this.gateway = gateway ?? bigToIp6(base + 1n);
    this.used.add(ip6ToBig(this.gateway));
  }

  allocate(): string {
    for (let i = 1n; i < this.size; i++) {
      const v = this.base + i;
      if (this.used.has(v)) continue;
      this.used.add(v);
      return bigToIp6(v);
    }
    throw new Error(`no IPv6 address left in ${this.subnet}`);
  }

  release(ip: string): void {
    this.used.delete(ip6ToBig(ip));
  }
}

/** ULA /64s for --ipv6 networks created without an IPv6 subnet. */
export class Pool6Allocator {
  private next = 1;
  private readonly taken = new Set<string>();

  claim(subnet: string): void {
    this.taken.add(network6Of(subnet));
  }

  allocate(): string {
    for (;;) {
      const s = `fd00:0:0:${(this.next++).toString(16)}::/64`;
      if (!this.taken.has(s)) {
        this.taken.add(s);
        return s;
      }
    }
  }
}
