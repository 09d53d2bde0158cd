import { relative } from 'node:path';
import { defineConfig } from 'vitest/config';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The spec files that take longest, started first (npm test on this project's 2-core machine:
 * microvm 128 s, differential 75, engine-matrix 32, docker-engine 24, each conformance 16-21,
 * shard 15, upgrade-diff 14). A fresh clone has no timings of its own and vitest would start the
 * largest files first, leaving long runs that are small files (the differential) for the end.
 */
const LONGEST = ['microvm', 'differential', 'engine-matrix', 'docker-engine', 'conformance-docker-26', 'conformance-docker-28', 'conformance-docker-29', 'conformance-docker-29-nftables', 'conformance', 'shard', 'upgrade-diff'];

class LongestFirst extends BaseSequencer {
  async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const rank = (f: TestSpecification) => {
      const i = LONGEST.indexOf(relative('specs', f.moduleId).replace(/^.*\//, '').replace(/\.spec\.ts$/, ''));
      return i < 0 ? LONGEST.length : i;
    };
    const sorted = await super.sort(files);
    return sorted.map((f, i) => ({ f, i })).sort((a, b) => rank(a.f) - rank(b.f) || a.i - b.i).map(({ f }) => f);
  }
}

export default defineConfig({
  test: {
    include: ['specs/**/*.spec.ts'],
    // No spec sets a wall-clock limit of its own: fixed ones are what a busy machine broke. The
    // harness's hang guards (10 minutes, printing the load when they trip; a silent guest: 5)
    // end what hangs; vitest's limit is the backstop behind them, far above the slowest hook
    // beside stress-ng (the microVM's, a few minutes).
    testTimeout: 1_800_000,
    hookTimeout: 1_800_000,
    // Lab specs wait on packets, daemons and guests more than they compute: three workers keep a
    // 2-core machine busy (two left it idle a third of the time: 239 s against 211 s).
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
    reporters: ['default'],
  },
});
