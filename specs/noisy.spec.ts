// The noisy-neighbour bench's pure parts (harness/bench/noisy.ts): vitest's JSON report as a
// table per spec file, the load statistics, and what it reads from the commands' output.
import { describe, expect, it } from 'vitest';
import { fileRows, fileTable, firstLines, loadStats, parseLoadavg, suiteSummary, vitestDuration, type VitestReport } from '../harness/bench/noisy.js';

const STACK = 'AssertionError: expected 1 to be 2 // Object.is equality\n\n- Expected\n+ Received\n\n- 2\n+ 1\n\n    at /repo/specs/b.spec.ts:7:15\n    at processTicksAndRejections (node:internal)';

/** A report as vitest 4's JSON reporter writes it (the fields read, and a few more). */
const REPORT: VitestReport = {
  testResults: [
    {
      name: '/repo/specs/b.spec.ts',
      status: 'failed',
      message: '',
      startTime: 1_000,
      endTime: 3_500,
      assertionResults: [
        { fullName: 'b adds', status: 'passed', failureMessages: [] },
        { fullName: 'b subtracts', status: 'failed', failureMessages: [`\x1b[31m${STACK}\x1b[39m`] },
        { fullName: 'b later', status: 'skipped', failureMessages: [] },
        { fullName: 'b someday', status: 'todo', failureMessages: [] },
      ],
    },
    { name: '/repo/specs/a.spec.ts', status: 'passed', message: '', startTime: 1_000, endTime: 1_120, assertionResults: [{ fullName: 'a works', status: 'passed', failureMessages: [] }] },
    // an import that failed: no tests, the error on the file
    { name: '/repo/specs/c.spec.ts', status: 'failed', message: "Cannot find module '../harness/gone.js'", startTime: 5, endTime: 5, assertionResults: [] },
  ],
};

describe('noisy: the per-file table', () => {
  it('counts each file, relative to the root, sorted, with its failures first lines', () => {
    const rows = fileRows(REPORT, '/repo');
    expect(rows.map((r) => [r.file, r.passed, r.failed, r.skipped, r.ms, r.ok])).toEqual([
      ['specs/a.spec.ts', 1, 0, 0, 120, true],
      ['specs/b.spec.ts', 1, 1, 2, 2500, false],
      ['specs/c.spec.ts', 0, 0, 0, 0, false],
    ]);
    expect(rows[1].failures).toEqual([['b subtracts', 'AssertionError: expected 1 to be 2 // Object.is equality', '- Expected', '+ Received']]);
    expect(rows[2].failures).toEqual([['(the file)', "Cannot find module '../harness/gone.js'"]]);
  });

  it('prints a row per file, the failures under theirs, and the totals', () => {
    const text = fileTable(fileRows(REPORT, '/repo'));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^file\s+passed\s+failed\s+skipped\s+duration$/);
    expect(lines[1]).toMatch(/^specs\/a\.spec\.ts\s+1\s+0\s+0\s+120 ms\s+ok$/);
    expect(lines[2]).toMatch(/^specs\/b\.spec\.ts\s+1\s+1\s+2\s+2\.5 s\s+FAILED$/);
    expect(lines[3]).toBe('    ✗ b subtracts');
    expect(lines[4]).toBe('        AssertionError: expected 1 to be 2 // Object.is equality');
    expect(text).toContain("    ✗ (the file)\n        Cannot find module '../harness/gone.js'");
    expect(lines.at(-1)).toBe('3 files, 2 failed; tests: 2 passed, 1 failed, 2 skipped');
  });

  it('keeps a message without a stack whole up to three lines, and a message that is only a stack to its first line', () => {
    expect(firstLines('one\ntwo\nthree\nfour')).toEqual(['one', 'two', 'three']);
    expect(firstLines('    at x (y.js:1:1)\n    at z')).toEqual(['    at x (y.js:1:1)']);
  });
});

describe('noisy: load', () => {
  it('reads /proc/loadavg: the 1-minute average and the runnable tasks', () => {
    expect(parseLoadavg('2.53 1.98 1.20 3/181 12345\n', 500)).toEqual({ atMs: 500, one: 2.53, runnable: 3 });
  });

  it('min, median, max (and when), and the peak of runnable tasks', () => {
    const s = loadStats([
      { atMs: 0, one: 0.5, runnable: 2 },
      { atMs: 5000, one: 2.5, runnable: 6 },
      { atMs: 10000, one: 3.75, runnable: 4 },
      { atMs: 15000, one: 1.5, runnable: 3 },
    ]);
    expect(s).toEqual({ samples: 4, min: 0.5, median: 2, max: 3.75, maxAtMs: 10000, peakRunnable: 6 });
    expect(loadStats([{ atMs: 0, one: 1, runnable: 1 }, { atMs: 1, one: 3, runnable: 1 }, { atMs: 2, one: 2, runnable: 1 }])?.median).toBe(2);
    expect(loadStats([])).toBeUndefined();
  });
});

describe('noisy: the commands output', () => {
  it("finds vitest's Duration", () => {
    const log = ' Test Files  2 passed (2)\n      Tests  9 passed (9)\n   Start at  17:40:01\n   Duration  3.21s (transform 120ms, setup 0ms, import 400ms, tests 1.2s)\n';
    expect(vitestDuration(log)).toBe('3.21s (transform 120ms, setup 0ms, import 400ms, tests 1.2s)');
    expect(vitestDuration('nothing here')).toBeUndefined();
  });

  it("finds the suite's summary and the scenarios that did not pass", () => {
    const log = [
      'netconform: 2 scenarios on reference',
      '[1/2] \x1b[32m✓\x1b[0m BR-01 [reference] 3 passed 4 probes, 120 ms',
      '[2/2] \x1b[31m✗\x1b[0m EG-01 [reference] 1 passed, 1 failed 2 probes, 90 ms',
      '',
      '4 passed, 1 failed, 0 skipped',
      '2 scenario runs (1 not passing), 5 cases, 6 probes in 1.20 s',
      'reports/junit.xml',
    ].join('\n');
    expect(suiteSummary(log)).toEqual({
      summary: ['4 passed, 1 failed, 0 skipped', '2 scenario runs (1 not passing), 5 cases, 6 probes in 1.20 s'],
      notPassing: ['[2/2] ✗ EG-01 [reference] 1 passed, 1 failed 2 probes, 90 ms'],
    });
  });
});
