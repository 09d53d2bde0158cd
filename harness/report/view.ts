// What the human reports show, worked out once from a run record: the summary, what failed
// (first), compliance findings, the engines' disagreements, each scenario's truth table and
// other cases, and where the time went. html.ts and markdown.ts only lay it out.
import type { CaseResult, ReachDetail, ScenarioResult, Status } from './results.js';
import { scenarioStatus } from './results.js';
import type { RunRecord } from './record.js';
import { isComparison } from './timings.js';
import { buildKernelMatrix, type KernelMatrix } from './kernel-matrix.js';

/** A reach case's rule path (the path its packet took, multi-line), where it was traced. */
export function rulePathOf(c: CaseResult): string | undefined {
  return c.rulePath?.trim() ? c.rulePath : undefined;
}

/** How a case or scenario is shown: a passed case that confirms an exposure is a finding. */
export type Shown = Status | 'finding';

export const SHOWN_ORDER: Shown[] = ['error', 'failed', 'finding', 'skipped', 'passed'];

export function shownOf(c: CaseResult): Shown {
  return c.status === 'passed' && c.finding ? 'finding' : c.status;
}

/** The worst of several: errors before failures before findings before skips before passes. */
export function worst(xs: Shown[]): Shown {
  return xs.reduce<Shown>((w, x) => (SHOWN_ORDER.indexOf(x) < SHOWN_ORDER.indexOf(w) ? x : w), 'passed');
}

export interface Counts {
  passed: number;
  failed: number;
  error: number;
  skipped: number;
  findings: number;
  cases: number;
}

export interface CaseItem {
  scenarioId: string;
  title: string;
  target: string;
  anchor: string;
  c: CaseResult;
}

/** One probe in a truth-table cell. */
export interface Probe {
  label: string; // "tcp/80"
  detail: ReachDetail;
  shown: Shown;
  c: CaseResult;
}

export interface TruthTable {
  froms: string[];
  tos: string[];
  /** from → to → probes of that pair */
  cells: Map<string, Map<string, Probe[]>>;
}

export interface RunView {
  r: ScenarioResult;
  target: string;
  anchor: string;
  shown: Shown;
  counts: Counts;
  table?: TruthTable;
  /** every case that is not a reach probe: rules, files, names, refusals, comparisons */
  others: CaseResult[];
  comparison: boolean;
}

/** Runs of one scenario whose results read the same (same verdicts, same messages and diffs): shown once. */
export interface RunGroup {
  runs: RunView[];
  shown: Shown;
  table?: TruthTable;
  others: CaseResult[];
}

export interface ScenarioView {
  id: string;
  title: string;
  file: string;
  anchor: string;
  covers: string[];
  shown: Shown;
  runs: RunView[];
  groups: RunGroup[];
}

export interface ReportView {
  title: string;
  generatedAt: string;
  startedAt: string;
  wallMs: number;
  targets: string[];
  kernels: string[];
  iptables: string[];
  shards?: string;
  counts: Counts;
  scenarioRuns: number;
  probes: number;
  failures: CaseItem[];
  findings: CaseItem[];
  /** run --repeat: cases whose verdict changed between rounds */
  flaky: CaseItem[];
  /** run --repeat: how many rounds */
  rounds?: number;
  disagreements: CaseItem[];
  scenarios: ScenarioView[];
  timings: { scenarioId: string; target: string; anchor: string; r: ScenarioResult }[];
  /** scenario × kernel, when the run went over several guest kernels */
  kernelMatrix?: KernelMatrix;
}

export function countCases(cases: CaseResult[]): Counts {
  const n: Counts = { passed: 0, failed: 0, error: 0, skipped: 0, findings: 0, cases: cases.length };
  for (const c of cases) {
    n[c.status]++;
    if (c.status === 'passed' && c.finding) n.findings++;
  }
  return n;
}

/** A fragment id a person can type: letters, digits and dashes. */
export function anchorOf(...parts: string[]): string {
  return parts
    .join('--')
    .replace(/[^A-Za-z0-9.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function probeLabel(d: ReachDetail): string {
  return d.port ? `${d.proto}/${d.port}` : d.proto;
}

function truthTable(cases: CaseResult[]): TruthTable | undefined {
  const reach = cases.filter((c) => c.reach);
  if (!reach.length) return undefined;
  const froms: string[] = [];
  const tos: string[] = [];
  const cells = new Map<string, Map<string, Probe[]>>();
  for (const c of reach) {
    const d = c.reach!;
    if (!froms.includes(d.from)) froms.push(d.from);
    if (!tos.includes(d.to)) tos.push(d.to);
    const row = cells.get(d.from) ?? new Map<string, Probe[]>();
    cells.set(d.from, row);
    const cell = row.get(d.to) ?? [];
    row.set(d.to, cell);
    cell.push({ label: probeLabel(d), detail: d, shown: shownOf(c), c });
  }
  return { froms, tos, cells };
}

/** What a person sees of a run, without its timings: equal for runs that came out the same. */
function signature(run: RunView): string {
  const probe = (c: CaseResult) => (c.reach ? [c.reach.from, c.reach.to, c.reach.proto, c.reach.port, c.reach.expected, c.reach.actual, c.reach.expectedSeen, c.reach.seen] : []);
  return JSON.stringify([run.comparison ? run.target : '', run.r.cases.map((c) => [c.name, shownOf(c), c.message, c.diff, c.finding, rulePathOf(c), ...probe(c)])]);
}

function groupRuns(runs: RunView[]): RunGroup[] {
  const groups = new Map<string, RunGroup>();
  for (const run of runs) {
    const key = signature(run);
    const g = groups.get(key);
    if (g) g.runs.push(run);
    else groups.set(key, { runs: [run], shown: run.shown, table: run.table, others: run.others });
  }
  return [...groups.values()];
}

function distinct(xs: (string | undefined)[]): string[] {
  return [...new Set(xs.filter((x): x is string => Boolean(x)))];
}

export function buildView(record: RunRecord): ReportView {
  const results = record.results;
  const all = results.flatMap((r) => r.cases);
  const items = (pick: (c: CaseResult, r: ScenarioResult) => boolean): CaseItem[] =>
    results.flatMap((r) => r.cases.filter((c) => pick(c, r)).map((c) => ({ scenarioId: r.scenarioId, title: r.title, target: r.engine, anchor: anchorOf(r.scenarioId, r.engine), c })));
  const byId = new Map<string, ScenarioResult[]>();
  for (const r of results) byId.set(r.scenarioId, [...(byId.get(r.scenarioId) ?? []), r]);
  const order = [...record.scenarios, ...[...byId.keys()].filter((id) => !record.scenarios.includes(id))];
  const scenarios: ScenarioView[] = order
    .filter((id) => byId.has(id))
    .map((id) => {
      const rs = byId.get(id)!;
      const runs = rs.map((r): RunView => {
        const comparison = isComparison(r);
        const table = comparison ? undefined : truthTable(r.cases);
        return {
          r,
          target: r.engine,
          anchor: anchorOf(r.scenarioId, r.engine),
          shown: worst(r.cases.map(shownOf).concat(scenarioStatus(r) === 'skipped' ? ['skipped'] : [])),
          counts: countCases(r.cases),
          table,
          others: r.cases.filter((c) => !(table && c.reach)),
          comparison,
        };
      });
      return {
        id,
        title: rs[0].title,
        file: rs[0].file,
        anchor: anchorOf(id),
        covers: distinct(rs.flatMap((r) => r.cases.map((c) => c.id))).filter((x) => x !== 'DIFF'),
        shown: worst(runs.map((x) => x.shown)),
        runs,
        groups: groupRuns(runs),
      };
    });
  // what needs a look first: failing scenarios, then findings, then the rest, each in run order
  const rank = (s: ScenarioView) => SHOWN_ORDER.indexOf(s.shown);
  scenarios.sort((a, b) => rank(a) - rank(b));
  const props = results.filter((r) => !isComparison(r)).map((r) => r.properties ?? {});
  const shards = record.mergedFrom?.some((m) => m.shard)
    ? `merged from ${record.mergedFrom.length} runs (${record.mergedFrom.map((m) => (m.shard ? `shard ${m.shard.index}/${m.shard.count}` : 'a whole run')).join(', ')})`
    : record.shard
      ? `shard ${record.shard.index}/${record.shard.count}`
      : undefined;
  return {
    title: 'netconform report',
    generatedAt: new Date().toISOString(),
    startedAt: record.startedAt,
    wallMs: record.wallMs,
    targets: record.targets,
    kernels: distinct(props.map((p) => (p.runner === 'microvm' ? `${p.kernel} (microVM)` : p.kernel))),
    iptables: distinct(props.map((p) => p.iptables)),
    shards,
    counts: countCases(all),
    scenarioRuns: results.filter((r) => !isComparison(r)).length,
    probes: results.reduce((n, r) => n + r.probes, 0),
    failures: items((c, r) => !isComparison(r) && (c.status === 'failed' || c.status === 'error')),
    findings: items((c) => c.status === 'passed' && Boolean(c.finding)),
    flaky: items((c) => Boolean(c.flaky)),
    rounds: record.rounds,
    disagreements: items((c, r) => isComparison(r) && (c.status === 'failed' || c.status === 'error')),
    scenarios,
    kernelMatrix: buildKernelMatrix(results),
    timings: results
      .filter((r) => !isComparison(r))
      .map((r) => ({ scenarioId: r.scenarioId, target: r.engine, anchor: anchorOf(r.scenarioId, r.engine), r }))
      .sort((a, b) => b.r.timeMs - a.r.timeMs),
  };
}

/** "1.2 s", "340 ms", "2 min 05 s" */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}
