// Recorded durations (reports/timings.json): how long each scenario took on each target, and
// whether it ran in the microVM, measured by earlier runs. `--shard` splits a run by them;
// `run --save-timings` and `netconform merge` update the table. A default table for the
// catalogue is committed, so a pipeline's first sharded run is balanced too.
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ScenarioResult } from './results.js';

export const TIMINGS_FORMAT = 'netconform-timings/1';

export interface ScenarioTimings {
  /** milliseconds per target label ("reference:docker-20.10", "docker") */
  ms: Record<string, number>;
  /** ran in the microVM: its shard pays the guest's boot once */
  microvm?: boolean;
}

export interface TimingsTable {
  format: typeof TIMINGS_FORMAT;
  /** from qemu's start until the guest's harness is ready (paid once per run that boots it) */
  microvmReadyMs?: number;
  scenarios: Record<string, ScenarioTimings>;
}

export function emptyTimings(): TimingsTable {
  return { format: TIMINGS_FORMAT, scenarios: {} };
}

/** A table from a file; a missing file is an empty table, a broken one an error naming it. */
export function readTimings(path: string): TimingsTable {
  if (!existsSync(path)) return emptyTimings();
  let t: Partial<TimingsTable>;
  try {
    t = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a timings table (${(e as Error).message}); delete it or pass --timings with another file`);
  }
  if (t?.format !== TIMINGS_FORMAT || typeof t.scenarios !== 'object' || t.scenarios === null) {
    throw new Error(`${path}: not a timings table (expected "format": "${TIMINGS_FORMAT}"); delete it or pass --timings with another file`);
  }
  return t as TimingsTable;
}

/** Written whole or not at all: shards of one pipeline may read it while another run writes. */
export function writeTimings(path: string, t: TimingsTable): void {
  mkdirSync(dirname(path), { recursive: true });
  const sorted: TimingsTable = { format: TIMINGS_FORMAT, ...(t.microvmReadyMs ? { microvmReadyMs: t.microvmReadyMs } : {}), scenarios: {} };
  for (const id of Object.keys(t.scenarios).sort()) {
    const s = t.scenarios[id];
    sorted.scenarios[id] = { ms: Object.fromEntries(Object.entries(s.ms).sort(([a], [b]) => a.localeCompare(b))), ...(s.microvm ? { microvm: true } : {}) };
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify(sorted, null, 1) + '\n');
  renameSync(tmp, path);
}

/** Comparisons of two engines (engine "a-vs-b") cost nothing of their own. */
export function isComparison(r: ScenarioResult): boolean {
  return r.engine.includes('-vs-');
}

/**
 * The table updated with what these results measured; entries they did not measure stay. A new
 * figure is averaged with the one before (each older run counts half as much as the next): one
 * run on a busy machine, or one that had to start a daemon the others shared, moves a split
 * less than it would by replacing the figure.
 */
export function recordTimings(base: TimingsTable, results: ScenarioResult[]): TimingsTable {
  const out: TimingsTable = { ...base, scenarios: Object.fromEntries(Object.entries(base.scenarios).map(([k, v]) => [k, { ...v, ms: { ...v.ms } }])) };
  for (const r of results) {
    if (isComparison(r)) continue;
    // a run skipped whole (no guest kernel, a missing feature) measured nothing: its figure and
    // where it runs stay as recorded, or a run without the microVM would unmark the VLAN scenarios
    if (r.cases.length > 0 && r.cases.every((c) => c.status === 'skipped')) continue;
    // a kernel matrix's run puts every scenario in a guest: it says nothing of where one runs by default
    if (r.kernel) continue;
    const s = (out.scenarios[r.scenarioId] ??= { ms: {} });
    const before = s.ms[r.engine];
    s.ms[r.engine] = Math.round(before === undefined ? r.timeMs : (before + r.timeMs) / 2);
    const vm = r.properties?.runner === 'microvm';
    if (vm) s.microvm = true;
    else delete s.microvm;
    const ready = Number(r.properties?.['vm.harness-ready-ms']);
    if (vm && ready > 0) out.microvmReadyMs = Math.round(out.microvmReadyMs ? (out.microvmReadyMs + ready) / 2 : ready);
  }
  return out;
}
