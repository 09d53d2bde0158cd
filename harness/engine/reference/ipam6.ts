// IPv6 address management of the reference engine: a network's IPv6 subnet, its gateway (the
// subnet's first address, as Docker picks it) and container addresses handed out in order after
// it. IPv6 subnets without one given come from a ULA pool (fd00:0:0:N::/64), as Docker 27+
// allocate them from their default pool.

/** IPv6 text → 128-bit integer. */
export function ip6ToBig(ip: string): bigint {
  const [head, tail] = ip.includes('::') ? ip.split('::') : [ip, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  if (groups.length !== 8) throw new Error(`not an IPv6 address: ${ip}`);
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g || '0', 16)), 0n);
}

/** 128-bit integer → IPv6 text in its shortest form (the longest run of zero groups as ::). */
export function bigToIp6(v: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((v >> BigInt(112 - 16 * i)) & 0xffffn));
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

export function parseCidr6(cidr: string): { base: bigint; prefix: number } {
  const [ip, p] = cidr.split('/');
  const prefix = Number(p ?? 128);
  const mask = prefix === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - prefix)) - 1n);
  return { base: ip6ToBig(ip) & mask, prefix };
}

/** The subnet in canonical form ("fd00:1::5/64" → "fd00:1::/64"). */
export function network6Of(cidr: string): string {
  const { base, prefix } = parseCidr6(cidr);
  return `${bigToIp6(base)}/${prefix}`;
}

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
