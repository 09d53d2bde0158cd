// From trace events to the path one probe's packet took: on every Docker host it crossed, the
// table:chain:rule steps with their verdicts, the NAT it got, and how it ended there; across
// hosts, in the order it crossed them; and which rule decided its fate.
//
// Matching is by packet identity, so probes can run in parallel: a traversal of one host
// (events of one trace id, from the lab's own marking chain on) belongs to a probe when the
// packet it starts with carries the probe's source address and port and destination (ICMP:
// destination, identifier, sequence). A host that forwarded it shows the packet as it left,
// after NAT: that identity leads to the next host. Hosts are ordered by the TTL the packet
// entered with (every routed hop takes one off).
import type { PacketIdentity } from '../probe/agent.js';
import type { PacketHeaders, Proto, TraceEvent } from './events.js';
import { chainKey, ruleByHandle, type RuleDump } from './ruledump.js';
import { CHAIN, TRACE_TABLE } from './table.js';

export interface PathStep {
  family: string;
  table: string;
  chain: string;
  /** 1-based position of the rule in its chain; absent for the chain's policy */
  position?: number;
  policy?: boolean;
  /** ACCEPT, DROP, REJECT, RETURN, CONTINUE, jump X, goto X; DNAT, SNAT, MASQUERADE for translations */
  verdict: string;
  /** the rule as iptables-save prints it (iptables-nft's tables) or as nft does (native tables) */
  rule?: string;
  /** the type of the base chain it ran under: filter, nat, route */
  type?: string;
  /** the hook of that base chain: prerouting, input, forward, output, postrouting */
  hook?: string;
  /** where a translation sent the packet: "172.17.0.2:80", "203.0.113.1" */
  nat?: string;
}

export type HostEnd = { kind: 'left'; packet: PacketHeaders } | { kind: 'delivered' } | { kind: 'dropped'; step: PathStep } | { kind: 'stopped' };

export interface HostPath {
  host: string;
  /** the packet as it entered the host (as sent, when a process of the host sent it) */
  entered: PacketHeaders;
  local: boolean;
  steps: PathStep[];
  end: HostEnd;
  /** more traversals of the same packet identity here (retransmissions), same start */
  repeats?: number;
}

/** The step that decided a packet's fate: a DROP or REJECT, or the filter ACCEPT that let it through. */
export interface Decision {
  host: string;
  table: string;
  chain: string;
  verdict: 'ACCEPT' | 'DROP' | 'REJECT';
  policy: boolean;
  position?: number;
  rule?: string;
}

export interface RulePath {
  /** set when tracing could not give the whole path: why (then there are no hosts) */
  unavailable?: string;
  hosts: HostPath[];
  /** how the probe ended, in words */
  end: string;
  decision?: Decision;
}

/** What the path builder needs to know about one probe. */
export interface ProbeFacts {
  proto: Proto;
  /** destination address and port as the sender addressed them */
  dst: string;
  port?: number;
  sent?: PacketIdentity;
  outcome: string;
  /** the sender's words on a failure ("EHOSTUNREACH", "icmp-3/1") */
  detail?: string;
  /** the Docker host the sender, and the destination, are (or run on), where one is */
  fromHost?: string;
  toHost?: string;
}

export interface Traversal {
  events: TraceEvent[];
  first: PacketHeaders;
  local: boolean;
}

/**
 * A host's events in traversals: each starts where the lab's own table marked the packet.
 * The kernel's trace id can change on the way (a routed packet that came in through a bridge
 * with br_netfilter is received again by the bridge device after PREROUTING, and gets a new
 * id): a packet event under an unknown id continues the traversal whose packet it is, known
 * by what NAT and routing leave alone (source address and port, IP identification).
 */
export function splitTraversals(events: TraceEvent[]): Traversal[] {
  const open = new Map<string, Traversal>();
  const byPacket = new Map<string, Traversal>(); // what NAT and routing leave alone → the latest traversal with it
  const out: Traversal[] = [];
  const key = (p: PacketHeaders) => (p.ipId === undefined ? undefined : `${p.ipId} ${p.saddr} ${p.proto} ${p.sport} ${p.icmpId} ${p.icmpSeq}`);
  for (const e of events) {
    if (e.table === TRACE_TABLE && e.kind === 'packet' && (e.chain === CHAIN.pre || e.chain === CHAIN.out)) {
      const t: Traversal = { events: [], first: e.packet, local: e.chain === CHAIN.out };
      open.set(e.id, t);
      out.push(t);
    } else if (!open.has(e.id) && e.kind === 'packet') {
      const k = key(e.packet);
      const t = k === undefined ? undefined : byPacket.get(k);
      if (t) open.set(e.id, t);
    }
    const t = open.get(e.id);
    if (!t) continue;
    t.events.push(e);
    const k = e.kind === 'packet' ? key(e.packet) : undefined;
    if (k !== undefined) byPacket.set(k, t);
  }
  return out;
}

const VERDICTS: Record<string, string> = { accept: 'ACCEPT', drop: 'DROP', continue: 'CONTINUE', return: 'RETURN', queue: 'QUEUE' };

function verdictWord(v: string): string {
  return VERDICTS[v] ?? v; // "jump DOCKER", "goto X" stay as they are
}

const isReject = (rule?: string) => /(^|\s)-j REJECT\b|\breject\b/.test(rule ?? '');

/** One host's traversal as steps, NAT and an end. */
export function hostPath(host: string, t: Traversal, dump: RuleDump | undefined): HostPath {
  const steps: PathStep[] = [];
  let packet = t.first;
  let end: HostEnd = { kind: 'stopped' };
  const baseOf = new Map<string, { type: string; hook: string }>(); // "family table" → the base chain it last entered
  const lastNat = () => [...steps].reverse().find((s) => s.type === 'nat' && s.verdict === 'ACCEPT' && !s.nat);

  // a new hook shows the packet again: a changed destination was DNAT, a changed source SNAT
  const seePacket = (next: PacketHeaders) => {
    if (next.daddr !== packet.daddr || next.dport !== packet.dport) {
      const s = lastNat();
      if (s) {
        s.verdict = 'DNAT';
        s.nat = next.dport !== undefined ? `${next.daddr}:${next.dport}` : String(next.daddr);
      }
    }
    if (next.saddr !== packet.saddr || next.sport !== packet.sport) {
      const s = lastNat();
      if (s) {
        s.verdict = /MASQUERADE|masquerade/.test(s.rule ?? '') ? 'MASQUERADE' : 'SNAT';
        s.nat = next.sport !== packet.sport && next.sport !== undefined ? `${next.saddr}:${next.sport}` : String(next.saddr);
      }
    }
    packet = next;
  };

  for (const e of t.events) {
    if (e.table === TRACE_TABLE) {
      if (e.kind !== 'packet') continue;
      if (e.chain === CHAIN.left) {
        seePacket(e.packet);
        end = { kind: 'left', packet: e.packet };
      } else if (e.chain === CHAIN.delivered) {
        seePacket(e.packet);
        end = { kind: 'delivered' };
      }
      continue;
    }
    const tableKey = `${e.family} ${e.table}`;
    const chain = dump?.chains.get(chainKey(e.family, e.table, e.chain));
    if (chain?.base) baseOf.set(tableKey, { type: chain.base.type, hook: chain.base.hook });
    const base = baseOf.get(tableKey);
    if (e.kind === 'packet') {
      seePacket(e.packet);
      continue;
    }
    const at = { family: e.family, table: e.table, chain: e.chain, ...(base ? { type: base.type, hook: base.hook } : {}) };
    if (e.kind === 'rule') {
      const r = e.handle !== undefined && dump ? ruleByHandle(dump, e.family, e.table, e.chain, e.handle) : undefined;
      const rule = r?.text ?? `rule handle ${e.handle ?? '?'} (no longer in the rule set when it was read)`;
      let verdict = verdictWord(e.verdict);
      if (verdict === 'DROP' && isReject(rule)) verdict = 'REJECT';
      const step: PathStep = { ...at, ...(r ? { position: r.position } : {}), verdict, rule };
      steps.push(step);
      if (verdict === 'DROP' || verdict === 'REJECT') end = { kind: 'dropped', step };
    } else if (e.kind === 'policy') {
      const step: PathStep = { ...at, policy: true, verdict: verdictWord(e.verdict) };
      steps.push(step);
      if (step.verdict === 'DROP') end = { kind: 'dropped', step };
    } else if (e.verdict !== 'continue') {
      steps.push({ ...at, verdict: verdictWord(e.verdict) });
    }
  }
  return { host, entered: t.first, local: t.local, steps, end };
}

/** Whether a traversal starts with this identity (fields left out match anything). */
function sameIdentity(p: PacketHeaders, want: PacketHeaders): boolean {
  const keys: (keyof PacketHeaders)[] = ['saddr', 'daddr', 'proto', 'sport', 'dport', 'icmpId', 'icmpSeq'];
  return keys.every((k) => want[k] === undefined || p[k] === want[k]);
}

function identityOfProbe(p: ProbeFacts): PacketHeaders | undefined {
  if (!p.sent) return undefined;
  if (p.sent.kind === 'icmp') return { daddr: p.dst, proto: 'icmp', icmpId: p.sent.id, icmpSeq: p.sent.seq };
  return { saddr: p.sent.address, sport: p.sent.port, daddr: p.dst, dport: p.port, proto: p.proto };
}

function identityLeaving(p: PacketHeaders): PacketHeaders {
  const { saddr, daddr, proto, sport, dport, icmpId, icmpSeq } = p;
  return proto === 'icmp' ? { saddr, daddr, proto, icmpId, icmpSeq } : { saddr, daddr, proto, sport, dport };
}

/**
 * The hosts one probe's packet crossed, in order. The same IP identification on several
 * traversals is one packet crossing several hosts (or one host twice, through its loopback);
 * another identification with the same addresses and ports is a retransmission of it.
 * Order: by the TTL the packet entered with; where routing took none off (bridges, VXLAN,
 * loopback), the host's own sending first, the sender's host before the destination's.
 */
export function probeHosts(probe: ProbeFacts, traversals: Map<string, { traversals: Traversal[]; dump?: RuleDump }>): HostPath[] {
  const start = identityOfProbe(probe);
  if (!start) return [];
  const found: { host: string; t: Traversal; path: HostPath; order: number }[] = [];
  const used = new Set<Traversal>();
  const wanted = [start];
  for (let i = 0; i < wanted.length && i < 16; i++) {
    for (const [host, { traversals: ts, dump }] of traversals) {
      for (const t of startingWith(ts, wanted[i])) {
        if (used.has(t) || !sameIdentity(t.first, wanted[i])) continue;
        used.add(t);
        const path = hostPath(host, t, dump);
        found.push({ host, t, path, order: found.length });
        if (path.end.kind === 'left') wanted.push(identityLeaving(path.end.packet));
      }
    }
  }
  if (found.length === 0) return [];
  const ipId = found[0].t.first.ipId;
  const hops = found.filter((f) => f.t.first.ipId === ipId);
  const rank = (f: (typeof found)[number]) => (f.t.local ? 0 : f.host === probe.fromHost ? 1 : f.host === probe.toHost ? 3 : 2);
  hops.sort((a, b) => (b.t.first.ttl ?? 0) - (a.t.first.ttl ?? 0) || rank(a) - rank(b) || a.order - b.order);
  return hops.map((f) => {
    const repeats = found.filter((r) => r.host === f.host && r.t.first.ipId !== ipId && r.t.first.ttl === f.t.first.ttl).length;
    return { ...f.path, ...(repeats ? { repeats } : {}) };
  });
}

/** Traversals by the destination and ports (or ICMP id) they start with: a matrix has thousands. */
const starts = new WeakMap<Traversal[], Map<string, Traversal[]>>();
const startKey = (p: PacketHeaders) => (p.proto === 'icmp' ? `icmp ${p.daddr} ${p.icmpId} ${p.icmpSeq}` : `${p.proto} ${p.daddr} ${p.dport} ${p.sport}`);
function startingWith(ts: Traversal[], want: PacketHeaders): Traversal[] {
  let index = starts.get(ts);
  if (!index) {
    index = new Map();
    for (const t of ts) {
      const k = startKey(t.first);
      index.set(k, [...(index.get(k) ?? []), t]);
    }
    starts.set(ts, index);
  }
  return index.get(startKey(want)) ?? [];
}

const FILTERING_TABLES_SKIPPED = new Set(['raw', 'mangle', TRACE_TABLE]);
/**
 * Where an ACCEPT is a filtering decision: filter chains on the input, forward and output hooks.
 * A prerouting chain's ACCEPT (iptables' raw table, or a native table's raw-priority chain
 * such as Docker's nftables raw-PREROUTING) only lets the packet on to the real filters.
 */
const FILTERING_HOOKS = new Set(['input', 'forward', 'output']);
const filters = (s: PathStep) => s.type !== 'nat' && s.type !== 'route' && (s.hook === undefined || FILTERING_HOOKS.has(s.hook)) && !FILTERING_TABLES_SKIPPED.has(s.table);

export function decisionOf(hosts: HostPath[]): Decision | undefined {
  const last = hosts.at(-1);
  if (!last) return undefined;
  const of = (s: PathStep): Decision => ({
    host: last.host,
    table: s.table,
    chain: s.chain,
    verdict: s.verdict as Decision['verdict'],
    policy: Boolean(s.policy),
    ...(s.position ? { position: s.position } : {}),
    ...(s.rule ? { rule: s.rule } : {}),
  });
  if (last.end.kind === 'dropped') return of(last.end.step);
  if (last.end.kind === 'stopped') return undefined;
  const accept = [...last.steps].reverse().find((s) => s.verdict === 'ACCEPT' && filters(s));
  return accept ? of(accept) : undefined;
}

export function where(s: { table: string; chain: string; position?: number; policy?: boolean }): string {
  return `${s.table}:${s.chain}${s.policy ? ' policy' : s.position ? ` rule ${s.position}` : ''}`;
}

/** How the probe ended, from the last host's end and the sender's outcome. */
export function describeEnd(hosts: HostPath[], probe: ProbeFacts): string {
  const outcome = `${probe.outcome}${probe.detail ? ` (${probe.detail})` : ''}`;
  if (!probe.sent) return `not sent: the sender's kernel refused it at once: ${outcome}; no Docker host saw it`;
  const last = hosts.at(-1);
  if (!last) return `no Docker host's firewall saw this packet (it crossed none of them: nobody answered ARP for the next hop, or it was switched past them without br_netfilter); the probe: ${outcome}`;
  const on = hosts.length > 1 || last.host !== 'host' ? ` on ${last.host}` : '';
  switch (last.end.kind) {
    case 'dropped': {
      const s = last.end.step;
      return `${s.verdict} by ${where(s)}${on}${s.rule ? `: ${s.rule}` : ''}; the probe: ${outcome}`;
    }
    case 'left': {
      const p = last.end.packet;
      const to = p.proto === 'icmp' ? p.daddr : `${p.daddr}:${p.dport}`;
      const what: Record<string, string> = {
        connected: 'connected',
        refused: 'refused there (nothing listens on that port)',
        timeout: 'timeout (no answer came back)',
        unreachable: 'unreachable',
      };
      return `left${on} on ${p.oif ?? '?'} for ${to}; the probe: ${what[probe.outcome] ?? outcome}`;
    }
    case 'delivered':
      return `delivered to a socket${on} (the host's own stack, e.g. a userland proxy or a listener); the probe: ${probe.outcome === 'refused' ? 'refused (nothing listens on that port)' : outcome}`;
    case 'stopped': {
      const s = last.steps.at(-1);
      return `went no further than ${s ? where(s) : 'the first hook'}${on}: the kernel neither forwarded nor delivered it (forwarding off, no route, or a reverse-path or martian check); the probe: ${outcome}`;
    }
  }
}

export function buildRulePath(probe: ProbeFacts, traversals: Map<string, { traversals: Traversal[]; dump?: RuleDump }>): RulePath {
  const hosts = probeHosts(probe, traversals);
  const decision = decisionOf(hosts);
  return { hosts, end: describeEnd(hosts, probe), ...(decision ? { decision } : {}) };
}

export function unavailablePath(reason: string): RulePath {
  return { unavailable: reason, hosts: [], end: `rule path unavailable: ${reason}` };
}
