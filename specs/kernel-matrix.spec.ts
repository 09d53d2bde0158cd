// The kernel matrix a run over several guest kernels shows (terminal, Markdown, HTML), built
// from run results: a cell per scenario and kernel, the rows where kernels differ counted.
import { describe, expect, it } from 'vitest';
import { buildKernelMatrix, differingRows, onKernel } from '../harness/report/kernel-matrix.js';
import { renderMarkdown } from '../harness/report/markdown.js';
import { renderHtml } from '../harness/report/html.js';
import { buildView } from '../harness/report/view.js';
import { kernelMatrixReport } from '../harness/report/terminal.js';
import { RECORD_FORMAT } from '../harness/report/record.js';
import type { CaseResult, ScenarioResult, Status } from '../harness/report/results.js';

function result(scenarioId: string, kernel: string | undefined, statuses: Status[], message?: string): ScenarioResult {
  const cases: CaseResult[] = statuses.map((status, i) => ({
    id: scenarioId, name: `${scenarioId} case ${i}`, kind: 'reach', status, message, loc: { file: 'x.yaml', line: 1, col: 1 }, timeMs: 1, expectIndex: i,
  }));
  return {
    scenarioId, title: `title of ${scenarioId}`, file: 'x.yaml', engine: kernel ? onKernel('reference', kernel) : 'reference', kernel,
    engineDescription: 'reference', cases, ruleDump: '', transcript: [], timeMs: 10, probes: statuses.length,
    phaseMs: { build: 1, probe: 1, teardown: 1 }, properties: {},
  };
}

const RESULTS = [
  result('VL-01', '6.1', ['passed', 'passed']),
  result('VL-01', '7.2', ['passed', 'passed']),
  result('NF-01', '6.1', ['skipped'], 'needs nftables (this kernel lacks it)'),
  result('NF-01', '7.2', ['passed', 'failed']),
];

describe('kernel matrix', () => {
  it('has a column per kernel, ordered by version, and a row per scenario with each run as a cell', () => {
    const m = buildKernelMatrix([...RESULTS].reverse())!;
    expect(m.kernels).toEqual(['6.1', '7.2']);
    const nf = m.rows.find((r) => r.scenarioId === 'NF-01')!;
    expect(nf.engine).toBe('reference');
    expect(nf.cells.get('6.1')).toMatchObject({ shown: 'skipped', skipReason: 'needs nftables (this kernel lacks it)' });
    expect(nf.cells.get('7.2')).toMatchObject({ shown: 'failed', counts: { passed: 1, failed: 1 } });
  });

  it('counts only the rows whose verdicts differ between kernels', () => {
    expect(differingRows(buildKernelMatrix(RESULTS)!).map((r) => r.scenarioId)).toEqual(['NF-01']);
    const same = RESULTS.filter((r) => r.scenarioId === 'VL-01');
    expect(differingRows(buildKernelMatrix(same)!)).toEqual([]);
  });

  it('is absent from a run on one machine (no kernel labels)', () => {
    expect(buildKernelMatrix([result('VL-01', undefined, ['passed'])])).toBeUndefined();
    expect(kernelMatrixReport([result('VL-01', undefined, ['passed'])])).toBe('');
  });

  it('is shown in the terminal, the Markdown and the HTML', () => {
    const text = kernelMatrixReport(RESULTS);
    expect(text).toMatch(/kernel matrix \(6\.1, 7\.2\)/);
    expect(text).toMatch(/NF-01 title of NF-01\s+- skipped\s+✗ 1\/2/);
    expect(text).toContain('1 scenario differ');
    const view = buildView({ format: RECORD_FORMAT, startedAt: new Date().toISOString(), wallMs: 1, targets: ['reference'], scenarios: ['VL-01', 'NF-01'], results: RESULTS });
    expect(renderMarkdown(view)).toContain('| scenario | kernel 6.1 | kernel 7.2 |');
    expect(renderHtml(view)).toContain('<section id="kernel-matrix">');
  });
});
