// Differential conformance: every scenario of scenarios/ on the reference engine and on a real
// dockerd. Each must pass on the real engine, and the two engines must agree on packet
// verdicts, normalized rule sets and addresses. The README's test command installs docker.io,
// so a missing dockerd is a failure here, not a skip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarios } from '../harness/scenario/load.js';
import { detectCapabilities, missingFeatures } from '../harness/lab/capabilities.js';
import { dockerPool, shutdownDockerPool } from '../harness/engine/docker/pool.js';
import { fingerprintStartingNamespace, labNamespaces } from './support/fingerprint.js';
import { daemonMounts, daemonProcesses, daemonStateDirs, explain, runBoth, type Differential } from './support/engines.js';

const isRoot = process.getuid?.() === 0;
const { scenarios } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);

describe.skipIf(!isRoot)('differential conformance: reference vs dockerd', () => {
  let before = '';
  let missing = new Map<string, string>();

  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
    missing = missingFeatures(await detectCapabilities());
    await dockerPool().install(); // fails with what to install when there is no dockerd
  });

  for (const sc of scenarios) {
    describe(`${sc.id} (${sc.covers.join(' ')})`, () => {
      let d: Differential;
      beforeAll(async () => {
        d = await runBoth(sc, missing);
      }, 120_000);

      it('passes on the real engine', () => {
        expect(d.docker.cases.filter((c) => c.status === 'failed' || c.status === 'error'), explain(d.docker)).toEqual([]);
      });

      it('reference and docker agree (verdicts, rule sets, addresses)', () => {
        const bad = d.comparison.cases.filter((c) => c.status !== 'passed' && c.status !== 'skipped');
        expect(bad, explain(d.comparison)).toEqual([]);
        expect(d.comparison.cases.length).toBeGreaterThanOrEqual(3);
      });
    });
  }

  afterAll(async () => {
    await shutdownDockerPool();
    expect(daemonProcesses()).toEqual([]);
    expect(daemonStateDirs()).toEqual([]);
    expect(daemonMounts()).toEqual([]);
    expect(await labNamespaces()).toEqual([]);
    expect(await fingerprintStartingNamespace()).toBe(before);
  }, 60_000);
});

describe.skipIf(isRoot)('differential conformance without root', () => {
  it.skip('needs root: labs are network namespaces', () => {});
});
