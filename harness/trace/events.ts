// `nft -a monitor trace` output as typed events. One line per event:
//   trace id 9cd20bfe ip nat PREROUTING packet: iif "hc" … ip saddr 10.99.1.2 ip daddr 10.99.1.1 … tcp sport 47748 tcp dport 8080 …
//   trace id 9cd20bfe ip nat PREROUTING rule tcp dport 8080 counter packets 0 bytes 0 dnat to 10.99.2.2:80 # handle 2 (verdict accept)
//   trace id 89d8eefd ip filter FORWARD unknown rule handle 2 (verdict drop)
//   trace id 9cd20bfe ip filter FORWARD policy accept
// (nftables 1.0.6, Debian 12). nft's own rule text is not used: its cache is not refreshed
// while it monitors, so rules added after it started come as "unknown rule handle N". The
// text comes from a rule dump taken after the probes (trace/ruledump.ts), by handle.

export type Proto = 'tcp' | 'udp' | 'icmp';

/** The headers of a packet where a hook saw it. */
export interface PacketHeaders {
  iif?: string;
  oif?: string;
  saddr?: string;
  daddr?: string;
  /** each routed hop takes one off: orders the hosts a packet crossed */
  ttl?: number;
  /** the IP header's identification: NAT and routing leave it alone */
  ipId?: number;
  proto?: Proto;
  sport?: number;
  dport?: number;
  icmpType?: string;
  icmpId?: number;
  icmpSeq?: number;
}

interface EventBase {
  id: string; // trace id: one packet's traversal of one namespace's hooks
  family: string;
  table: string;
  chain: string;
}

export type TraceEvent =
  | (EventBase & { kind: 'packet'; packet: PacketHeaders })
  /** a rule whose match held: its handle and the verdict it gave ("accept", "drop", "jump X", "continue", "return") */
  | (EventBase & { kind: 'rule'; handle?: number; verdict: string })
  | (EventBase & { kind: 'policy'; verdict: string })
  | (EventBase & { kind: 'verdict'; verdict: string });

/** The monitor's own complaint when its socket overflowed: events are missing from here on. */
export const LOST_EVENTS = /lost some netlink events|No buffer space available/i;

const HEAD = /^trace id ([0-9a-f]+) (\S+) (\S+) (\S+) (.*)$/;

/** One line of `nft -a monitor trace`; undefined for anything else (blank lines, errors). */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const m = HEAD.exec(line.trimEnd());
  if (!m) return undefined;
  const [, id, family, table, chain, rest] = m;
  const base = { id, family, table: unquote(table), chain: unquote(chain) };
  if (rest.startsWith('packet: ')) return { ...base, kind: 'packet', packet: parsePacket(rest.slice(8)) };
  if (rest.startsWith('policy ')) return { ...base, kind: 'policy', verdict: rest.slice(7).trim().split(' ')[0] };
  if (rest.startsWith('verdict ')) return { ...base, kind: 'verdict', verdict: rest.slice(8).trim() };
  const verdict = /\(verdict ([^)]+)\)\s*$/.exec(rest)?.[1];
  if ((rest.startsWith('rule ') || rest.startsWith('unknown rule handle ')) && verdict) {
    const handle = /(?:# handle|unknown rule handle) (\d+)/.exec(rest)?.[1];
    return { ...base, kind: 'rule', handle: handle ? Number(handle) : undefined, verdict };
  }
  return undefined;
}

function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

export function parsePacket(text: string): PacketHeaders {
  const p: PacketHeaders = {};
  const word = (re: RegExp) => re.exec(text)?.[1];
  const num = (re: RegExp) => {
    const v = word(re);
    return v === undefined ? undefined : Number(v);
  };
  // an interface nft cannot name (made after it started) comes as its index
  p.iif = word(/\biif "([^"]+)"/) ?? word(/\biif (\d+)/)?.replace(/^/, 'ifindex ');
  p.oif = word(/\boif "([^"]+)"/) ?? word(/\boif (\d+)/)?.replace(/^/, 'ifindex ');
  p.saddr = word(/\bip saddr (\S+)/);
  p.daddr = word(/\bip daddr (\S+)/);
  p.ttl = num(/\bip ttl (\d+)/);
  p.ipId = num(/\bip id (\d+)/);
  if (/\btcp sport /.test(text)) {
    p.proto = 'tcp';
    p.sport = num(/\btcp sport (\d+)/);
    p.dport = num(/\btcp dport (\d+)/);
  } else if (/\budp sport /.test(text)) {
    p.proto = 'udp';
    p.sport = num(/\budp sport (\d+)/);
    p.dport = num(/\budp dport (\d+)/);
  } else if (/\bicmp type /.test(text)) {
    p.proto = 'icmp';
    p.icmpType = word(/\bicmp type (\S+)/);
    p.icmpId = num(/\bicmp id (\d+)/);
    p.icmpSeq = num(/\bicmp sequence (\d+)/);
  }
  for (const k of Object.keys(p) as (keyof PacketHeaders)[]) if (p[k] === undefined) delete p[k];
  return p;
}

/** "10.0.0.2:4242 → 10.0.0.3:80 tcp" (ICMP: "10.0.0.2 → 10.0.0.3 icmp echo-request id 7 seq 1"). */
export function describePacket(p: PacketHeaders): string {
  if (p.proto === 'icmp') return `${p.saddr} → ${p.daddr} icmp ${p.icmpType ?? ''} id ${p.icmpId} seq ${p.icmpSeq}`.replace(/ {2}/g, ' ');
  return `${p.saddr}:${p.sport} → ${p.daddr}:${p.dport} ${p.proto ?? ''}`.trim();
}
