// Rule paths from recorded trace output (specs/fixtures/trace: one real lab's trace monitor
// lines, `nft -a list ruleset` and `iptables-save`): parsing, traversals (also across a trace
// id that changes after routing), NAT, ends, the deciding rule, decided-by and the side-by-side.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTraceLine, type TraceEvent } from '../harness/trace/events.js';
import { attachIptablesText, parseNftRuleset, ruleByHandle } from '../harness/trace/ruledump.js';
import { buildRulePath, splitTraversals, type ProbeFacts, type RulePath, type Traversal } from '../harness/trace/path.js';
import { renderRulePath, sideBySide } from '../harness/trace/render.js';
import { checkDecidedBy } from '../harness/assert/decided-by.js';
import { identityOf } from '../harness/probe/agent.js';
import { parseIptablesSave } from '../harness/rules/iptables/save.js';

const fixture = (name: string) => readFileSync(join(import.meta.dirname, 'fixtures', 'trace', name), 'utf8');
const events = fixture('monitor.txt')
  .split('\n')
  .map(parseTraceLine)
  .filter((e): e is TraceEvent => e !== undefined);
const dump = parseNftRuleset(fixture('nft-ruleset.txt'));
attachIptablesText(dump, parseIptablesSave(fixture('iptables-save.txt')));
const hosts = new Map([['host', { traversals: splitTraversals(events), dump }]]);

// the probes of the recorded lab, as the agent reported what it sent
const webToDb: ProbeFacts = { proto: 'tcp', dst: '10.10.1.2', port: 5432, sent: { kind: 'port', address: '10.10.0.2', port: 60410 }, outcome: 'timeout', fromHost: 'host', toHost: 'host' };
const wanToHost: ProbeFacts = { proto: 'tcp', dst: '203.0.113.1', port: 8080, sent: { kind: 'port', address: '198.51.100.7', port: 39753 }, outcome: 'connected', toHost: 'host' };
const webPing: ProbeFacts = { proto: 'icmp', dst: '198.51.100.7', sent: { kind: 'icmp', id: 568, seq: 1 }, outcome: 'connected', fromHost: 'host' };

describe('trace monitor lines', () => {
  it('reads packets with the headers that identify them, rules by handle and verdict, policies', () => {
    expect(parseTraceLine('P 9cd20bfe ip nat PREROUTING eth0 - 198.51.100.7 203.0.113.1 64 48276 tcp 60459 8080 - - -')).toEqual({
      id: '9cd20bfe',
      family: 'ip',
      table: 'nat',
      chain: 'PREROUTING',
      kind: 'packet',
      packet: { iif: 'eth0', saddr: '198.51.100.7', daddr: '203.0.113.1', ttl: 64, ipId: 48276, proto: 'tcp', sport: 60459, dport: 8080 },
    });
    expect(parseTraceLine('P 1 ip filter FORWARD br-x eth0 10.0.0.2 5.6.7.8 63 9 icmp - - 8 18098 1')).toMatchObject({
      packet: { iif: 'br-x', oif: 'eth0', proto: 'icmp', icmpType: 'echo-request', icmpId: 18098, icmpSeq: 1, ttl: 63 },
    });
    expect(parseTraceLine('E 9cd20bfe ip nat DOCKER rule 11 accept')).toEqual({ id: '9cd20bfe', family: 'ip', table: 'nat', chain: 'DOCKER', kind: 'rule', handle: 11, verdict: 'accept' });
    expect(parseTraceLine('E 1 ip filter FORWARD rule 4 jump DOCKER-USER')).toMatchObject({ kind: 'rule', handle: 4, verdict: 'jump DOCKER-USER' });
    expect(parseTraceLine('E 1 ip filter FORWARD policy - drop')).toMatchObject({ kind: 'policy', verdict: 'drop' });
    // kernel 6.1: a RETURN rule comes as a return event naming the rule; a chain's end names none
    expect(parseTraceLine('E 1 ip filter DOCKER-USER return 30 return')).toMatchObject({ kind: 'rule', handle: 30, verdict: 'return' });
    expect(parseTraceLine('E 1 ip filter DOCKER return - continue')).toMatchObject({ kind: 'verdict', verdict: 'continue' });
    expect(parseTraceLine('ready')).toBeUndefined();
    expect(parseTraceLine('LOST')).toBeUndefined();
  });

  it('the agent reports what its probe sent, apart from the outcome', () => {
    expect(identityOf(['connected', 'seen=10.0.0.2:4242', 'local=10.0.0.2:4242'])).toEqual({ rest: ['connected', 'seen=10.0.0.2:4242'], sent: { kind: 'port', address: '10.0.0.2', port: 4242 } });
    expect(identityOf(['timeout', 'icmp=7:3'])).toEqual({ rest: ['timeout'], sent: { kind: 'icmp', id: 7, seq: 3 } });
    expect(identityOf(['unreachable', 'ENETUNREACH'])).toEqual({ rest: ['unreachable', 'ENETUNREACH'], sent: undefined });
  });
});

describe('nft -a list ruleset', () => {
  it('names every rule by handle in chain order, with iptables-save text for iptables-nft tables', () => {
    const drop = [...dump.chains.values()].find((c) => c.name === 'DOCKER-ISOLATION-STAGE-2')!;
    expect(drop.rules[0].iptables).toMatch(/^-A DOCKER-ISOLATION-STAGE-2 -o br-\w+ -j DROP$/);
    expect(drop.rules[0].nft).not.toMatch(/packets \d+/); // counters go
    expect(dump.chains.get('ip filter FORWARD')!.base).toEqual({ type: 'filter', hook: 'forward', priority: 'filter', policy: 'drop' });
    expect(dump.chains.get('inet netconform_trace pre')!.rules).toHaveLength(3);
    expect(ruleByHandle(dump, 'ip', 'filter', 'DOCKER-ISOLATION-STAGE-2', drop.rules[0].handle)).toMatchObject({ position: 1, iptables: true });
  });

  it('keeps nft text where the counts differ (native rules in an iptables table), and skips sets', () => {
    const d = parseNftRuleset(`table ip filter { # handle 1
	set blocked { # handle 3
		type ipv4_addr
		elements = { 10.0.0.1,
			     10.0.0.2 }
	}
	chain FORWARD { # handle 1
		type filter hook forward priority filter; policy accept;
		ip saddr @blocked counter packets 3 bytes 180 drop # handle 4
		counter packets 1 bytes 60 jump DOCKER # handle 5
	}
}
`);
    attachIptablesText(d, parseIptablesSave('*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -j DOCKER\nCOMMIT\n'));
    expect(d.chains.get('ip filter FORWARD')!.rules).toEqual([
      { handle: 4, nft: 'ip saddr @blocked counter drop' },
      { handle: 5, nft: 'counter jump DOCKER' },
    ]);
    expect([...d.chains.keys()]).toEqual(['ip filter FORWARD']);
  });
});

describe('rule paths', () => {
  it('a routed packet keeps its traversal when the trace id changes after PREROUTING', () => {
    const ids = new Set(events.filter((e) => e.kind === 'packet' && e.packet.saddr === '10.10.0.2' && e.packet.dport === 5432).map((e) => e.id));
    expect(ids.size).toBe(2); // what the kernel does: new id once the bridge device receives it
    const t = hosts.get('host')!.traversals.find((x) => x.first.dport === 5432)!;
    expect(new Set(t.events.map((e) => e.id))).toEqual(ids);
  });

  it('web → db: the isolation chain dropped it, and that is the decision', () => {
    const p = buildRulePath(webToDb, hosts);
    expect(p.hosts).toHaveLength(1);
    expect(p.hosts[0].steps.map((s) => `${s.table}:${s.chain} ${s.verdict}`)).toEqual([
      'nat:PREROUTING ACCEPT',
      'filter:FORWARD jump DOCKER-USER',
      'filter:DOCKER-USER RETURN',
      'filter:FORWARD jump DOCKER-ISOLATION-STAGE-1',
      'filter:DOCKER-ISOLATION-STAGE-1 jump DOCKER-ISOLATION-STAGE-2',
      'filter:DOCKER-ISOLATION-STAGE-2 DROP',
    ]);
    expect(p.decision).toMatchObject({ host: 'host', table: 'filter', chain: 'DOCKER-ISOLATION-STAGE-2', verdict: 'DROP', policy: false, position: 1 });
    expect(p.decision!.rule).toMatch(/^-A DOCKER-ISOLATION-STAGE-2 -o br-\w+ -j DROP$/);
    expect(p.end).toMatch(/^DROP by filter:DOCKER-ISOLATION-STAGE-2 rule 1: .*; the probe: timeout$/);
    const text = renderRulePath(p);
    expect(text).toMatch(/^host: 10\.10\.0\.2:60410 → 10\.10\.1\.2:5432 tcp, in on br-\w+$/m);
    expect(text).toMatch(/^ {2}filter:DOCKER-ISOLATION-STAGE-2 #1 +DROP +-o br-\w+ -j DROP$/m);
  });

  it('wan → host:8080: the DNAT it got, and the ACCEPT that let it through', () => {
    const p = buildRulePath(wanToHost, hosts);
    const nat = p.hosts[0].steps.find((s) => s.verdict === 'DNAT')!;
    expect(nat).toMatchObject({ table: 'nat', chain: 'DOCKER', nat: '10.10.0.2:80' });
    expect(nat.rule).toMatch(/-j DNAT --to-destination 10\.10\.0\.2:80$/);
    expect(p.hosts[0].end).toMatchObject({ kind: 'left', packet: { oif: expect.stringMatching(/^br-/), daddr: '10.10.0.2', dport: 80 } });
    expect(p.decision).toMatchObject({ table: 'filter', chain: 'DOCKER', verdict: 'ACCEPT' });
  });

  it('web → wan ping: matched by ICMP id and sequence, masqueraded to the host address', () => {
    const p = buildRulePath(webPing, hosts);
    expect(p.hosts[0].steps.find((s) => s.type === 'nat' && s.chain === 'POSTROUTING' && s.position)).toMatchObject({ verdict: 'MASQUERADE', nat: '203.0.113.1' });
    expect(p.end).toBe('left on eth0 for 198.51.100.7; the probe: connected');
  });

  it('says so when no packet left, or no host saw it; never invents a path', () => {
    expect(buildRulePath({ ...webToDb, sent: undefined, outcome: 'unreachable', detail: 'ENETUNREACH' }, hosts)).toMatchObject({ hosts: [], end: expect.stringMatching(/^not sent: .*ENETUNREACH/) });
    expect(buildRulePath({ ...webToDb, sent: { kind: 'port', address: '10.10.0.2', port: 1 } }, hosts)).toMatchObject({ hosts: [], end: expect.stringMatching(/^no Docker host's firewall saw this packet/) });
  });
});

/** A traversal made by hand: events of one host, a packet entering with ttl, leaving as `out`. */
function hop(id: string, ttl: number, local: boolean, leave: { saddr: string; oif: string }, ipId = 5): Traversal['events'] {
  const packet = { saddr: '10.0.0.2', daddr: '10.0.1.2', proto: 'tcp' as const, sport: 1000, dport: 80, ttl, ipId };
  const base = { id, family: 'inet', table: 'netconform_trace' };
  return [
    { ...base, chain: local ? 'out' : 'pre', kind: 'packet', packet },
    { id, family: 'ip', table: 'filter', chain: 'FORWARD', kind: 'policy', verdict: 'accept' },
    { ...base, chain: 'left', kind: 'packet', packet: { ...packet, ttl: ttl - 1, ...leave } },
  ];
}

describe('rule paths across hosts', () => {
  const probe: ProbeFacts = { proto: 'tcp', dst: '10.0.1.2', port: 80, sent: { kind: 'port', address: '10.0.0.2', port: 1000 }, outcome: 'connected', fromHost: 'hostA', toHost: 'hostB' };
  const empty = parseNftRuleset('');

  it('follows the packet by what it looked like when it left, in TTL order', () => {
    const traced = new Map([
      ['hostB', { traversals: splitTraversals(hop('b', 63, false, { saddr: '192.0.2.1', oif: 'docker0' }).map((e) => (e.kind === 'packet' && e.chain === 'pre' ? { ...e, packet: { ...e.packet, saddr: '192.0.2.1' } } : e))), dump: empty }],
      ['hostA', { traversals: splitTraversals(hop('a', 64, false, { saddr: '192.0.2.1', oif: 'eth0' })), dump: empty }],
    ]);
    const p = buildRulePath(probe, traced);
    expect(p.hosts.map((h) => h.host)).toEqual(['hostA', 'hostB']);
    expect(p.end).toBe('left on hostB on docker0 for 10.0.1.2:80; the probe: connected');
  });

  it('where no hop took a TTL off (a VXLAN bridge), the sender’s host comes first', () => {
    const traced = new Map([
      ['hostB', { traversals: splitTraversals(hop('b', 64, false, { saddr: '10.0.0.2', oif: 'docker0' })), dump: empty }],
      ['hostA', { traversals: splitTraversals(hop('a', 64, false, { saddr: '10.0.0.2', oif: 'docker0' })), dump: empty }],
    ]);
    expect(buildRulePath(probe, traced).hosts.map((h) => h.host)).toEqual(['hostA', 'hostB']);
    expect(buildRulePath({ ...probe, fromHost: 'hostB', toHost: 'hostA' }, traced).hosts.map((h) => h.host)).toEqual(['hostB', 'hostA']);
  });

  it('a retransmission (another IP id) is counted, not taken for another hop', () => {
    const traced = new Map([['hostA', { traversals: splitTraversals([...hop('a', 64, false, { saddr: '10.0.0.2', oif: 'docker0' }), ...hop('c', 64, false, { saddr: '10.0.0.2', oif: 'docker0' }, 6)]), dump: empty }]]);
    const p = buildRulePath(probe, traced);
    expect(p.hosts).toHaveLength(1);
    expect(p.hosts[0].repeats).toBe(1);
  });
});

describe('decided-by', () => {
  const path = buildRulePath(webToDb, hosts);
  const bridge = /-o (br-\w+)/.exec(path.decision!.rule!)![1];
  const expand = (_host: string, text: string) => text.replace('${bridge:back}', bridge);

  it('holds when chain and verdict, or the rule text, are the deciding step’s', () => {
    expect(checkDecidedBy({ table: 'filter', chain: 'DOCKER-ISOLATION-STAGE-2', verdict: 'DROP' }, path, expand, false).ok).toBe(true);
    expect(checkDecidedBy({ rule: '-A DOCKER-ISOLATION-STAGE-2 -o ${bridge:back} -j DROP' }, path, expand, false).ok).toBe(true);
    expect(checkDecidedBy({ rule: '-o ${bridge:back} -j DROP' }, path, expand, false).ok).toBe(true);
  });

  it('fails, saying what decided instead, for another chain, the policy, another rule or none', () => {
    const policy = checkDecidedBy({ table: 'filter', chain: 'FORWARD', verdict: 'DROP', policy: true }, path, expand, false);
    expect(policy).toEqual({ ok: false, message: expect.stringMatching(/^decided by filter:DOCKER-ISOLATION-STAGE-2 rule 1 DROP \(-A DOCKER-ISOLATION-STAGE-2 -o br-\w+ -j DROP\), expected filter:FORWARD policy DROP$/) });
    expect(checkDecidedBy({ table: 'filter', chain: 'DOCKER-ISOLATION-STAGE-2', verdict: 'DROP', policy: true }, path, expand, false).ok).toBe(false);
    expect(checkDecidedBy({ rule: '-A DOCKER-ISOLATION-STAGE-1 -o ${bridge:back} -j DROP' }, path, expand, false).ok).toBe(false);
    expect(checkDecidedBy({ none: true }, path, expand, false).ok).toBe(false);
    const untraced: RulePath = { hosts: [], end: 'no Docker host saw it' };
    expect(checkDecidedBy({ none: true }, untraced, expand, false).ok).toBe(true);
    expect(checkDecidedBy({ table: 'raw', chain: 'PREROUTING', verdict: 'DROP' }, untraced, expand, false).message).toMatch(/^no firewall rule decided this packet/);
  });
});

describe('Docker 29 with its nftables backend (native tables, recorded)', () => {
  const nftFixture = (name: string) => fixture(join('docker-29-nftables', name));
  const nftEvents = nftFixture('monitor.txt')
    .split('\n')
    .map(parseTraceLine)
    .filter((e): e is TraceEvent => e !== undefined);
  const nftHosts = new Map([['host', { traversals: splitTraversals(nftEvents), dump: parseNftRuleset(nftFixture('nft-ruleset.txt')) }]]);
  const back = 'br-4cb05eb57679';
  const front = 'br-920c80490250';
  const expand = (_host: string, text: string) => text.replace('${db}', '10.10.1.2').replace('${web}', '10.10.0.2').replace('${bridge:back}', back).replace('${bridge:front}', front);
  const probe = (p: Partial<ProbeFacts>): ProbeFacts => ({ proto: 'tcp', dst: '203.0.113.1', outcome: 'connected', toHost: 'host', ...p }) as ProbeFacts;

  it('web → db: dropped in docker-bridges raw-PREROUTING, shown as nft lists the rule', () => {
    const path = buildRulePath(probe({ dst: '10.10.1.2', port: 5432, sent: { kind: 'port', address: '10.10.0.2', port: 46426 }, outcome: 'timeout', fromHost: 'host' }), nftHosts);
    expect(path.decision).toEqual({ host: 'host', table: 'docker-bridges', chain: 'raw-PREROUTING', verdict: 'DROP', policy: false, position: 2, rule: `ip daddr 10.10.1.2 iifname != "${back}" counter drop comment "DROP DIRECT ACCESS"` });
    // nft's text with the names unquoted or quoted, a chain and placeholders: the same rule
    expect(checkDecidedBy({ table: 'docker-bridges', chain: 'raw-PREROUTING', verdict: 'DROP', rule: 'ip daddr ${db} iifname != ${bridge:back} counter drop comment "DROP DIRECT ACCESS"' }, path, expand, false).ok).toBe(true);
    // iptables' form of the same drop is another rule; so is another bridge's
    expect(checkDecidedBy({ rule: '-d ${db}/32 ! -i ${bridge:back} -j DROP' }, path, expand, false).ok).toBe(false);
    expect(checkDecidedBy({ rule: 'ip daddr ${db} iifname != ${bridge:front} counter drop comment "DROP DIRECT ACCESS"' }, path, expand, false).ok).toBe(false);
  });

  it('wan → host:8080: DNAT in nat-prerouting-and-output, decided by the bridge chain\'s ACCEPT, not a prerouting policy', () => {
    const path = buildRulePath(probe({ port: 8080, sent: { kind: 'port', address: '198.51.100.7', port: 55133 } }), nftHosts);
    expect(path.hosts[0].steps.find((s) => s.nat)).toMatchObject({ chain: 'nat-prerouting-and-output', verdict: 'DNAT', nat: '10.10.0.2:80' });
    expect(path.decision).toMatchObject({ table: 'docker-bridges', chain: `filter-forward-in__${front}`, verdict: 'ACCEPT', policy: false, rule: 'ip daddr 10.10.0.2 tcp dport 80 counter accept' });
    expect(checkDecidedBy({ table: 'docker-bridges', chain: 'filter-forward-in__${bridge:front}', verdict: 'ACCEPT' }, path, expand, false).ok).toBe(true);
    expect(checkDecidedBy({ table: 'docker-bridges', chain: 'filter-forward-in__${bridge:back}', verdict: 'ACCEPT' }, path, expand, false).message).toMatch(/^decided by docker-bridges:filter-forward-in__br-920c80490250 rule 3 ACCEPT/);
  });

  it('wan → host:81: delivered to the host with no filter on the way, so no rule decided it', () => {
    const path = buildRulePath(probe({ port: 81, sent: { kind: 'port', address: '198.51.100.7', port: 53525 }, outcome: 'refused' }), nftHosts);
    expect(path.hosts[0].end).toEqual({ kind: 'delivered' });
    // raw-PREROUTING's ACCEPT policy (a filter chain on the prerouting hook) lets it on, no more
    expect(path.hosts[0].steps[0]).toMatchObject({ chain: 'raw-PREROUTING', policy: true, verdict: 'ACCEPT', type: 'filter', hook: 'prerouting' });
    expect(path.decision).toBeUndefined();
    expect(checkDecidedBy({ none: true }, path, expand, false).ok).toBe(true);
  });

  it('web → wan ping: masqueraded by the bridge\'s nat-postrouting-out chain, let out by OUTGOING', () => {
    const path = buildRulePath(probe({ proto: 'icmp', dst: '198.51.100.7', sent: { kind: 'icmp', id: 15101, seq: 1 }, fromHost: 'host', toHost: undefined }), nftHosts);
    expect(path.hosts[0].steps.find((s) => s.nat)).toMatchObject({ chain: `nat-postrouting-out__${front}`, verdict: 'MASQUERADE', nat: '203.0.113.1' });
    expect(path.decision).toMatchObject({ chain: `filter-forward-out__${front}`, verdict: 'ACCEPT', rule: 'counter accept comment "OUTGOING"' });
    expect(renderRulePath(path)).toMatch(/^ {2}docker-bridges:nat-postrouting-out__br-920c80490250 #1 +MASQUERADE to 203\.0\.113\.1 +oifname != "br-920c80490250"/m);
  });
});

describe('two paths side by side', () => {
  it('marks the first step where they part', () => {
    const a = buildRulePath(webToDb, hosts);
    const b: RulePath = { ...a, hosts: [{ ...a.hosts[0], steps: [{ family: 'ip', table: 'raw', chain: 'PREROUTING', position: 4, verdict: 'DROP', rule: '-A PREROUTING -d 10.10.1.2/32 ! -i br-x -j DROP' }], end: { kind: 'stopped' } }] };
    const text = sideBySide({ label: 'docker-20.10', path: a }, { label: 'docker-28', path: b });
    expect(text.split('\n')[0]).toBe('they part at step 1: docker-20.10 nat:PREROUTING policy ACCEPT; docker-28 raw:PREROUTING #4 DROP -d 10.10.1.2/32 ! -i br-x -j DROP');
    expect(text).toMatch(/^≠ nat:PREROUTING policy ACCEPT +│ raw:PREROUTING #4 DROP/m);
    expect(sideBySide({ label: 'a', path: a }, { label: 'b', path: a }).split('\n')[0]).toBe('the paths are the same');
  });
});
