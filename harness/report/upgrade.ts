// The upgrade diff: the same scenarios run under two targets (two profiles of the reference
// engine, or two engines), and what changes between them — chains that appear or disappear,
// rules added or removed per chain, policies, and packet verdicts expectation by expectation.
// The question a team asks before an engine upgrade, answered from real runs. Chains of every
// backend take part (iptables tables, nftables tables by family and name); where the two
// targets write different backends (iptables → nftables), each scenario's rules are also
// shown side by side, each rule beside the one that does its job on the other side.
import { basename } from 'node:path';
import type { Ruleset } from '../rules/iptables/save.js';
import type { NftRuleset } from '../rules/nft/model.js';
import { symbolize, type Facts } from '../rules/symbolic.js';
import { chainViews, viewLine } from '../rules/views.js';
import { firewallBackend, parseTarget } from '../targets.js';
import { pairRules, type SideBySide } from './side-by-side.js';
import type { CaseResult, ScenarioResult } from './results.js';

export interface ChainChange {
  table: string;
  chain: string;
  change: 'appears' | 'disappears';
  scenarios: string[];
}

export interface RuleChange {
  table: string;
  chain: string;
  /** how the rule is written: `-A CHAIN rule` (iptables) or the rule itself (nftables) */
  backend?: 'iptables' | 'nft';
  rule: string; // normalized
  change: 'added' | 'removed';
  scenarios: string[];
}

export interface PolicyChange {
  table: string;
  chain: string;
  before: string;
  after: string;
  scenarios: string[];
}

export interface VerdictChange {
  scenario: string;
  expectation: string; // "IN-08 … [wan → web tcp/81]"
  where: string; // file:line
  before: string; // actual outcome under `from`
  after: string;
  meaning: string; // "reachable → blocked"
}

export interface StatusChange {
  scenario: string;
  expectation: string;
  where: string;
  before: CaseResult['status'];
  after: CaseResult['status'];
  message?: string;
}

export interface UpgradeDiff {
  from: string;
  to: string;
  scenarios: string[]; // run under both
  onlyOne: string[]; // scenarios missing from one side
  chains: ChainChange[];
  rules: RuleChange[];
  policies: PolicyChange[];
  verdicts: VerdictChange[];
  statuses: StatusChange[];
  /** per scenario, when the targets write different rule backends: the rules side by side */
  sideBySide: SideBySide[];
}

/**
 * A rule as both runs can agree on it: bridge names a run chose at random (br-1a2b3c…) become
 * ${bridge:NETWORK}, veth names veth*; docker0 and addresses (deterministic IPAM) stay.
 */
export function normalizeForDiff(rule: string, facts: Facts): string {
  let out = rule;
  for (const [net, bridge] of Object.entries(facts.bridges)) {
    if (net === 'bridge') continue;
    // alone, or ending an nftables chain name (filter-forward-in__br-1a2b)
    out = out.replace(new RegExp(`(?:(?<![\\w.-])|(?<=__))${bridge.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w.-])`, 'g'), `\${bridge:${net}}`);
  }
  return out.replace(/\bveth[0-9a-f]+\b/g, 'veth*');
}

interface ChainEntry {
  table: string;
  chain: string;
  backend: 'iptables' | 'nft';
  /** iptables built-in chains exist as soon as their table does: only other chains appear or disappear */
  builtin: boolean;
  policy?: string;
  rules: Set<string>;
}

type ChainMap = Map<string, ChainEntry>; // "table\tchain" →

function chainsOf(s: { rules: Ruleset; nft?: NftRuleset }, facts: Facts): ChainMap {
  const m: ChainMap = new Map();
  for (const v of chainViews(s)) {
    const chain = normalizeForDiff(v.chain, facts);
    m.set(`${v.table}\t${chain}`, { table: v.table, chain, backend: v.backend, builtin: v.builtin, policy: v.policy, rules: new Set(v.rules.map((r) => normalizeForDiff(r, facts))) });
  }
  return m;
}

/** Accumulates "what changed, in which scenarios" under one key. */
class Tally<T> {
  private readonly m = new Map<string, { item: T; scenarios: string[] }>();
  add(key: string, item: T, scenario: string): void {
    const e = this.m.get(key) ?? { item, scenarios: [] };
    if (!e.scenarios.includes(scenario)) e.scenarios.push(scenario);
    this.m.set(key, e);
  }
  list(): (T & { scenarios: string[] })[] {
    return [...this.m.values()].map((e) => ({ ...e.item, scenarios: e.scenarios }));
  }
}

const reachable = (o: string) => (o === 'connected' || o === 'refused' ? 'reachable' : o === 'error' ? 'error' : 'blocked');

export function buildUpgradeDiff(from: string, to: string, before: ScenarioResult[], after: ScenarioResult[]): UpgradeDiff {
  const byId = (rs: ScenarioResult[]) => new Map(rs.map((r) => [r.scenarioId, r]));
  const a = byId(before);
  const b = byId(after);
  const scenarios = [...a.keys()].filter((id) => b.has(id));
  const onlyOne = [...new Set([...a.keys(), ...b.keys()])].filter((id) => !scenarios.includes(id));
  const chains = new Tally<Omit<ChainChange, 'scenarios'>>();
  const rules = new Tally<Omit<RuleChange, 'scenarios'>>();
  const policies = new Tally<Omit<PolicyChange, 'scenarios'>>();
  const verdicts: VerdictChange[] = [];
  const statuses: StatusChange[] = [];
  const sideBySide: SideBySide[] = [];
  const backendOf = (label: string) => {
    try {
      const t = parseTarget(label);
      return t.profile ? firewallBackend(t.profile) : 'iptables';
    } catch {
      return 'iptables'; // not a target name (a report built by hand)
    }
  };
  const acrossBackends = backendOf(from) !== backendOf(to);

  for (const id of scenarios) {
    const ra = a.get(id)!;
    const rb = b.get(id)!;
    for (const sa of ra.snapshots ?? []) {
      const sb = rb.snapshots?.find((s) => s.phase === sa.phase && s.host === sa.host);
      if (!sb) continue;
      const ca = chainsOf(sa, sa.facts);
      const cb = chainsOf(sb, sb.facts);
      for (const key of new Set([...ca.keys(), ...cb.keys()])) {
        const x = ca.get(key);
        const y = cb.get(key);
        const { table, chain, backend, builtin } = (x ?? y)!;
        if (!x && !builtin) chains.add(`${key} appears`, { table, chain, change: 'appears' }, id);
        if (!y && !builtin) chains.add(`${key} disappears`, { table, chain, change: 'disappears' }, id);
        for (const rule of y?.rules ?? []) if (!x?.rules.has(rule)) rules.add(`${key} + ${rule}`, { table, chain, backend, rule, change: 'added' }, id);
        for (const rule of x?.rules ?? []) if (!y?.rules.has(rule)) rules.add(`${key} - ${rule}`, { table, chain, backend, rule, change: 'removed' }, id);
        if (x && y && x.policy !== y.policy && x.policy && y.policy) policies.add(`${key} ${x.policy} ${y.policy}`, { table, chain, before: x.policy, after: y.policy }, id);
      }
    }
    if (acrossBackends) {
      // the state each Docker host ends the scenario in
      const last = Math.max(...(ra.snapshots ?? []).map((x) => x.phase));
      for (const sa of (ra.snapshots ?? []).filter((x) => x.phase === last)) {
        const sb = rb.snapshots?.find((x) => x.phase === sa.phase && x.host === sa.host);
        if (!sb) continue;
        const side = pairRules(listed(sa), listed(sb));
        if (side.rows.length) sideBySide.push({ scenario: id, host: sa.host, phase: sa.phase, ...side });
      }
    }
    for (const ca of ra.cases) {
      const cb = rb.cases.find((c) => c.expectIndex === ca.expectIndex && c.name === ca.name) ?? rb.cases.find((c) => c.expectIndex === ca.expectIndex);
      if (!cb) continue;
      const where = `${basename(ca.loc.file)}:${ca.loc.line}`;
      if (ca.reach && cb.reach && ca.reach.actual !== cb.reach.actual) {
        verdicts.push({ scenario: id, expectation: ca.name, where, before: ca.reach.actual, after: cb.reach.actual, meaning: `${reachable(ca.reach.actual)} → ${reachable(cb.reach.actual)}` });
      }
      if (ca.status !== cb.status && ca.status !== 'skipped' && cb.status !== 'skipped') {
        statuses.push({ scenario: id, expectation: ca.name, where, before: ca.status, after: cb.status, message: cb.message?.split('\n')[0] });
      }
    }
  }
  const order = (x: { table: string; chain: string }, y: { table: string; chain: string }) => x.table.localeCompare(y.table) || x.chain.localeCompare(y.chain);
  return {
    from,
    to,
    scenarios,
    onlyOne,
    chains: chains.list().sort((x, y) => order(x, y) || x.change.localeCompare(y.change)),
    rules: rules.list().sort((x, y) => order(x, y) || (x.change === y.change ? 0 : x.change === 'removed' ? -1 : 1) || x.rule.localeCompare(y.rule)),
    policies: policies.list().sort(order),
    verdicts,
    statuses,
    sideBySide,
  };
}

/** A snapshot's rules, symbolic, each written with its place: `-A CHAIN rule`, `chain: rule`. */
function listed(s: { rules: Ruleset; nft?: NftRuleset; facts: Facts }): string[] {
  return chainViews(s).flatMap((v) => {
    const chain = symbolize(v.chain, s.facts);
    return v.rules.map((r) => (v.backend === 'iptables' ? viewLine(v, symbolize(r, s.facts)) : `${chain}: ${symbolize(r, s.facts)}`));
  });
}

function inWhich(scenarios: string[], all: number): string {
  if (scenarios.length === all) return all === 1 ? 'the scenario' : `all ${all} scenarios`;
  const shown = scenarios.slice(0, 3).join(', ');
  const list = scenarios.length > 3 ? `${shown} +${scenarios.length - 3} more` : shown;
  return all > 1 ? `${scenarios.length} of ${all}: ${list}` : list;
}

/** The report a person reads (markdown, also fine in a terminal). */
export function renderUpgradeDiff(d: UpgradeDiff): string {
  const n = d.scenarios.length;
  const out: string[] = [];
  const changedRules = new Set(d.rules.flatMap((r) => r.scenarios)).size;
  out.push(`# Upgrade diff: ${d.from} → ${d.to}`, '');
  const count = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 's'}`;
  const appear = d.chains.filter((c) => c.change === 'appears').length;
  out.push(
    `${count(n, 'scenario')} run under both. Rules differ in ${changedRules}; ${appear} chain${appear === 1 ? '' : 's'} appear, ${d.chains.length - appear} disappear; ${count(d.verdicts.length, 'packet verdict')} change; ${count(d.statuses.length, 'expectation')} change status.`,
  );
  if (d.onlyOne.length) out.push('', `Not compared (ran under one target only): ${d.onlyOne.join(', ')}.`);

  out.push('', '## Chains', '');
  if (d.chains.length === 0) out.push('No chain appears or disappears.');
  else {
    out.push('| table | chain | change | in |', '|---|---|---|---|');
    for (const c of d.chains) out.push(`| ${c.table} | ${c.chain} | ${c.change} | ${inWhich(c.scenarios, n)} |`);
  }
  if (d.policies.length) {
    out.push('', '## Policies', '', '| table | chain | before | after | in |', '|---|---|---|---|---|');
    for (const p of d.policies) out.push(`| ${p.table} | ${p.chain} | ${p.before} | ${p.after} | ${inWhich(p.scenarios, n)} |`);
  }

  out.push('', '## Packet verdicts', '');
  if (d.verdicts.length === 0) out.push('Every probe has the same outcome under both.');
  else {
    out.push(`| scenario | probe | ${d.from} | ${d.to} | meaning | where |`, '|---|---|---|---|---|---|');
    for (const v of d.verdicts) out.push(`| ${v.scenario} | ${v.expectation} | ${v.before} | ${v.after} | ${v.meaning} | ${v.where} |`);
  }
  if (d.statuses.length) {
    out.push('', '## Expectations that change status', '', `| scenario | expectation | ${d.from} | ${d.to} | where |`, '|---|---|---|---|---|');
    for (const s of d.statuses) out.push(`| ${s.scenario} | ${s.expectation} | ${s.before} | ${s.after} | ${s.where} |`);
  }

  out.push('', '## Rules, chain by chain', '');
  if (d.rules.length === 0) out.push('No rule is added or removed.');
  const chains = [...new Set(d.rules.map((r) => `${r.table}\t${r.chain}`))];
  for (const key of chains) {
    const [table, chain] = key.split('\t');
    out.push(`### ${table} ${chain}`, '', '```diff');
    for (const r of d.rules.filter((x) => x.table === table && x.chain === chain)) {
      out.push(`${r.change === 'added' ? '+' : '-'} ${viewLine({ backend: r.backend ?? 'iptables', chain }, r.rule)}    # ${inWhich(r.scenarios, n)}`);
    }
    out.push('```', '');
  }
  if (d.sideBySide.length) {
    out.push('## Rules side by side', '', `Each scenario's rules at its end, ${d.from} on the left, ${d.to} on the right; a rule stands beside the one that matches the same addresses, ports, interfaces and verdict.`, '');
    for (const s of d.sideBySide) {
      out.push(`### ${s.scenario}${s.host !== 'host' ? ` (host ${s.host})` : ''}`, '', `| ${d.from} | ${d.to} |`, '|---|---|');
      for (const [l, r] of s.rows) out.push(`| ${cell(l)} | ${cell(r)} |`);
      out.push('');
    }
  }
  return out.join('\n').trimEnd() + '\n';
}

function cell(rule: string | undefined): string {
  return rule === undefined ? '' : `\`${rule.replace(/\|/g, '\\|')}\``;
}

/** reports/upgrade-reference-docker-20.10-to-reference-docker-29.md */
export function upgradeReportName(from: string, to: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '-');
  return `upgrade-${safe(from)}-to-${safe(to)}.md`;
}
