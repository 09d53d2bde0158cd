// The CI workflow pipelines copy: it must parse (GitHub rejects a file with a stray ": " in a
// plain scalar, which this spec caught), and its kernel matrix must name kernels setup fetches.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { cachedReleases, kernelLabel } from '../harness/vm/kernels.js';

const workflow = parse(readFileSync('.github/workflows/conformance.yml', 'utf8')) as { jobs: Record<string, { strategy?: { matrix?: Record<string, unknown> }; needs?: string[] }> };

describe('the CI workflow', () => {
  it('parses, and the merged report waits for every job that uploads a run', () => {
    const jobs = Object.keys(workflow.jobs);
    expect(jobs).toContain('kernels');
    expect(workflow.jobs.report.needs).toEqual(expect.arrayContaining(jobs.filter((j) => j !== 'report')));
  });

  const cached = cachedReleases().map(kernelLabel);
  it.skipIf(cached.length === 0)('runs the catalogue on each kernel setup fetched (skipped: no kernel cache on this machine)', () => {
    expect([...(workflow.jobs.kernels.strategy!.matrix!.kernel as string[])].sort()).toEqual([...cached].sort());
  });
});
