// The one way a spec says "every case passed": when one did not, the failure's first lines name
// each such case, its YAML place and its message (never `expected false to be true`), then the
// run's transcript for context.
import { expect } from 'vitest';
import { describeNotPassing, notPassing } from '../../harness/report/not-passing.js';
import type { ScenarioResult } from '../../harness/report/results.js';

const TRANSCRIPT_LINES = 60;

/** What did not pass in a run, then the end of its transcript. */
export function explain(r: ScenarioResult, opts: { skippedFail?: boolean } = {}): string {
  const transcript = r.transcript.slice(-TRANSCRIPT_LINES);
  const cut = r.transcript.length > transcript.length ? `(last ${transcript.length} of ${r.transcript.length} lines)\n` : '';
  return [describeNotPassing(r, opts) || `${r.scenarioId} [${r.engine}]: every case passed`, `--- transcript ${cut}${transcript.join('\n')}`].join('\n');
}

/**
 * Every case of every run passed (skipped cases too unless `skippedFail`); else the failure
 * lists what did not, run by run.
 */
export function expectAllPassed(runs: ScenarioResult | ScenarioResult[] | undefined, opts: { skippedFail?: boolean } = {}): void {
  if (runs === undefined) return expect.fail('no run: the scenario was not run (see the hook that should have run it)');
  const list = Array.isArray(runs) ? runs : [runs];
  const bad = list.filter((r) => notPassing(r, opts).length > 0);
  if (bad.length > 0) expect.fail(bad.map((r) => explain(r, opts)).join('\n\n'));
}
