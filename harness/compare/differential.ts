// Differential conformance: one scenario run on two engines must come out the same. Three
// things are compared, each a case of its own so a report says which one disagrees:
// - packet verdicts: every probe's outcome and the source its listener saw (by name), and
//   every expected refusal;
// - the lab host's rule sets after each phase (iptables, and nftables where read), with
//   engine-specific names made symbolic (br-<id> → ${bridge:net}, addresses → ${container},
//   veth names, published host ports), chain by chain and in order, with a unified diff per
//   differing chain;
// - the lab host's ip6tables rule set likewise (27+ write IPv6 rules by default);
// - the engines' facts: container addresses, network subnets and gateways, host ports;
// - every running container's /etc/hosts, /etc/resolv.conf and /etc/hostname, with addresses
//   and generated hostnames made symbolic, line for line.
// A comparison is itself a ScenarioResult (engine "a-vs-b"), so the terminal and JUnit
// reports show it like any scenario run, and a disagreement fails the run.
import { createTwoFilesPatch } from 'diff';
import type { CaseResult, ScenarioResult, Snapshot, Status } from '../report/results.js';
import type { Ruleset } from '../rules/iptables/save.js';
import type { NftRuleset } from '../rules/nft/model.js';
import { symbolize, type Facts } from '../rules/symbolic.js';
import { chainViews, viewHeader, viewLine } from '../rules/views.js';
import type { Scenario } from '../scenario/types.js';
import { sideBySide } from '../trace/render.js';

export const DIFF_ID = 'DIFF';

/** What differs between two engines in one aspect; empty when they agree. */
interface Finding {
  message: string;
  diff?: string;
}

function caseOf(sc: Scenario, name: string, status: Status, f?: Finding, index = 0): CaseResult {
  return { id: DIFF_ID, name, kind: 'scenario', status, loc: sc.loc, timeMs: 0, expectIndex: index, message: f?.message, diff: f?.diff };
}

/** How a case came out, in words that do not depend on the engine's concrete names. */
function verdictOf(c: CaseResult | undefined, facts: Facts | undefined): string {
  if (!c) return 'no result';
  if (c.status === 'skipped') return 'skipped';
  if (c.kind === 'reach' && c.reach) {
    const seen = c.reach.seen && facts ? symbolize(c.reach.seen, facts) : (c.reach.seen ?? 'none');
    return `${c.reach.actual}${c.reach.actual === 'connected' ? `, seen ${seen}` : ''}`;
  }
  if (c.kind === 'start') return c.status === 'passed' ? 'refused as expected' : `not as expected (${c.message?.split('\n')[0]})`;
  if (c.status === 'error') return `error: ${c.message?.split('\n')[0]}`;
  return '';
}

/** Whether one engine stopped at a step it cannot take (runner: property step.unsupported). */
function unsupported(a: ScenarioResult, b: ScenarioResult): boolean {
  return Boolean(a.properties['step.unsupported'] || b.properties['step.unsupported']);
}

function lastFacts(r: ScenarioResult): Facts | undefined {
  return r.snapshots?.at(-1)?.facts;
}

export function compareVerdicts(sc: Scenario, a: ScenarioResult, b: ScenarioResult): Finding | undefined {
  const lines: string[] = [];
  let differ = 0;
  for (const [i, e] of sc.expect.entries()) {
    if (e.kind !== 'reach' && e.kind !== 'start') continue;
    const ca = a.cases.find((c) => c.expectIndex === i);
    const cb = b.cases.find((c) => c.expectIndex === i);
    const factsA = a.snapshots?.find((s) => s.phase === e.phase)?.facts ?? lastFacts(a);
    const factsB = b.snapshots?.find((s) => s.phase === e.phase)?.facts ?? lastFacts(b);
    // a step one engine cannot take (reload-firewall without firewalld on a real dockerd)
    // skips the rest there: those cases are not compared (the skip says why)
    if (unsupported(a, b) && (ca?.status === 'skipped' || cb?.status === 'skipped')) continue;
    const va = verdictOf(ca, factsA);
    const vb = verdictOf(cb, factsB);
    if (va === vb) continue;
    differ++;
    lines.push(`${sc.file}:${e.loc.line} ${ca?.name ?? cb?.name ?? e.id}: ${a.engine} ${va}; ${b.engine} ${vb}`);
    // where the two packets went different ways, with the engines' own names made symbolic
    if (ca?.trace && cb?.trace) {
      const facts = { a: factsA, b: factsB };
      const normalize = (s: string, side: 'a' | 'b') => (facts[side] ? symbolize(s, facts[side]!) : s);
      lines.push(sideBySide({ label: a.engine, path: ca.trace }, { label: b.engine, path: cb.trace }, normalize).replace(/^/gm, '    '));
    }
  }
  return differ ? { message: `${a.engine} and ${b.engine} disagree on ${differ} verdict${differ === 1 ? '' : 's'}:\n${lines.join('\n')}` } : undefined;
}

type Chains = Map<string, { header: string; rules: string[]; line: (r: string) => string }>; // "table/chain" →

/** The rules a snapshot holds (iptables-save, and the nftables rule set where it was read). */
export interface RuleState {
  rs: Ruleset;
  nft?: NftRuleset;
}

/**
 * Every backend's chains with engine-specific names made symbolic (in nftables chain names
 * too: filter-forward-in__${bridge:back}); iptables tables holding only empty built-in
 * chains with policy ACCEPT dropped (a table someone merely listed).
 */
export function normalizeRuleset(state: RuleState, facts: Facts): Chains {
  const out: Chains = new Map();
  const views = chainViews({ rules: state.rs, nft: state.nft });
  const untouched = new Set(
    state.rs.filter((t) => t.chains.every((c) => c.rules.length === 0 && c.policy !== undefined && c.policy === 'ACCEPT')).map((t) => t.name),
  );
  for (const v of views) {
    if (v.backend === 'iptables' && untouched.has(v.table)) continue;
    const chain = v.backend === 'nft' ? symbolize(v.chain, facts) : v.chain;
    const sym = { ...v, chain };
    const rules = v.rules.map((r) => symbolize(r, facts));
    // a set's elements have no order: nft lists them by their key's bytes, so by the engine's
    // random bridge names (sorted again once the names are symbolic)
    out.set(`${v.table}/${chain}`, { header: viewHeader(sym), rules: chain.startsWith('@') ? rules.sort() : perEndpointRunsSorted(rules), line: (r) => viewLine(sym, r) });
  }
  return out;
}

/** A container's address as a placeholder: ${web}, ${web@back}, ${ipv6:web} (not ${bridge:…}, ${subnet:…}). */
const CONTAINER = /\$\{(?:ipv6:)?[^}:]+\}/g;

/**
 * Back-to-back rules that differ only in the container they name (one per endpoint: "DROP
 * DIRECT ACCESS" to each address) in one order. An engine writes them in its own iteration
 * order: after a restart 29 re-adds endpoints from a Go map, so their order changes from run
 * to run, and no rule of such a run can shadow another (each matches its own address).
 */
function perEndpointRunsSorted(rules: string[]): string[] {
  const shape = (r: string) => r.replace(CONTAINER, '${*}');
  const out: string[] = [];
  for (let i = 0; i < rules.length; ) {
    let j = i + 1;
    if (shape(rules[i]) !== rules[i]) while (j < rules.length && shape(rules[j]) === shape(rules[i])) j++;
    out.push(...rules.slice(i, j).sort());
    i = j;
  }
  return out;
}

function chainLines(c?: { header: string; rules: string[]; line: (r: string) => string }): string[] {
  if (!c) return [];
  return [c.header, ...c.rules.map(c.line)];
}

export function compareRulesets(a: { engine: string; facts: Facts } & RuleState, b: { engine: string; facts: Facts } & RuleState): Finding | undefined {
  const na = normalizeRuleset(a, a.facts);
  const nb = normalizeRuleset(b, b.facts);
  const names = [...new Set([...na.keys(), ...nb.keys()])].sort();
  const differing: string[] = [];
  const diffs: string[] = [];
  for (const n of names) {
    const la = chainLines(na.get(n));
    const lb = chainLines(nb.get(n));
    if (la.join('\n') === lb.join('\n')) continue;
    differing.push(n);
    const patch = createTwoFilesPatch(`${a.engine} ${n}`, `${b.engine} ${n}`, la.join('\n') + '\n', lb.join('\n') + '\n', '', '', { context: 50 });
    diffs.push(patch.split('\n').slice(1).join('\n').trimEnd()); // drop the "====" line
  }
  if (!differing.length) return undefined;
  return { message: `${a.engine} and ${b.engine} disagree in ${differing.join(', ')}`, diff: diffs.join('\n') };
}

/** Addresses, subnets, gateways and host ports by name (bridge names are random by design). */
function factLines(f: Facts): string[] {
  return [
    ...Object.entries(f.addresses).map(([k, v]) => `address ${k} = ${v}`),
    ...Object.entries(f.subnets).map(([k, v]) => `subnet ${k} = ${v}`),
    ...Object.entries(f.ports).map(([k, v]) => `port ${k} = ${v}`),
  ].sort();
}

export function compareFacts(a: { engine: string; facts: Facts }, b: { engine: string; facts: Facts }): Finding | undefined {
  const la = factLines(a.facts);
  const lb = factLines(b.facts);
  if (la.join('\n') === lb.join('\n')) return undefined;
  const patch = createTwoFilesPatch(a.engine, b.engine, la.join('\n') + '\n', lb.join('\n') + '\n', '', '', { context: 50 });
  return { message: `${a.engine} and ${b.engine} assign different addresses or ports`, diff: patch.split('\n').slice(1).join('\n').trimEnd() };
}

/**
 * A container file with the engine's concrete names made symbolic: generated hostnames (the
 * short container id, which differs on every run) → ${hostname:web}, addresses → ${web}.
 */
export function symbolizeFile(text: string, facts: Facts): string {
  const ids = Object.entries(facts.hostnames ?? {}).filter(([, h]) => /^[0-9a-f]{12}$/.test(h));
  return text
    .split('\n')
    .map((line) => {
      let l = symbolize(line, facts, { ports: false });
      for (const [ref, h] of ids) l = l.replace(new RegExp(`\\b${h}\\b`, 'g'), `\${hostname:${ref}}`);
      return l;
    })
    .join('\n');
}

export function compareFiles(a: { engine: string; snap: Snapshot }, b: { engine: string; snap: Snapshot }): Finding | undefined {
  const fa = a.snap.files ?? {};
  const fb = b.snap.files ?? {};
  const differing: string[] = [];
  const diffs: string[] = [];
  for (const c of [...new Set([...Object.keys(fa), ...Object.keys(fb)])].sort()) {
    for (const path of [...new Set([...Object.keys(fa[c] ?? {}), ...Object.keys(fb[c] ?? {})])].sort()) {
      const ta = fa[c]?.[path] === undefined ? '(no such container)\n' : symbolizeFile(fa[c][path], a.snap.facts);
      const tb = fb[c]?.[path] === undefined ? '(no such container)\n' : symbolizeFile(fb[c][path], b.snap.facts);
      if (ta === tb) continue;
      differing.push(`${c}:${path}`);
      const patch = createTwoFilesPatch(`${a.engine} ${c}:${path}`, `${b.engine} ${c}:${path}`, ta, tb, '', '', { context: 50 });
      diffs.push(patch.split('\n').slice(1).join('\n').trimEnd());
    }
  }
  if (!differing.length) return undefined;
  return { message: `${a.engine} and ${b.engine} write different container files: ${differing.join(', ')}`, diff: diffs.join('\n') };
}

/**
 * The containers' environments, variable by variable, with addresses and generated hostnames
 * symbolic (a link's DATABASE_PORT_5432_TCP_ADDR=${db}); the order of the variables is not compared.
 */
export function compareEnv(a: { engine: string; snap: Snapshot }, b: { engine: string; snap: Snapshot }): Finding | undefined {
  const asFiles = (s: Snapshot): Snapshot => ({ ...s, files: Object.fromEntries(Object.entries(s.env ?? {}).map(([c, vars]) => [c, { environment: [...vars].sort().join('\n') + '\n' }])) });
  const f = compareFiles({ engine: a.engine, snap: asFiles(a.snap) }, { engine: b.engine, snap: asFiles(b.snap) });
  return f && { ...f, message: f.message.replace('write different container files', 'give containers different environments') };
}

function notRun(r: ScenarioResult): string | undefined {
  if (r.cases.length && r.cases.every((c) => c.status === 'skipped')) return `skipped on ${r.engine}: ${r.cases[0].message ?? ''}`;
  const err = r.cases.find((c) => c.status === 'error' && c.message?.startsWith('scenario did not complete'));
  return err ? `${r.engine}: ${err.message}` : undefined;
}

/** Compare the runs of one scenario on two engines. */
export function compareRuns(sc: Scenario, a: ScenarioResult, b: ScenarioResult): ScenarioResult {
  const engine = `${a.engine}-vs-${b.engine}`;
  const cases: CaseResult[] = [];
  const skipped = [a, b].map(notRun).filter(Boolean);
  const bothSkipped = [a, b].every((r) => r.cases.length && r.cases.every((c) => c.status === 'skipped'));
  if (bothSkipped) {
    cases.push(caseOf(sc, `${engine}: not compared`, 'skipped', { message: skipped.join('; ') }));
  } else if (skipped.length) {
    cases.push(caseOf(sc, `${engine}: both engines ran the scenario`, 'failed', { message: skipped.join('\n') }));
  } else {
    const v = compareVerdicts(sc, a, b);
    cases.push(caseOf(sc, `${engine}: packet verdicts agree`, v ? 'failed' : 'passed', v, 0));
    // one snapshot per phase and Docker host, in the same order on both engines
    // with firewalld in the lab a real dockerd registers its bridges in firewalld's `docker`
    // zone (and 28 a docker-forwarding policy), whose chains the reference engine does not
    // write: the rule sets are not compared there (the verdicts are)
    if (sc.hosts.some((h) => h.firewalld)) {
      cases.push(caseOf(sc, `${engine}: rule sets not compared`, 'skipped', { message: "a lab with firewalld: dockerd's firewalld zone and policy chains are not modelled by the reference engine" }, 1));
    }
    const lengths = sc.hosts.some((h) => h.firewalld) ? [0, 0] : [a.snapshots?.length ?? 0, b.snapshots?.length ?? 0];
    const n = unsupported(a, b) ? Math.min(...lengths) : Math.max(...lengths);
    const multiPhase = sc.phases.length > 1;
    const multiHost = sc.hosts.length > 1;
    for (let i = 0; i < n; i++) {
      const sa = a.snapshots?.[i];
      const sb = b.snapshots?.[i];
      const at = sa ?? sb!;
      const where = [multiPhase ? `phase ${at.phase}` : '', multiHost ? `host ${at.host}` : ''].filter(Boolean).join(', ');
      const suffix = where ? ` (${where})` : '';
      if (!sa || !sb) {
        cases.push(caseOf(sc, `${engine}: rule sets agree${suffix}`, 'failed', { message: `no rule set of ${where || 'the scenario'} from ${!sa ? a.engine : b.engine}` }, 1 + i));
        continue;
      }
      const r = compareRulesets({ engine: a.engine, rs: sa.rules, nft: sa.nft, facts: sa.facts }, { engine: b.engine, rs: sb.rules, nft: sb.nft, facts: sb.facts });
      cases.push(caseOf(sc, `${engine}: rule sets agree${suffix}`, r ? 'failed' : 'passed', r, 1 + i));
      const r6 = compareRulesets({ engine: a.engine, rs: sa.rules6 ?? [], facts: sa.facts }, { engine: b.engine, rs: sb.rules6 ?? [], facts: sb.facts });
      cases.push(caseOf(sc, `${engine}: ip6tables rule sets agree${suffix}`, r6 ? 'failed' : 'passed', r6 && { ...r6, message: `ip6tables: ${r6.message}` }, 1 + i));
      const files = compareFiles({ engine: a.engine, snap: sa }, { engine: b.engine, snap: sb });
      cases.push(caseOf(sc, `${engine}: container files agree${suffix}`, files ? 'failed' : 'passed', files, 1 + i));
      const env = compareEnv({ engine: a.engine, snap: sa }, { engine: b.engine, snap: sb });
      cases.push(caseOf(sc, `${engine}: container environments agree${suffix}`, env ? 'failed' : 'passed', env, 1 + i));
      const f = compareFacts({ engine: a.engine, facts: sa.facts }, { engine: b.engine, facts: sb.facts });
      cases.push(caseOf(sc, `${engine}: addresses and ports agree${suffix}`, f ? 'failed' : 'passed', f, 1 + i));
    }
  }
  return {
    scenarioId: sc.id,
    title: sc.title,
    file: sc.file,
    engine,
    engineDescription: `${a.engineDescription} vs ${b.engineDescription}`,
    cases,
    ruleDump: '',
    transcript: [],
    timeMs: 0,
    probes: 0,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: { ...a.properties, engine: `${a.properties.engine ?? a.engine} vs ${b.properties.engine ?? b.engine}` },
  };
}
