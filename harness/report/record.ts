// The run record: everything a run found, as data (reports/run.json). Every report (JUnit,
// HTML, Markdown, SARIF, timings) is rendered from one, so `netconform merge` can combine the
// records of shards and render the same set an unsharded run writes.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, relative, sep } from 'node:path';
import type { ScenarioResult } from './results.js';

export const RECORD_FORMAT = 'netconform-run/1';

export interface ShardInfo {
  /** 1-based */
  index: number;
  count: number;
  /** digest of what the split was made from (scenarios, targets, timings, jobs): equal in all shards of one split */
  plan: string;
}

export interface RunRecord {
  format: typeof RECORD_FORMAT;
  startedAt: string; // ISO time
  wallMs: number;
  targets: string[];
  /** every scenario the run was asked for, in load order, before a shard took its part */
  scenarios: string[];
  shard?: ShardInfo;
  /** run --repeat N: the rounds merged into these results (cases whose verdict changed carry `flaky`) */
  rounds?: number;
  /** the records a merge combined (shards and other runs); absent for a plain run */
  mergedFrom?: { startedAt: string; wallMs: number; shard?: ShardInfo }[];
  results: ScenarioResult[];
}

/**
 * A record as written: paths relative to the working folder (a pipeline's checkout, where the
 * merge job reads them too), and without the parsed rule sets nor the rule paths as data (the
 * comparison of engines, which needs them, is made inside the run; the rule dump and each
 * case's rule path stay as text) nor the daemons' logs (kept as files under reports/logs,
 * report/evidence.ts).
 */
export function portableResults(results: ScenarioResult[], cwd = process.cwd()): ScenarioResult[] {
  const rel = (f: string) => (isAbsolute(f) ? relative(cwd, f).split(sep).join('/') : f);
  return results.map(({ snapshots: _snapshots, evidence: _evidence, ...r }) => ({
    ...r,
    file: rel(r.file),
    cases: r.cases.map(({ trace: _trace, ...c }) => ({ ...c, loc: { ...c.loc, file: rel(c.loc.file) } })),
  }));
}

export function writeRecord(path: string, record: RunRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify({ ...record, results: portableResults(record.results) }));
}

/** A record from a file; throws a message naming the file when it is not one. */
export function readRecord(path: string): RunRecord {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a run record (${(e as Error).message})`);
  }
  const r = data as Partial<RunRecord>;
  if (r?.format !== RECORD_FORMAT || !Array.isArray(r.results) || !Array.isArray(r.scenarios) || !Array.isArray(r.targets)) {
    throw new Error(`${path}: not a run record of this version (expected "format": "${RECORD_FORMAT}", written by netconform run beside its JUnit)`);
  }
  return r as RunRecord;
}
