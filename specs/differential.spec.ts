// Differential conformance: every scenario of scenarios/ on the reference engine and on a real
// dockerd. Each must pass on the real engine, and the two engines must agree on packet
// verdicts, normalized rule sets and addresses. The README's test command installs docker.io,
// so a missing dockerd is a failure here, not a skip.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarios } from '../harness/scenario/load.js';
import { detectCapabilities, missingFeatures } from '../harness/lab/capabilities.js';
import { dockerPool } from '../harness/engine/docker/pool.js';
import { fingerprintStartingNamespace } from './support/fingerprint.js';
import { expectMachineClean, runBoth, runOn, specTargets, type Differential } from './support/engines.js';
import { expectAllPassed } from './support/cases.js';
import { compareRuns } from '../harness/compare/differential.js';
import { buildJunit } from '../harness/report/junit.js';
import type { Scenario } from '../harness/scenario/types.js';

const isRoot = process.getuid?.() === 0;
const { scenarios } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);

describe.skipIf(!isRoot)('differential conformance: reference vs dockerd', () => {
  let before = '';
  let missing = new Map<string, string>();

  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
    missing = missingFeatures(await detectCapabilities());
    await dockerPool((await specTargets()).docker).install(); // fails with what to install when there is no dockerd
  });

  // The scenarios run two at a time, each on both engines at once (four labs, as a CLI run
  // has): a scenario's cases wait on probes and daemons far more than on the CPU. Started by
  // the first scenario's hook, in order; each scenario's hook waits for its own.
  const pending = new Map(scenarios.map((sc) => [sc.id, deferred<Differential>()]));
  let started = false;
  const startAll = () => {
    if (started) return;
    started = true;
    const queue = [...scenarios];
    const lane = async () => {
      for (let sc = queue.shift(); sc; sc = queue.shift()) {
        const slot = pending.get(sc.id)!;
        await runBoth(sc, missing).then(slot.resolve, slot.reject);
      }
    };
    for (let i = 0; i < 2; i++) void lane();
  };

  for (const sc of scenarios) {
    describe(`${sc.id} (${sc.covers.join(' ')})`, () => {
      let d: Differential;
      // no limit of its own: a scenario waits for those before it (each run has its own limits)
      beforeAll(async () => {
        startAll();
        d = await pending.get(sc.id)!.promise;
      });

      it('passes on the real engine', () => {
        expectAllPassed(d.docker);
      });

      it('reference and docker agree (verdicts, rule sets, addresses)', (ctx) => {
        // both skipped (a kernel feature this host lacks; specs/microvm.spec.ts runs VL-01 on both in the guest): nothing to compare
        const notCompared = d.comparison.cases.find((c) => c.status === 'skipped');
        if (notCompared) ctx.skip(notCompared.message);
        expectAllPassed(d.comparison);
        expect(d.comparison.cases.length).toBeGreaterThanOrEqual(3);
      });
    });
  }

  it('a disagreement fails, naming the engines, the chain and a diff (one engine loses its MASQUERADE)', async () => {
    const base = scenarios.find((s) => s.id === 'egress-masquerade')!;
    // the docker lab's administrator deletes the engine's MASQUERADE rule before the probes
    const broken: Scenario = {
      ...base,
      phases: [{ steps: [{ kind: 'iptables', host: 'host', args: '-t nat -D POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE', loc: base.loc }], loc: base.loc }],
      expect: base.expect.map((e) => ({ ...e, phase: 0 })),
    };
    const reference = await runOn('reference', base, missing);
    const docker = await runOn('docker', broken, missing);
    const [a, b] = [reference.engine, docker.engine]; // reference:docker-20.10 and docker (or the NETCONFORM_DOCKERD build's)
    const c = compareRuns(base, reference, docker);
    const rules = c.cases.find((x) => x.name.endsWith(': rule sets agree'))!;
    expect(rules.status).toBe('failed');
    expect(rules.message).toBe(`${a} and ${b} disagree in nat/POSTROUTING`);
    expect(rules.diff).toContain(`--- ${a} nat/POSTROUTING`);
    expect(rules.diff).toContain(`+++ ${b} nat/POSTROUTING`);
    expect(rules.diff).toMatch(/^--A POSTROUTING -s \$\{subnet:bridge\} ! -o \$\{bridge:bridge\} -j MASQUERADE$/m);
    const verdicts = c.cases.find((x) => x.name.includes('verdicts'))!;
    expect(verdicts.status).toBe('failed');
    expect(verdicts.message).toMatch(/masquerade\.yaml:\d+ EG-01 .*\[web → wan tcp\/9000\]: \S+ connected, seen 203\.0\.113\.1; \S+ timeout/);
    expect(verdicts.message).toContain(`${a} connected, seen 203.0.113.1; ${b} timeout`);
    // and the JUnit report carries it as a failure of the comparison suite
    const xml = buildJunit([reference, docker, c]);
    expect(xml).toMatch(new RegExp(`<testsuite name="egress-masquerade \\[${a}-vs-${b}\\]"[^>]*failures="[1-9]`));
    expect(xml).toContain(`${a} and ${b} disagree in nat/POSTROUTING`);
  });

  afterAll(() => expectMachineClean(before));
});

function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  promise.catch(() => {}); // reported by the scenario's hook that awaits it
  return { promise, resolve, reject };
}

describe.skipIf(isRoot)('differential conformance without root', () => {
  it.skip('needs root: labs are network namespaces', () => {});
});
