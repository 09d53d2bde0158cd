// The cases of a run that did not pass, each with its status, name, YAML place and message:
// what a reader needs in the first lines of a failure (a spec's assertion, a JUnit system-out),
// before any transcript.
import { relative } from 'node:path';
import type { CaseResult, ScenarioResult } from './results.js';

export interface NotPassingOptions {
  /** paths are shown relative to this folder (default: the working directory) */
  cwd?: string;
  /** count skipped cases as not passing (a spec that expects nothing skipped) */
  skippedFail?: boolean;
}

export function notPassing(r: ScenarioResult, opts: NotPassingOptions = {}): CaseResult[] {
  return r.cases.filter((c) => c.status === 'failed' || c.status === 'error' || (opts.skippedFail && c.status === 'skipped'));
}

/** "egress [reference:docker-20.10]: 1 of 5 cases did not pass" and a block per case; '' when all passed. */
export function describeNotPassing(r: ScenarioResult, opts: NotPassingOptions = {}): string {
  const bad = notPassing(r, opts);
  if (bad.length === 0) return '';
  const cwd = opts.cwd ?? process.cwd();
  const cases = r.cases.length === 1 ? 'case' : 'cases';
  const lines = [`${r.scenarioId} [${r.engine}]: ${bad.length} of ${r.cases.length} ${cases} did not pass`];
  for (const c of bad) {
    lines.push(`  ${c.status} ${c.name}  at ${relative(cwd, c.loc.file)}:${c.loc.line}:${c.loc.col}`);
    for (const l of (c.message ?? '(no message)').split('\n')) lines.push(`      ${l}`);
    if (c.diff) for (const l of c.diff.split('\n')) lines.push(`      ${l}`);
  }
  return lines.join('\n');
}
