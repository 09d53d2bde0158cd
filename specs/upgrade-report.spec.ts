// The upgrade diff's report builder on two hand-made runs: chains, rules per chain (with the
// run's random bridge names normalized away), policies, verdicts and statuses; across backends
// (iptables → nftables) the nftables tables' chains and the rules side by side.
import { describe, expect, it } from 'vitest';
import { buildUpgradeDiff, normalizeForDiff, renderUpgradeDiff, upgradeReportName } from '../harness/report/upgrade.js';
import { parseIptablesSave } from '../harness/rules/iptables/save.js';
import type { Facts } from '../harness/rules/symbolic.js';
import type { CaseResult, ReachDetail, ScenarioResult } from '../harness/report/results.js';
import { parseNftText } from '../harness/rules/nft/text.js';
import { pairRules } from '../harness/report/side-by-side.js';

const facts = (labBridge: string): Facts => ({ addresses: { web: '172.17.0.2' }, subnets: { bridge: '172.17.0.0/16', lab: '172.18.0.0/16' }, bridges: { bridge: 'docker0', lab: labBridge }, ports: {} });

const old = (br: string) => `*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -j DOCKER
-A FORWARD -o ${br} -j DOCKER
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A DOCKER -i ${br} -j RETURN
COMMIT
`;

const next = (br: string) => `*raw
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
-A PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-FORWARD - [0:0]
-A FORWARD -j DOCKER-FORWARD
-A DOCKER-FORWARD -o ${br} -j DOCKER
-A DOCKER ! -i ${br} -o ${br} -j DROP
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:DOCKER - [0:0]
COMMIT
`;

function reachCase(index: number, actual: ReachDetail['actual'], status: CaseResult['status']): CaseResult {
  return {
    id: 'IN-08',
    name: 'IN-08 unpublished container ports are not reachable from outside [wan → web tcp/81]',
    kind: 'reach',
    status,
    loc: { file: '/x/scenarios/ingress/publish-forms.yaml', line: 70, col: 5 },
    timeMs: 1,
    expectIndex: index,
    reach: { from: 'wan', to: 'web', address: '172.17.0.2', proto: 'tcp', port: 81, expected: 'timeout', actual },
  };
}

function result(engine: string, rules: string, labBridge: string, cases: CaseResult[]): ScenarioResult {
  return {
    scenarioId: 'publish-forms',
    title: 't',
    file: '/x/publish-forms.yaml',
    engine,
    engineDescription: engine,
    cases,
    ruleDump: '',
    transcript: [],
    timeMs: 1,
    probes: cases.length,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: {},
    snapshots: [{ phase: 0, host: 'host', rules: parseIptablesSave(rules), facts: facts(labBridge) }],
  };
}

const before = result('reference:docker-20.10', old('br-1111aaaa2222'), 'br-1111aaaa2222', [reachCase(0, 'connected', 'failed'), reachCase(1, 'refused', 'passed')]);
const after = result('reference:docker-29', next('br-3333bbbb4444'), 'br-3333bbbb4444', [reachCase(0, 'timeout', 'passed'), reachCase(1, 'refused', 'passed')]);

describe('upgrade diff report', () => {
  const d = buildUpgradeDiff('reference:docker-20.10', 'reference:docker-29', [before], [after]);

  it('names random bridges by network, keeps docker0 and addresses', () => {
    expect(normalizeForDiff('-o br-1111aaaa2222 -d 172.17.0.2/32 -i docker0', facts('br-1111aaaa2222'))).toBe('-o ${bridge:lab} -d 172.17.0.2/32 -i docker0');
  });

  it('lists user chains that appear and disappear, not built-in ones', () => {
    expect(d.chains.map((c) => `${c.table} ${c.chain} ${c.change}`)).toEqual(['filter DOCKER-FORWARD appears', 'filter DOCKER-ISOLATION-STAGE-1 disappears']);
  });

  it('lists rules added and removed per chain, normalized, and nothing that only renamed a bridge', () => {
    const text = d.rules.map((r) => `${r.change === 'added' ? '+' : '-'} ${r.table} ${r.chain} ${r.rule}`);
    expect(text).toContain('- nat DOCKER -i ${bridge:lab} -j RETURN');
    expect(text).toContain('+ filter FORWARD -j DOCKER-FORWARD');
    expect(text).toContain('- filter FORWARD -o ${bridge:lab} -j DOCKER');
    expect(text).toContain('+ filter DOCKER-FORWARD -o ${bridge:lab} -j DOCKER');
    expect(text).toContain('+ raw PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP');
    // the same rule under two random bridge names is no change
    expect(text.filter((t) => t.includes('br-'))).toEqual([]);
  });

  it('reports the FORWARD policy change', () => {
    expect(d.policies).toEqual([{ table: 'filter', chain: 'FORWARD', before: 'DROP', after: 'ACCEPT', scenarios: ['publish-forms'] }]);
  });

  it('reports a packet verdict that changes, and only that one', () => {
    expect(d.verdicts).toEqual([
      expect.objectContaining({ scenario: 'publish-forms', before: 'connected', after: 'timeout', meaning: 'reachable → blocked', where: 'publish-forms.yaml:70' }),
    ]);
    expect(d.statuses).toEqual([expect.objectContaining({ before: 'failed', after: 'passed' })]);
  });

  it('renders a markdown report a person reads', () => {
    const md = renderUpgradeDiff(d);
    expect(md).toContain('# Upgrade diff: reference:docker-20.10 → reference:docker-29');
    expect(md).toContain('| filter | DOCKER-FORWARD | appears | the scenario |');
    expect(md).toContain('| filter | DOCKER-ISOLATION-STAGE-1 | disappears | the scenario |');
    expect(md).toMatch(/\| publish-forms \| IN-08 .*\[wan → web tcp\/81\] \| connected \| timeout \| reachable → blocked \| publish-forms\.yaml:70 \|/);
    expect(md).toContain('### nat DOCKER\n\n```diff\n- -A DOCKER -i ${bridge:lab} -j RETURN    # the scenario\n```');
    expect(upgradeReportName('reference:docker-20.10', 'reference:docker-29')).toBe('upgrade-reference-docker-20.10-to-reference-docker-29.md');
  });

  it('says so when nothing changes', () => {
    const same = renderUpgradeDiff(buildUpgradeDiff('a', 'b', [before], [{ ...before, engine: 'b' }]));
    expect(same).toContain('No chain appears or disappears.');
    expect(same).toContain('Every probe has the same outcome under both.');
    expect(same).toContain('No rule is added or removed.');
  });
});

// docker-29's rules for the default bridge and one published port, and the nftables ones
const ipt29 = `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:DOCKER-CT - [0:0]
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER ! -i docker0 -o docker0 -j DROP
-A DOCKER-CT -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER - [0:0]
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`;
const nft29 = `table ip docker-bridges {
  map filter-forward-in-jumps {
    type ifname : verdict
    elements = { "docker0" : jump filter-forward-in__docker0 }
  }
  chain filter-FORWARD {
    type filter hook forward priority filter; policy accept;
    oifname vmap @filter-forward-in-jumps
  }
  chain nat-prerouting-and-output {
    iifname != "docker0" tcp dport 8080 counter dnat to 172.17.0.2:80 comment "DNAT"
  }
  chain filter-forward-in__docker0 {
    ct state established,related counter accept
    ip daddr 172.17.0.2 tcp dport 80 counter accept
    counter drop comment "UNPUBLISHED PORT DROP"
  }
  chain nat-postrouting-out__docker0 {
    oifname != "docker0" ip saddr 172.17.0.0/16 counter masquerade comment "MASQUERADE"
  }
}
`;

describe('upgrade diff across rule backends (iptables → nftables)', () => {
  const ipt = result('reference:docker-29', ipt29, 'br-1111aaaa2222', [reachCase(0, 'timeout', 'passed')]);
  const nft: ScenarioResult = { ...result('reference:docker-29-nftables', '', 'br-2222bbbb3333', [reachCase(0, 'timeout', 'passed')]) };
  nft.snapshots = [{ ...nft.snapshots![0], nft: parseNftText(nft29) }];
  const d = buildUpgradeDiff('reference:docker-29', 'reference:docker-29-nftables', [ipt], [nft]);

  it('lists the nftables chains and sets that appear, by family and table', () => {
    const appear = d.chains.filter((c) => c.change === 'appears').map((c) => `${c.table} ${c.chain}`);
    expect(appear).toContain('ip docker-bridges filter-FORWARD');
    expect(appear).toContain('ip docker-bridges filter-forward-in__docker0');
    expect(appear).toContain('ip docker-bridges @filter-forward-in-jumps');
    expect(d.chains.filter((c) => c.change === 'disappears').map((c) => `${c.table} ${c.chain}`)).toEqual(['filter DOCKER', 'filter DOCKER-CT', 'nat DOCKER']);
  });

  it('shows each rule beside the one that does its job on the other side', () => {
    const rows = new Map(d.sideBySide[0].rows.map(([l, r]) => [r, l]));
    expect(rows.get('nat-prerouting-and-output: iifname != ${bridge:bridge} tcp dport 8080 counter dnat to ${web}:80 comment DNAT')).toBe('-A DOCKER ! -i ${bridge:bridge} -p tcp -m tcp --dport 8080 -j DNAT --to-destination ${web}:80');
    expect(rows.get('filter-forward-in__${bridge:bridge}: ip daddr ${web} tcp dport 80 counter accept')).toBe('-A DOCKER -d ${web}/32 ! -i ${bridge:bridge} -o ${bridge:bridge} -p tcp -m tcp --dport 80 -j ACCEPT');
    expect(rows.get('filter-forward-in__${bridge:bridge}: ct state established,related counter accept')).toBe('-A DOCKER-CT -o ${bridge:bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT');
    expect(rows.get('filter-forward-in__${bridge:bridge}: counter drop comment "UNPUBLISHED PORT DROP"')).toBe('-A DOCKER ! -i ${bridge:bridge} -o ${bridge:bridge} -j DROP');
    expect(rows.get('nat-postrouting-out__${bridge:bridge}: oifname != ${bridge:bridge} ip saddr ${subnet:bridge} counter masquerade comment MASQUERADE')).toBe('-A POSTROUTING -s ${subnet:bridge} ! -o ${bridge:bridge} -j MASQUERADE');
    const md = renderUpgradeDiff(d);
    expect(md).toContain('## Rules side by side');
    expect(md).toContain('| `-A DOCKER ! -i ${bridge:bridge} -o ${bridge:bridge} -j DROP` | `filter-forward-in__${bridge:bridge}: counter drop comment "UNPUBLISHED PORT DROP"` |');
    expect(md).toContain('### ip docker-bridges filter-forward-in__docker0\n\n```diff\n+ counter drop comment "UNPUBLISHED PORT DROP"    # the scenario\n+ ct state established,related counter accept');
  });

  it('pairs only rules with the same verdict, and leaves the rest alone', () => {
    const { rows } = pairRules(['-A DOCKER -d 10.0.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT'], ['c: ip daddr 10.0.0.2 tcp dport 80 counter drop']);
    expect(rows).toEqual([
      [undefined, 'c: ip daddr 10.0.0.2 tcp dport 80 counter drop'],
      ['-A DOCKER -d 10.0.0.2/32 -p tcp -m tcp --dport 80 -j ACCEPT', undefined],
    ]);
    // and within one scenario's iptables run there is no side by side
    expect(buildUpgradeDiff('reference:docker-20.10', 'reference:docker-29', [before], [after]).sideBySide).toEqual([]);
  });
});
