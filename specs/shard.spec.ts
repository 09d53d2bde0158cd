// `--shard i/n` and `netconform merge`: the split itself (every scenario in exactly one shard,
// the same split on every runner, balanced by the committed timings table), merge refusing an
// incomplete or overlapping set, and end to end in real labs: shards 1/3, 2/3 and 3/3 together
// run every case exactly once, with all targets of a scenario in one shard, and their merge
// counts what the unsharded run counts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XmlDocument, type XmlElement } from 'libxml2-wasm';
import { loadScenarios } from '../harness/scenario/load.js';
import { mergeRecords } from '../harness/report/merge.js';
import { RECORD_FORMAT, readRecord, type RunRecord } from '../harness/report/record.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { parseShard, planShards } from '../harness/report/shard.js';
import { emptyTimings, readTimings, recordTimings } from '../harness/report/timings.js';
import { countCases } from '../harness/report/view.js';
import { FIXTURE, ROOT, runCli, type CliRun } from './support/reports.js';

const isRoot = process.getuid?.() === 0;
const TABLE = join(ROOT, 'reports', 'timings.json');
const catalogue = loadScenarios([join(ROOT, 'scenarios')]).scenarios.map((s) => s.id);

describe('the split', () => {
  it('reads i/n and refuses anything else, saying what it takes', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/3', '4/3', '1/0', 'a/b', '1-3', '']) expect(() => parseShard(bad), bad).toThrow(/--shard takes i\/n with 1 ≤ i ≤ n/);
  });

  for (const targets of [['reference:docker-20.10', 'docker'], ['reference:docker-28', 'reference:docker-29'], ['reference:docker-20.10']]) {
    it(`puts every catalogue scenario in exactly one of 3 shards, the same on every runner (${targets.join(', ')})`, () => {
      const table = readTimings(TABLE);
      const plan = planShards(catalogue, targets, table, 3);
      expect(plan.shards.flat().sort()).toEqual([...catalogue].sort());
      expect(plan.unknown).toEqual([]); // the committed table knows the catalogue
      // another runner: the table's keys in another order, the same answer and the same digest
      const shuffled = { ...table, scenarios: Object.fromEntries(Object.entries(table.scenarios).reverse()) };
      const again = planShards(catalogue, targets, shuffled, 3);
      expect(again.shards).toEqual(plan.shards);
      expect(again.digest).toBe(plan.digest);
    });
  }

  it('estimates shards within 20 % of each other on the committed table, unless one scenario alone is longer', () => {
    const table = readTimings(TABLE);
    for (const targets of [['reference:docker-20.10', 'docker'], ['reference:docker-28', 'reference:docker-29'], ['reference:docker-20.10']]) {
      const { estimatesMs, longestMs } = planShards(catalogue, targets, table, 3);
      const spread = Math.max(...estimatesMs) / Math.min(...estimatesMs);
      const why = `${targets.join(',')}: estimates ${estimatesMs.map((m) => Math.round(m)).join(', ')} ms, longest scenario ${Math.round(longestMs)} ms`;
      if (spread > 1.2) expect(Math.max(...estimatesMs), why).toBeLessThanOrEqual(longestMs * 1.001);
      else expect(spread, why).toBeLessThanOrEqual(1.2);
    }
  });

  it('an even split by count would not be balanced where durations differ (what the table is for)', () => {
    // two long scenarios and four short ones: by count, both long ones can share a shard; by duration they never do
    const table = { format: 'netconform-timings/1' as const, scenarios: Object.fromEntries(['a', 'b', 'c', 'd', 'e', 'f'].map((id, i) => [id, { ms: { 'reference:docker-20.10': i < 2 ? 10_000 : 1000 } }])) };
    const plan = planShards(['a', 'b', 'c', 'd', 'e', 'f'], ['reference:docker-20.10'], table, 2, 1);
    expect(plan.shards.map((s) => s.filter((id) => id === 'a' || id === 'b').length)).toEqual([1, 1]);
    expect(plan.estimatesMs).toEqual([12_000, 12_000]);
  });

  it('counts a scenario the table does not know at the median, and still places it', () => {
    const plan = planShards([...catalogue, 'brand-new'], ['reference:docker-20.10'], readTimings(TABLE), 3);
    expect(plan.unknown).toEqual(['brand-new']);
    expect(plan.shards.flat().filter((id) => id === 'brand-new')).toHaveLength(1);
  });
});

describe('the timings table', () => {
  const result = (id: string, engine: string, timeMs: number, properties: Record<string, string> = {}) => ({ scenarioId: id, engine, timeMs, properties, cases: [] }) as unknown as ScenarioResult;

  it('averages a new duration with the one before, keeps what was not measured, and skips comparisons', () => {
    const base = { format: 'netconform-timings/1' as const, scenarios: { a: { ms: { docker: 8000, 'reference:docker-20.10': 500 } }, b: { ms: { docker: 100 } } } };
    const t = recordTimings(base, [result('a', 'docker', 2000), result('c', 'docker', 300), result('a', 'reference:docker-20.10-vs-docker', 0)]);
    expect(t.scenarios).toEqual({ a: { ms: { docker: 5000, 'reference:docker-20.10': 500 } }, b: { ms: { docker: 100 } }, c: { ms: { docker: 300 } } });
    expect(base.scenarios.a.ms.docker).toBe(8000); // the table it started from is left as it was
  });

  it('leaves alone what a skipped run did not measure (a VLAN scenario skipped without a guest kernel)', () => {
    const base = { format: 'netconform-timings/1' as const, scenarios: { v: { ms: { 'reference:docker-20.10': 12_000 }, microvm: true } } };
    const skipped = { ...result('v', 'reference:docker-20.10', 3), cases: [{ status: 'skipped' }] } as unknown as ScenarioResult;
    expect(recordTimings(base, [skipped]).scenarios.v).toEqual({ ms: { 'reference:docker-20.10': 12_000 }, microvm: true });
  });

  it('marks microVM scenarios and keeps the guest boot', () => {
    const t = recordTimings(emptyTimings(), [result('v', 'reference:docker-20.10', 12_000, { runner: 'microvm', 'vm.harness-ready-ms': '15000' })]);
    expect(t.scenarios.v).toEqual({ ms: { 'reference:docker-20.10': 12_000 }, microvm: true });
    expect(t.microvmReadyMs).toBe(15_000);
  });
});

describe('merge refuses what would miscount', () => {
  const record = (index: number, ids: string[], plan = 'p1'): RunRecord => ({
    format: RECORD_FORMAT,
    startedAt: '2026-01-01T00:00:00.000Z',
    wallMs: 1000 * index,
    targets: ['reference:docker-20.10'],
    scenarios: ['a', 'b', 'c'],
    shard: { index, count: 3, plan },
    results: ids.map((id) => ({ scenarioId: id, engine: 'reference:docker-20.10', cases: [] }) as unknown as ScenarioResult),
  });

  it('a shard missing', () => {
    expect(() => mergeRecords([{ path: 's1', record: record(1, ['a']) }, { path: 's3', record: record(3, ['c']) }])).toThrow(/shard 2\/3 of split p1 is missing/);
  });

  it('a shard given twice', () => {
    expect(() => mergeRecords([1, 2, 2, 3].map((i, k) => ({ path: `s${k}`, record: record(i, [`x${k}`]) })))).toThrow(/shard 2\/3 is given twice: s1 and s2/);
  });

  it('a scenario run on the same target twice', () => {
    expect(() => mergeRecords([{ path: 's1', record: record(1, ['a']) }, { path: 's2', record: record(2, ['a']) }, { path: 's3', record: record(3, ['c']) }])).toThrow(/a \[reference:docker-20\.10\] is in s1 and in s2/);
  });

  it('and keeps the order of the unsharded run', () => {
    const merged = mergeRecords([3, 1, 2].map((i) => ({ path: `s${i}`, record: record(i, [['a', 'b', 'c'][i - 1]]) })));
    expect(merged.results.map((r) => r.scenarioId)).toEqual(['a', 'b', 'c']);
    expect(merged.wallMs).toBe(3000); // side by side: as long as the longest
  });
});

describe.skipIf(!isRoot)('shards of a real run', () => {
  // two targets, so a scenario's targets must land in one shard; the fixture fails on purpose
  const paths = ['scenarios/egress', 'scenarios/modes', 'scenarios/firewall', FIXTURE];
  const args = (junit: string) => ['run', ...paths, '--profile', 'docker-20.10,docker-28', '--timings', TABLE, '--junit', junit, '--sarif', junit.replace('junit.xml', 'findings.sarif')];
  let whole: CliRun;
  const shards: CliRun[] = [];
  let merged: CliRun;

  beforeAll(async () => {
    whole = await runCli(args('{dir}/junit.xml'));
    for (const i of [1, 2, 3]) shards.push(await runCli([...args('{dir}/junit.xml'), '--shard', `${i}/3`]));
    const out = mkdtempSync(join(tmpdir(), 'ncf-merged-'));
    merged = await runCli(['merge', ...shards.map((s) => s.dir), '--out', out], {}, out);
  });

  afterAll(() => {
    for (const r of [whole, ...shards, merged]) if (r) rmSync(r.dir, { recursive: true, force: true });
  });

  const casesOf = (rs: ScenarioResult[]) => rs.flatMap((r) => r.cases.map((c) => `${r.scenarioId} [${r.engine}] #${c.expectIndex} ${c.name}: ${c.status}`));

  it('each shard runs its scenarios on every target, and together they run every case exactly once', () => {
    const all = readRecord(join(whole.dir, 'run.json'));
    const parts = shards.map((s) => readRecord(join(s.dir, 'run.json')));
    for (const p of parts) {
      expect(p.shard?.count).toBe(3);
      const ids = new Set(p.results.map((r) => r.scenarioId));
      for (const id of ids) expect(p.results.filter((r) => r.scenarioId === id).map((r) => r.engine).sort(), id).toEqual(['reference:docker-20.10', 'reference:docker-28']);
    }
    expect(new Set(parts.map((p) => p.shard?.plan)).size).toBe(1);
    expect(parts.every((p) => p.results.length > 0)).toBe(true);
    // the same cases with the same outcomes, as many times as in the whole run: none twice, none left out
    const union = parts.flatMap((p) => casesOf(p.results));
    expect(union.length).toBe(all.results.reduce((n, r) => n + r.cases.length, 0));
    expect(union.sort()).toEqual(casesOf(all.results).sort());
    expect(new Set(parts.flatMap((p) => p.results.map((r) => r.scenarioId))).size).toBe(new Set(all.results.map((r) => r.scenarioId)).size);
  });

  it('merge gives the counts of the unsharded run: run record, JUnit and SARIF', () => {
    expect(whole.exitCode, whole.stderr).toBe(1);
    expect(merged.exitCode, merged.stderr).toBe(1); // the fixture's failures stay failures
    const all = readRecord(join(whole.dir, 'run.json'));
    const m = readRecord(join(merged.dir, 'run.json'));
    expect(countCases(m.results.flatMap((r) => r.cases))).toEqual(countCases(all.results.flatMap((r) => r.cases)));
    expect(m.results.map((r) => `${r.scenarioId} [${r.engine}]`)).toEqual(all.results.map((r) => `${r.scenarioId} [${r.engine}]`));
    const totals = (xml: string) => {
      const doc = XmlDocument.fromString(xml);
      try {
        const root = doc.root as XmlElement;
        return ['tests', 'failures', 'errors', 'skipped'].map((a) => root.attr(a)?.value);
      } finally {
        doc.dispose();
      }
    };
    expect(totals(merged.read('junit.xml'))).toEqual(totals(whole.read('junit.xml')));
    const levels = (sarif: string) => (JSON.parse(sarif).runs[0].results as { level: string; ruleId: string }[]).map((r) => `${r.level} ${r.ruleId}`).sort();
    expect(levels(merged.read('findings.sarif'))).toEqual(levels(whole.read('findings.sarif')));
    for (const f of ['report.html', 'report.md', 'timings.json']) expect(existsSync(join(merged.dir, f)), f).toBe(true);
    const timings = readTimings(join(merged.dir, 'timings.json'));
    for (const r of m.results) expect(timings.scenarios[r.scenarioId]?.ms[r.engine], r.scenarioId).toBeGreaterThanOrEqual(0);
    expect(readFileSync(join(merged.dir, 'report.html'), 'utf8')).toContain('merged from 3 runs (shard 1/3');
  });

  it('merge without one of the shards exits 2 and names it', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ncf-merged-'));
    const r = await runCli(['merge', shards[0].dir, shards[2].dir, '--out', out], {}, out);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/shard 2\/3 of split [0-9a-f]+ is missing/);
    expect(existsSync(join(out, 'junit.xml'))).toBe(false);
    rmSync(out, { recursive: true, force: true });
  });
});
