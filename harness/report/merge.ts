// `netconform merge`: the run records of shards (or of separate runs) into one record, from
// which the whole set of reports is rendered as an unsharded run renders it. A split with a
// shard missing or given twice, shards of different splits mixed up, or a scenario run on the
// same target twice are errors: a merged report must count every case exactly once.
import type { ScenarioResult } from './results.js';
import { RECORD_FORMAT, type RunRecord } from './record.js';
import { isComparison } from './timings.js';

export interface Source {
  path: string;
  record: RunRecord;
}

export function mergeRecords(sources: Source[]): RunRecord {
  if (!sources.length) throw new Error('nothing to merge: give the run.json files (or the folders holding them) of the shards');
  checkSplits(sources);
  const seen = new Map<string, string>(); // scenario + target → file
  for (const { path, record } of sources) {
    for (const r of record.results) {
      const key = `${r.scenarioId} [${r.engine}]`;
      const before = seen.get(key);
      if (before) throw new Error(`${key} is in ${before} and in ${path}: a merged report would count its cases twice (merge the shards of one split, or runs of different scenarios or targets)`);
      seen.set(key, path);
    }
  }
  const targets = union(sources.map((s) => s.record.targets));
  const scenarios = union(sources.map((s) => s.record.scenarios));
  const pos = new Map(scenarios.map((id, i) => [id, i]));
  const rank = (r: ScenarioResult) => (isComparison(r) ? targets.length : Math.max(0, targets.indexOf(r.engine)));
  const results = sources
    .flatMap((s) => s.record.results)
    .sort((a, b) => (pos.get(a.scenarioId) ?? 1e9) - (pos.get(b.scenarioId) ?? 1e9) || rank(a) - rank(b) || a.engine.localeCompare(b.engine));
  const starts = sources.map((s) => s.record.startedAt).sort();
  return {
    format: RECORD_FORMAT,
    startedAt: starts[0],
    // shards run side by side on a CI matrix: the whole took as long as the longest
    wallMs: Math.max(...sources.map((s) => s.record.wallMs)),
    targets,
    scenarios,
    mergedFrom: sources.flatMap((s) => s.record.mergedFrom ?? [{ startedAt: s.record.startedAt, wallMs: s.record.wallMs, ...(s.record.shard ? { shard: s.record.shard } : {}) }]),
    results,
  };
}

/** Every split among the sources is complete: shards 1..n, each once, all from the same plan. */
function checkSplits(sources: Source[]): void {
  const splits = new Map<string, Source[]>();
  for (const s of sources) {
    const sh = s.record.shard;
    if (sh) splits.set(sh.plan, [...(splits.get(sh.plan) ?? []), s]);
  }
  for (const [plan, group] of splits) {
    const count = group[0].record.shard!.count;
    const have = new Map<number, string>();
    for (const s of group) {
      const sh = s.record.shard!;
      if (sh.count !== count) throw new Error(`${s.path} is shard ${sh.index}/${sh.count} but ${group[0].path} is of a split into ${count}`);
      const twice = have.get(sh.index);
      if (twice) throw new Error(`shard ${sh.index}/${count} is given twice: ${twice} and ${s.path}`);
      have.set(sh.index, s.path);
    }
    const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !have.has(i));
    if (missing.length) {
      throw new Error(
        `shard${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i}/${count}`).join(', ')} of split ${plan} ${missing.length === 1 ? 'is' : 'are'} missing (have ${[...have.entries()].map(([i, p]) => `${i}/${count} from ${p}`).join(', ')}); a merged report would leave cases out`,
      );
    }
  }
  if (splits.size > 1) {
    const counts = [...splits.values()].map((g) => g[0].record.targets.join(','));
    if (new Set(counts).size < counts.length) {
      throw new Error(`shards of ${splits.size} different splits of the same targets: each runner must split the same scenarios with the same timings table and --jobs (plans ${[...splits.keys()].join(', ')})`);
    }
  }
}

function union(lists: string[][]): string[] {
  const out: string[] = [];
  for (const l of lists) for (const x of l) if (!out.includes(x)) out.push(x);
  return out;
}
