// `--shard i/n`: the scenarios of a run split into n parts that take about as long, from the
// recorded durations (timings.ts). A scenario is never split: all targets of it run in one
// shard, so its engines can be compared. The split is a pure function of the scenario list,
// the targets, the table and the number of labs at once, so every runner of a CI matrix
// computes the same split on its own, and the shards together run every case exactly once.
import { createHash } from 'node:crypto';
import { parseTarget } from '../targets.js';
import type { TimingsTable } from './timings.js';

export interface ShardSpec {
  index: number; // 1-based
  count: number;
}

/** "2/3" → { index: 2, count: 3 }; throws a message a user can act on. */
export function parseShard(text: string): ShardSpec {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) {
    throw new Error(`--shard takes i/n with 1 ≤ i ≤ n, e.g. --shard 2/3 (got "${text}")`);
  }
  return { index, count };
}

interface Item {
  id: string;
  /** per target: its duration, and whether it runs in the docker lane */
  runs: { ms: number; docker: boolean }[];
  microvm: boolean;
}

export interface ShardPlan {
  /** scenario IDs per shard, in the order given */
  shards: string[][];
  /** estimated wall time of each shard, ms */
  estimatesMs: number[];
  /** the longest scenario alone (all its targets, and the guest's boot for a microVM one): no shard can take less */
  longestMs: number;
  /** digest of the inputs: equal in every shard of one split */
  digest: string;
  /** scenarios the table has no duration for (estimated from the others) */
  unknown: string[];
}

/**
 * Split `ids` into `count` shards. A shard's time is estimated the way the suite runs it: the
 * reference engine's labs `jobs` at a time, a real dockerd's scenarios one after the other
 * beside them, and the microVM's scenarios after the guest boots (once per shard that has one).
 * Largest scenarios first, each to the shard that ends earliest with it (LPT); ties by ID.
 */
export function planShards(ids: string[], targets: string[], table: TimingsTable, count: number, jobs = 4): ShardPlan {
  const guess = typicalMs(table);
  const unknown: string[] = [];
  const items: Item[] = ids.map((id) => {
    const t = table.scenarios[id];
    if (!t) unknown.push(id);
    const known = t ? Object.values(t.ms) : [];
    const own = known.length ? median(known) : guess;
    return {
      id,
      microvm: Boolean(t?.microvm),
      runs: targets.map((label) => ({ ms: t?.ms[label] ?? own, docker: parseTarget(label).engine === 'docker' })),
    };
  });
  const boot = table.microvmReadyMs ?? 0;
  const weight = (it: Item) => it.runs.reduce((n, r) => n + r.ms, 0) + (it.microvm ? boot : 0);
  const order = [...items].sort((a, b) => weight(b) - weight(a) || a.id.localeCompare(b.id));
  const shards: Item[][] = Array.from({ length: count }, () => []);
  for (const it of order) {
    let best = 0;
    let bestMs = Infinity;
    for (const [i, s] of shards.entries()) {
      const ms = estimateMs([...s, it], boot, jobs);
      if (ms < bestMs || (ms === bestMs && s.length < shards[best].length)) [best, bestMs] = [i, ms];
    }
    shards[best].push(it);
  }
  // each shard keeps the run's order (reports list scenarios as an unsharded run does)
  const pos = new Map(ids.map((id, i) => [id, i]));
  const out = shards.map((s) => s.map((x) => x.id).sort((a, b) => pos.get(a)! - pos.get(b)!));
  const digest = createHash('sha256')
    .update(JSON.stringify({ ids, targets, jobs, count, table: Object.entries(table.scenarios).sort(([a], [b]) => a.localeCompare(b)), boot }))
    .digest('hex')
    .slice(0, 16);
  const longestMs = Math.max(0, ...items.map((it) => estimateMs([it], boot, jobs)));
  return { shards: out, estimatesMs: shards.map((s) => estimateMs(s, boot, jobs)), longestMs, digest, unknown };
}

/** Wall time of a set of scenarios: the longest of the reference lanes, the docker lane and the microVM. */
function estimateMs(items: Item[], boot: number, jobs: number): number {
  const lanes = (xs: Item[]) => {
    const ref = xs.flatMap((x) => x.runs.filter((r) => !r.docker).map((r) => r.ms));
    const docker = xs.flatMap((x) => x.runs.filter((r) => r.docker).map((r) => r.ms));
    return Math.max(makespan(ref, jobs), docker.reduce((a, b) => a + b, 0));
  };
  const host = lanes(items.filter((x) => !x.microvm));
  const guest = items.filter((x) => x.microvm);
  return Math.max(host, guest.length ? boot + lanes(guest) : 0);
}

/** Longest lane when durations go, largest first, to whichever of `lanes` lanes is free first. */
function makespan(ms: number[], lanes: number): number {
  const free = Array.from({ length: Math.max(1, lanes) }, () => 0);
  for (const m of [...ms].sort((a, b) => b - a)) {
    const i = free.indexOf(Math.min(...free));
    free[i] += m;
  }
  return Math.max(...free);
}

/** What an unmeasured scenario is assumed to take: the median of the measured ones. */
function typicalMs(table: TimingsTable): number {
  const all = Object.values(table.scenarios).flatMap((s) => Object.values(s.ms));
  return all.length ? median(all) : 1000;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}
