// The CI workflow pipelines copy: it must parse (GitHub rejects a file with a stray ": " in a
// plain scalar, which this spec caught), and its kernel matrix must name kernels setup fetches.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { cachedReleases, kernelLabel } from '../harness/vm/kernels.js';

interface Step {
  uses?: string;
  with?: Record<string, string>;
}
const workflow = parse(readFileSync('.github/workflows/conformance.yml', 'utf8')) as {
  jobs: Record<string, { strategy?: { matrix?: Record<string, unknown> }; needs?: string[]; steps?: Step[] }>;
};

describe('the CI workflow', () => {
  it('parses, and the merged report waits for every job that uploads a run', () => {
    // the jobs whose run records (artifacts run-*) the report job merges
    const uploadRuns = Object.entries(workflow.jobs)
      .filter(([, j]) => j.steps?.some((s) => s.uses?.startsWith('actions/upload-artifact') && s.with?.name?.startsWith('run-')))
      .map(([name]) => name);
    expect(uploadRuns).toEqual(expect.arrayContaining(['suite', 'kernels']));
    expect(workflow.jobs.report.needs).toEqual(expect.arrayContaining(uploadRuns));
  });

  const cached = cachedReleases().map(kernelLabel);
  it.skipIf(cached.length === 0)('runs the catalogue on each kernel setup fetched (skipped: no kernel cache on this machine)', () => {
    expect([...(workflow.jobs.kernels.strategy!.matrix!.kernel as string[])].sort()).toEqual([...cached].sort());
  });
});
