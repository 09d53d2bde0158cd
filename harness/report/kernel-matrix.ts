// The kernel matrix of a run over several guest kernels: a row per scenario and engine, a
// column per kernel, each cell the worst verdict of that run and its counts. What someone gating
// a kernel upgrade reads first; the terminal, Markdown and HTML reports lay it out.
import type { ScenarioResult } from './results.js';
import { compareReleases } from '../vm/kernels.js';
import { countCases, shownOf, worst, type Counts, type Shown } from './view.js';
import { isComparison } from './timings.js';

export interface MatrixCell {
  shown: Shown;
  counts: Counts;
  /** why the run was skipped (the feature the kernel lacks), when every case was */
  skipReason?: string;
}

export interface MatrixRow {
  scenarioId: string;
  title: string;
  engine: string;
  /** kernel label → its run (absent: the scenario did not run on that kernel) */
  cells: Map<string, MatrixCell>;
}

export interface KernelMatrix {
  kernels: string[];
  rows: MatrixRow[];
}

/**
 * A run's target on one kernel of a matrix ("reference @ kernel 6.12"): every report, JUnit
 * suite and anchor then tells the kernels' runs of a scenario apart without knowing of kernels.
 */
export function onKernel(engine: string, kernel: string): string {
  return `${engine} @ kernel ${kernel}`;
}

function baseEngine(target: string, kernel: string): string {
  const suffix = onKernel('', kernel);
  return target.endsWith(suffix) ? target.slice(0, -suffix.length) : target;
}

/** The matrix, or undefined when no result names a kernel of the matrix (a run on one machine). */
export function buildKernelMatrix(results: ScenarioResult[]): KernelMatrix | undefined {
  const runs = results.filter((r) => r.kernel && !isComparison(r));
  if (runs.length === 0) return undefined;
  const kernels = [...new Set(runs.map((r) => r.kernel!))].sort(compareReleases);
  const rows = new Map<string, MatrixRow>();
  for (const r of runs) {
    const engine = baseEngine(r.engine, r.kernel!);
    const key = `${r.scenarioId}\0${engine}`;
    const row = rows.get(key) ?? { scenarioId: r.scenarioId, title: r.title, engine, cells: new Map() };
    rows.set(key, row);
    const skipped = r.cases.length > 0 && r.cases.every((c) => c.status === 'skipped');
    row.cells.set(r.kernel!, {
      shown: skipped ? 'skipped' : worst(r.cases.map(shownOf)),
      counts: countCases(r.cases),
      skipReason: skipped ? r.cases[0].message : undefined,
    });
  }
  return { kernels, rows: [...rows.values()] };
}

/** A cell as a few characters: "✓ 12", "✗ 2/12", "- skipped", "·" (did not run). */
export function cellText(c: MatrixCell | undefined, marks: Record<Shown, string>): string {
  if (!c) return '·';
  const n = c.counts;
  if (c.shown === 'skipped') return `${marks.skipped} skipped`;
  if (c.shown === 'failed' || c.shown === 'error') return `${marks[c.shown]} ${n.failed + n.error}/${n.cases}`;
  return `${marks[c.shown]} ${n.passed}`;
}

/** The rows whose verdicts differ between kernels: what a kernel upgrade changes. */
export function differingRows(m: KernelMatrix): MatrixRow[] {
  return m.rows.filter((row) => new Set(m.kernels.map((k) => row.cells.get(k)?.shown ?? 'absent')).size > 1);
}

/** The matrix as rows of cells (a header first), for the terminal, Markdown and HTML to lay out. */
export function matrixCells(m: KernelMatrix, marks: Record<Shown, string>): string[][] {
  const engines = new Set(m.rows.map((r) => r.engine));
  const head = ['scenario', ...(engines.size > 1 ? ['engine'] : []), ...m.kernels.map((k) => `kernel ${k}`)];
  return [
    head,
    ...m.rows.map((r) => [`${r.scenarioId} ${r.title.length > 50 ? `${r.title.slice(0, 49)}…` : r.title}`, ...(engines.size > 1 ? [r.engine] : []), ...m.kernels.map((k) => cellText(r.cells.get(k), marks))]),
  ];
}
