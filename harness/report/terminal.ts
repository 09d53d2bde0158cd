// What a person reads in the terminal: a line per scenario as it finishes, then the failures
// with their messages, diffs and a reachability truth table (expected vs actual).
import type { CaseResult, ScenarioResult } from './results.js';
import { scenarioStatus } from './results.js';
import { buildKernelMatrix, differingRows, matrixCells } from './kernel-matrix.js';

const color = process.stdout.isTTY && !process.env.NO_COLOR;
const paint = (code: number) => (s: string) => (color ? `\x1b[${code}m${s}\x1b[0m` : s);
export const red = paint(31);
export const green = paint(32);
export const yellow = paint(33);
export const dim = paint(2);
export const bold = paint(1);

const MARK = { passed: green('✓'), failed: red('✗'), error: red('!'), skipped: yellow('-') } as const;

export function progressLine(r: ScenarioResult, index: number, total: number): string {
  const st = scenarioStatus(r);
  const counts = countBy(r.cases);
  const parts = [`${counts.passed} passed`];
  if (counts.failed) parts.push(red(`${counts.failed} failed`));
  if (counts.error) parts.push(red(`${counts.error} errors`));
  if (counts.skipped) parts.push(yellow(`${counts.skipped} skipped`));
  const width = String(total).length;
  return `[${String(index).padStart(width)}/${total}] ${MARK[st]} ${r.scenarioId} ${dim(`[${r.engine}]`)} ${parts.join(', ')} ${dim(`${r.probes} probes, ${r.timeMs.toFixed(0)} ms`)}`;
}

export function countBy(cases: CaseResult[]) {
  const c = { passed: 0, failed: 0, error: 0, skipped: 0 };
  for (const x of cases) c[x.status]++;
  return c;
}

/** Details of every scenario that did not pass. */
export function failureReport(results: ScenarioResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    const bad = r.cases.filter((c) => c.status === 'failed' || c.status === 'error');
    if (bad.length === 0) continue;
    out.push('', bold(`${r.scenarioId} [${r.engine}] — ${r.title}`), dim(r.file));
    for (const c of bad) {
      out.push(`  ${MARK[c.status]} ${c.name}  ${dim(`${c.loc.file}:${c.loc.line}`)}`);
      if (c.message) out.push(indent(c.message, 6));
      if (c.diff) out.push(indent(colorDiff(c.diff), 6));
      if (c.rulePath) out.push(indent(c.rulePath, 6));
    }
    const table = truthTable(r.cases);
    if (table) out.push('', indent(table, 4));
  }
  return out.join('\n');
}

/** Reachability matrix of a scenario: rows are sources, columns destinations, cells expected/actual. */
export function truthTable(cases: CaseResult[]): string {
  const reach = cases.filter((c) => c.reach);
  if (reach.length === 0) return '';
  const rows: string[][] = [['from', 'to', 'proto', 'expected', 'actual', 'seen (expected)', '']];
  for (const c of reach) {
    const d = c.reach!;
    const seen = d.expectedSeen ? `${d.seen ?? 'none'} (${d.expectedSeen})` : (d.seen ?? '');
    // the verdict as expected, but decided by another rule than decided-by says
    const otherRule = c.status === 'failed' && d.expected === d.actual && (d.expectedSeen === undefined || d.expectedSeen === (d.seen ?? 'none'));
    rows.push([d.from, `${d.to} ${dim(d.address)}`, `${d.proto}${d.port ? '/' + d.port : ''}`, d.expected, d.actual, seen, c.status === 'passed' ? green('ok') : red(otherRule ? 'OTHER RULE' : 'MISMATCH')]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => visible(r[i]).length)));
  return rows.map((r, i) => (i === 0 ? bold : (s: string) => s)(r.map((cell, j) => cell + ' '.repeat(widths[j] - visible(cell).length)).join('  '))).join('\n');
}

/** Scenario × kernel after a run over several guest kernels, with the rows where kernels differ counted. */
export function kernelMatrixReport(results: ScenarioResult[]): string {
  const m = buildKernelMatrix(results);
  if (!m) return '';
  const rows = matrixCells(m, { ...MARK, finding: yellow('⚑') });
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => visible(r[i]).length)));
  const lines = rows.map((r, i) => (i === 0 ? bold : (s: string) => s)(r.map((cell, j) => cell + ' '.repeat(widths[j] - visible(cell).length)).join('  ')));
  const differ = differingRows(m).length;
  const tail = differ ? yellow(`${differ} scenario${differ === 1 ? '' : 's'} differ between kernels`) : green('every scenario came out the same on every kernel');
  return `\n${bold(`kernel matrix (${m.kernels.join(', ')})`)}\n${lines.join('\n')}\n${tail}`;
}

/** Passed cases that confirm an exposure: what a compliance review reads first. */
export function findingsReport(results: ScenarioResult[]): string {
  const lines = results.flatMap((r) => r.cases.filter((c) => c.finding).map((c) => `  ${yellow('⚑')} ${c.id} ${r.scenarioId} [${r.engine}]: ${c.finding}  ${dim(`${c.loc.file}:${c.loc.line}`)}`));
  return lines.length ? `\n${bold(`${lines.length} compliance finding${lines.length === 1 ? '' : 's'}`)} (exposures the scenarios confirm)\n${lines.join('\n')}` : '';
}

/** run --repeat: the cases whose verdict changed between rounds. */
export function flakyReport(results: ScenarioResult[], rounds: number): string {
  const lines = results.flatMap((r) => r.cases.filter((c) => c.flaky).map((c) => `  ${yellow('~')} ${r.scenarioId} [${r.engine}] ${c.name}: ${c.flaky}  ${dim(`${c.loc.file}:${c.loc.line}`)}`));
  const head = `${lines.length} flaky case${lines.length === 1 ? '' : 's'} over ${rounds} rounds`;
  return lines.length ? `\n${bold(head)} (the verdict changed between rounds)\n${lines.join('\n')}` : `\n${green(head)}`;
}

export function summaryLine(results: ScenarioResult[], wallMs: number): string {
  const all = results.flatMap((r) => r.cases);
  const c = countBy(all);
  const probes = results.reduce((n, r) => n + r.probes, 0);
  const scenarios = results.length;
  const failedScenarios = results.filter((r) => ['failed', 'error'].includes(scenarioStatus(r))).length;
  const flaky = all.filter((x) => x.flaky).length;
  const head = `${c.passed} passed, ${c.failed + c.error} failed, ${c.skipped} skipped${flaky ? `, ${flaky} flaky` : ''}`;
  return `${head}\n${dim(`${scenarios} scenario runs (${failedScenarios} not passing), ${all.length} cases, ${probes} probes in ${(wallMs / 1000).toFixed(2)} s`)}`;
}

function visible(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '');
}

function indent(s: string, n: number): string {
  return s
    .split('\n')
    .map((l) => ' '.repeat(n) + l)
    .join('\n');
}

function colorDiff(d: string): string {
  return d
    .split('\n')
    .map((l) => (l.startsWith('+') && !l.startsWith('+++') ? green(l) : l.startsWith('-') && !l.startsWith('---') ? red(l) : l))
    .join('\n');
}
