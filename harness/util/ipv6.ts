// IPv6 address arithmetic shared by the engines and the loader: text ↔ 128-bit integers,
// prefixes in canonical form.

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
