// The trace monitor's lines (harness/trace/tracemon.c) as typed events:
//   P 9cd20bfe ip nat PREROUTING hc - 10.99.1.2 10.99.1.1 64 46170 tcp 47748 8080 - - -
//   E 9cd20bfe ip nat PREROUTING rule 2 accept
//   E 89d8eefd ip filter FORWARD rule 4 jump DOCKER-X
//   E 9cd20bfe ip filter FORWARD policy - drop
// A P line (the packet's headers where a base chain saw it) comes before the event that
// carried them. Rules are known by handle only; their text comes from a rule dump
// (trace/ruledump.ts).

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
  id: string; // trace id: one packet's traversal of one namespace's hooks (it may change on the way)
  family: string;
  table: string;
  chain: string;
}

export type TraceEvent =
  | (EventBase & { kind: 'packet'; packet: PacketHeaders })
  /** a rule whose match held: its handle and the verdict it gave ("accept", "drop", "jump X", "continue", "return") */
  | (EventBase & { kind: 'rule'; handle?: number; verdict: string })
  | (EventBase & { kind: 'policy'; verdict: string })
  /** the end of a chain without a rule's verdict (a return to the calling chain) */
  | (EventBase & { kind: 'verdict'; verdict: string });

/** The monitor's line when its socket overflowed: events are missing from here on. */
export const LOST_EVENTS = 'LOST';

const ICMP_TYPES: Record<string, string> = { '0': 'echo-reply', '3': 'destination-unreachable', '8': 'echo-request', '11': 'time-exceeded' };

const opt = (w: string) => (w === '-' ? undefined : w);
const num = (w: string | undefined) => (w === undefined || w === '-' ? undefined : Number(w));

/** One line of the trace monitor; undefined for anything else ("ready", blank lines). */
export function parseTraceLine(line: string): TraceEvent | undefined {
  const w = line.trimEnd().split(' ');
  if ((w[0] !== 'P' && w[0] !== 'E') || w.length < 8) return undefined;
  const base = { id: w[1], family: w[2], table: w[3], chain: w[4] };
  if (w[0] === 'P') {
    if (w.length < 17) return undefined;
    const [iif, oif, saddr, daddr, ttl, ipId, proto, sport, dport, icmpType, icmpId, icmpSeq] = w.slice(5);
    const p: PacketHeaders = { iif: opt(iif), oif: opt(oif), saddr, daddr, ttl: Number(ttl), ipId: Number(ipId) };
    if (proto === 'tcp' || proto === 'udp') Object.assign(p, { proto, sport: Number(sport), dport: Number(dport) });
    else if (proto === 'icmp') Object.assign(p, { proto, icmpType: ICMP_TYPES[icmpType] ?? `type ${icmpType}`, icmpId: num(icmpId), icmpSeq: num(icmpSeq) });
    for (const k of Object.keys(p) as (keyof PacketHeaders)[]) if (p[k] === undefined) delete p[k];
    return { ...base, kind: 'packet', packet: p };
  }
  const [kind, handle, verdict, target] = w.slice(5);
  const v = target ? `${verdict} ${target}` : verdict;
  if (kind === 'policy') return { ...base, kind: 'policy', verdict: v };
  // an event without a rule is the end of a chain ("continue": back to the caller); kernel
  // 6.1 reports a RETURN rule as a "return" event that still names the rule
  if (handle !== '-' && (kind === 'rule' || (kind === 'return' && verdict === 'return'))) return { ...base, kind: 'rule', handle: Number(handle), verdict: v };
  return { ...base, kind: 'verdict', verdict: v };
}

/** "10.0.0.2:4242 → 10.0.0.3:80 tcp" (ICMP: "10.0.0.2 → 10.0.0.3 icmp echo-request id 7 seq 1"). */
export function describePacket(p: PacketHeaders): string {
  if (p.proto === 'icmp') return `${p.saddr} → ${p.daddr} icmp ${p.icmpType ?? ''} id ${p.icmpId} seq ${p.icmpSeq}`.replace(/ {2}/g, ' ');
  return `${p.saddr}:${p.sport} → ${p.daddr}:${p.dport} ${p.proto ?? ''}`.trim();
}
