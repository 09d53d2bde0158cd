// The report in Markdown (reports/report.md, and appended to $GITHUB_STEP_SUMMARY in GitHub
// Actions): the summary, failures with their YAML location and diff, findings, disagreements,
// the truth tables of failing runs, every scenario in one line, the slowest runs. GitHub takes
// at most 1 MiB of summary per step: the parts go in that order while they fit, long diffs are
// cut, and what did not fit is named with a pointer to report.html.
import { appendFileSync, existsSync, statSync } from 'node:fs';
import type { CaseResult } from './results.js';
import { formatMs, rulePathOf, shownOf, type CaseItem, type ReportView, type Shown, type TruthTable } from './view.js';
import { matrixCells } from './kernel-matrix.js';

/** GitHub's limit for one step's summary. */
export const STEP_SUMMARY_LIMIT = 1024 * 1024;
/** Lines of a diff, message or rule path shown in Markdown before it is cut. */
const MAX_BLOCK_LINES = 120;

const MARK: Record<Shown, string> = { passed: '✓', failed: '✗', error: '❗', skipped: '–', finding: '⚑' };

/** A table cell: one line, pipes escaped, HTML-ish characters neutralised. */
function cell(s: string | number | undefined): string {
  return String(s ?? '')
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/\r?\n/g, ' ');
}

/** Text for inside a fenced block: cut to a number of lines, fences in it defused. */
function block(s: string, lang = ''): string {
  const lines = s.replace(/```/g, '`\u200b``').split('\n');
  const cut = lines.length > MAX_BLOCK_LINES ? [...lines.slice(0, MAX_BLOCK_LINES), `… ${lines.length - MAX_BLOCK_LINES} more lines in report.html`] : lines;
  return '```' + lang + '\n' + cut.join('\n') + '\n```\n';
}

function where(c: CaseResult): string {
  return `\`${c.loc.file}:${c.loc.line}\``;
}

function caseDetails(x: CaseItem): string {
  const c = x.c;
  const s = shownOf(c);
  const parts = [`<details open><summary>${MARK[s]} <b>${cell(c.name)}</b> — ${cell(x.scenarioId)} on <code>${cell(x.target)}</code></summary>\n\n${where(c)}\n\n`];
  if (c.message) parts.push(block(c.message));
  if (c.diff) parts.push(block(c.diff, 'diff'));
  const rp = rulePathOf(c);
  if (rp) parts.push(`rule path:\n\n${block(rp)}`);
  parts.push('</details>\n\n');
  return parts.join('');
}

function probeText(t: TruthTable, from: string, to: string): string {
  const probes = t.cells.get(from)?.get(to);
  if (!probes) return '';
  return probes
    .map((p) => {
      const d = p.detail;
      const bad = p.shown === 'failed' || p.shown === 'error';
      const seen = d.expectedSeen !== undefined && (d.seen ?? 'none') !== d.expectedSeen ? ` seen ${d.seen ?? 'none'} (expected ${d.expectedSeen})` : '';
      return `${MARK[p.shown]} ${p.label} ${bad ? `**${d.actual}** (expected ${d.expected})` : d.actual}${seen}`;
    })
    .join('<br>');
}

function truthTableMd(t: TruthTable): string {
  const head = `| from ↓ to → | ${t.tos.map(cell).join(' | ')} |\n|---|${t.tos.map(() => '---').join('|')}|\n`;
  const rows = t.froms.map((f) => `| **${cell(f)}** | ${t.tos.map((to) => probeText(t, f, to).split('<br>').map(cell).join('<br>')).join(' | ')} |`);
  return head + rows.join('\n') + '\n';
}

/** Adds parts while they fit in the budget; counts what it had to leave out. */
class Budget {
  private parts: string[] = [];
  private used = 0;
  constructor(private readonly limit: number) {}
  add(s: string): boolean {
    const n = Buffer.byteLength(s);
    if (this.used + n > this.limit) return false;
    this.parts.push(s);
    this.used += n;
    return true;
  }
  /** Adds each item while it fits, then one line saying how many did not. */
  addAll(items: string[], what: string): void {
    let i = 0;
    while (i < items.length && this.add(items[i])) i++;
    if (i < items.length) this.parts.push(`\n_… ${items.length - i} more ${what} did not fit in the step summary: see report.html._\n\n`);
  }
  text(): string {
    return this.parts.join('');
  }
}

/** The report in Markdown, at most `limit` bytes (a reserve is kept for the notes of what was left out). */
export function renderMarkdown(v: ReportView, limit = STEP_SUMMARY_LIMIT): string {
  const b = new Budget(Math.max(0, limit - 4096));
  const c = v.counts;
  const bad = c.failed + c.error;
  b.add(`## ${v.title}: ${bad ? `${MARK.failed} ${bad} case${bad === 1 ? '' : 's'} did not pass` : `${MARK.passed} all passed`}\n\n`);
  b.add(
    `| passed | failed | errors | findings | skipped | scenario runs | probes | duration |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n| ${c.passed} | ${c.failed} | ${c.error} | ${c.findings} | ${c.skipped} | ${v.scenarioRuns} | ${v.probes} | ${formatMs(v.wallMs)} |\n\n`,
  );
  b.add(`targets ${v.targets.map((t) => `\`${t}\``).join(', ')} · kernel ${v.kernels.join(', ') || '–'} · ${v.iptables.join(', ') || 'iptables –'}${v.shards ? ` · ${v.shards}` : ''}\n\n`);
  if (v.kernelMatrix) {
    const [head, ...rows] = matrixCells(v.kernelMatrix, MARK);
    b.add(`### Kernel matrix\n\n| ${head.join(' | ')} |\n|${head.map(() => '---').join('|')}|\n`);
    b.addAll(rows.map((r) => `| ${r.map(cell).join(' | ')} |\n`), 'matrix rows');
    b.add('\n');
  }
  if (v.failures.length) {
    b.add(`### Failures (${v.failures.length})\n\n`);
    b.addAll(v.failures.map(caseDetails), 'failures');
  }
  if (v.findings.length) {
    b.add(`### Compliance findings (${v.findings.length})\n\nPassed cases whose behaviour the scenario marks an exposure.\n\n| ID | finding | scenario | target | YAML |\n|---|---|---|---|---|\n`);
    b.addAll(
      v.findings.map((x) => `| ${MARK.finding} ${cell(x.c.id)} | ${cell(x.c.finding)} | ${cell(x.scenarioId)} | \`${cell(x.target)}\` | ${where(x.c)} |\n`),
      'findings',
    );
    b.add('\n');
  }
  if (v.flaky.length) {
    b.add(`### Flaky cases (${v.flaky.length})\n\nCases whose verdict changed between the ${v.rounds ?? 'repeated'} rounds (\`--repeat\`): a bug to find, not a retry that passed.\n\n| case | rounds | scenario | target | YAML |\n|---|---|---|---|---|\n`);
    b.addAll(
      v.flaky.map((x) => `| ${cell(x.c.name)} | ${cell(x.c.flaky)} | ${cell(x.scenarioId)} | \`${cell(x.target)}\` | ${where(x.c)} |\n`),
      'flaky cases',
    );
    b.add('\n');
  }
  if (v.disagreements.length) {
    b.add(`### Engine disagreements (${v.disagreements.length})\n\n`);
    b.addAll(v.disagreements.map(caseDetails), 'disagreements');
  }
  // runs that came out the same share one table
  const failing = v.scenarios.flatMap((s) => s.groups.filter((g) => g.table && (g.shown === 'failed' || g.shown === 'error')).map((g) => ({ s, g })));
  if (failing.length) {
    b.add(`### Truth tables of failing runs\n\nRows are sources, columns destinations: ${MARK.passed} as expected, ${MARK.failed} not as expected, ${MARK.finding} a compliance finding.\n\n`);
    b.addAll(
      failing.map(({ s, g }) => `#### ${MARK[g.shown]} ${cell(s.id)} on ${g.runs.map((r) => `\`${cell(r.target)}\``).join(', ')}\n\n${truthTableMd(g.table!)}\n`),
      'truth tables',
    );
  }
  b.add(`### Scenarios (${v.scenarios.length})\n\n| | scenario | targets | covers | time |\n|---|---|---|---|---:|\n`);
  b.addAll(
    v.scenarios.map(
      (s) =>
        `| ${MARK[s.shown]} | **${cell(s.id)}** ${cell(s.title)} | ${s.runs.map((r) => `${MARK[r.shown]} \`${cell(r.target)}\``).join(' ')} | ${s.covers.join(' ')} | ${formatMs(s.runs.reduce((a, r) => a + r.r.timeMs, 0))} |\n`,
    ),
    'scenarios',
  );
  const slow = v.timings.slice(0, 10);
  if (slow.length) {
    b.add(`\n### Slowest scenario runs\n\n| scenario | target | total | build | probes | teardown |\n|---|---|---:|---:|---:|---:|\n`);
    b.addAll(
      slow.map((t) => `| ${cell(t.scenarioId)} | \`${cell(t.target)}\` | ${formatMs(t.r.timeMs)} | ${formatMs(t.r.phaseMs.build)} | ${formatMs(t.r.phaseMs.probe)} | ${formatMs(t.r.phaseMs.teardown)} |\n`),
      'timings',
    );
  }
  b.add(`\n_The whole report, with every truth table and the timings, is report.html (one file, no network needed); JUnit and SARIF are beside it._\n`);
  return b.text();
}

/** Appends the report to GitHub's step summary, within what is left of the step's limit. */
export function appendStepSummary(path: string, v: ReportView): number {
  const used = existsSync(path) ? statSync(path).size : 0;
  const md = renderMarkdown(v, STEP_SUMMARY_LIMIT - used);
  appendFileSync(path, md);
  return Buffer.byteLength(md);
}
