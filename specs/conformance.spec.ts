// The conformance suite as vitest cases: every scenario of scenarios/ on the reference engine,
// one test per expectation. Plus proof that the assertions can fail (the same scenarios with
// one engine rule deleted), and that the starting namespace is left exactly as it was.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarios } from '../harness/scenario/load.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory, runSuite } from '../harness/run/suite.js';
import { detectCapabilities, missingFeatures } from '../harness/lab/capabilities.js';
import type { ScenarioResult } from '../harness/report/results.js';
import type { Expectation, Scenario } from '../harness/scenario/types.js';
import { fingerprintStartingNamespace, labNamespaces } from './support/fingerprint.js';
import { defineExpectationCases } from './support/profile-conformance.js';

const isRoot = process.getuid?.() === 0;
const { scenarios, errors } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);

let before = '';
let missing = new Map<string, string>();
const environment = { kernel: 'test' };

async function runOn(sc: Scenario): Promise<ScenarioResult> {
  return runScenario(sc, { engineName: 'reference', makeEngine: engineFactory('reference'), missing, environment });
}

/** The scenario again, with administrator deletions of engine rules before every expectation. */
function withDeletedRules(sc: Scenario, deletions: string[], keep: (e: Expectation) => boolean): Scenario {
  const loc = sc.loc;
  const expect = sc.expect.filter(keep).map((e) => ({ ...e, phase: 0 }));
  return { ...sc, phases: [{ steps: deletions.map((args) => ({ kind: 'iptables' as const, host: 'host', args, loc })), loc }], expect };
}

/** every scenario's result, from one suite run with several labs at once (as `netconform run` does) */
const results = new Map<Scenario, ScenarioResult>();

describe.skipIf(!isRoot)('conformance (reference engine)', () => {
  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
    missing = missingFeatures(await detectCapabilities());
    const all = await runSuite(scenarios, { engines: ['reference'], jobs: 4 });
    for (const [i, sc] of scenarios.entries()) results.set(sc, all[i]);
  });

  it('every scenario file is valid', () => {
    expect(errors).toEqual([]);
    expect(scenarios.length).toBeGreaterThan(0);
  });

  defineExpectationCases(scenarios, 'docker-20.10', results);

  it('reports the exposures it confirms as compliance findings (SC-01 on 20.10, SC-04 everywhere)', () => {
    const findings = (id: string) => results.get(scenarios.find((s) => s.id === id)!)!.cases.filter((c) => c.finding);
    expect(findings('security-loopback-publish').map((c) => c.finding)).toEqual(['a port published on 127.0.0.1 is reachable from the LAN']);
    expect(findings('security-iptables-false').length).toBe(3);
    expect(findings('default-bridge')).toEqual([]);
  });

  describe('assertions fail when the engine rule behind them is gone', () => {
    const byId = (id: string) => scenarios.find((s) => s.id === id)!;

    it('EG-01 fails with the MASQUERADE rule deleted', async () => {
      const sc = withDeletedRules(byId('egress-masquerade'), ['-t nat -D POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE'], () => true);
      const r = await runOn(sc);
      const failed = r.cases.filter((c) => c.status === 'failed');
      expect(failed.map((c) => c.id)).toContain('EG-01');
      const rules = failed.find((c) => c.kind === 'rules')!;
      expect(rules.diff).toMatch(/^-.*-s 172\.17\.0\.0\/16 ! -o docker0 -j MASQUERADE/m);
      const probe = failed.find((c) => c.kind === 'reach' && c.reach?.proto === 'udp')!;
      expect(probe.message).toMatch(/saw source 172\.17\.0\.2/);
    });

    it('BR-04 fails with a diff when a FORWARD rule is deleted', async () => {
      const sc = withDeletedRules(byId('default-bridge'), ['-D FORWARD -o docker0 -j DOCKER'], (e) => e.kind === 'rules' && e.id === 'BR-04');
      const r = await runOn(sc);
      const c = r.cases.find((x) => x.status === 'failed' && x.id === 'BR-04')!;
      expect(c.diff).toMatch(/^-\s*-A FORWARD -o docker0 -j DOCKER/m);
    });

    it('IN-01 fails when the DNAT rule is deleted', async () => {
      const sc = withDeletedRules(byId('ingress-publish-forms'), ['-t nat -F DOCKER'], (e) => e.id === 'IN-01');
      const r = await runOn(sc);
      // The userland proxy still answers on the host port, but it connects from the bridge
      // address: the listener no longer sees the outside client, and the case says so.
      const probe = r.cases.find((c) => c.kind === 'reach')!;
      expect(probe.status).toBe('failed');
      expect(probe.message).toMatch(/saw source 172\.17\.0\.1 \(host@bridge\), expected 198\.51\.100\.7/);
      expect(r.cases.filter((c) => c.kind === 'rules' && c.status === 'failed').length).toBeGreaterThan(0);
    });

    it('LK-02 fails when the link\'s ACCEPT rules are removed', async () => {
      const sc = withDeletedRules(byId('links-legacy'), ['-F DOCKER'], (e) => e.id === 'LK-02' && e.phase === 0);
      const r = await runOn(sc);
      const probe = r.cases.find((c) => c.kind === 'reach' && c.reach?.from === 'web' && c.reach.port === 5432)!;
      expect(probe.status).toBe('failed');
      expect(probe.message).toMatch(/expected connected, got timeout/);
      const rules = r.cases.find((c) => c.kind === 'rules')!;
      expect(rules.status).toBe('failed');
      expect(rules.diff).toMatch(/^--A DOCKER -s 172\.17\.0\.\d+\/32 -d 172\.17\.0\.\d+\/32 -i docker0 -o docker0 -p tcp -m tcp --dport 5432 -j ACCEPT$/m);
    });

    it('UN-02 fails when the isolation chains are flushed', async () => {
      const sc = withDeletedRules(byId('networks-user-defined'), ['-F DOCKER-ISOLATION-STAGE-1', '-F DOCKER-ISOLATION-STAGE-2'], (e) => e.id === 'UN-02' && e.phase === 0 && (!e.profiles || e.profiles.includes('docker-20.10')));
      const r = await runOn(sc);
      const probes = r.cases.filter((c) => c.kind === 'reach');
      expect(probes.length).toBeGreaterThan(0);
      expect(probes.every((c) => c.status === 'failed' && c.reach?.actual === 'connected')).toBe(true);
      expect(r.cases.filter((c) => c.kind === 'rules').every((c) => c.status === 'failed' && c.diff)).toBe(true);
    });

    it('IN-08 fails when a neighbour gets a route and the FORWARD policy is opened', async () => {
      const base = byId('ingress-publish-forms');
      const sc = withDeletedRules({ ...base, wan: { ...base.wan, routeToContainers: true } }, ['-P FORWARD ACCEPT'], (e) => e.id === 'IN-08' && e.kind === 'reach');
      const r = await runOn(sc);
      expect(r.cases.some((c) => c.status === 'failed')).toBe(true);
    });
  });

  afterAll(async () => {
    expect(await labNamespaces()).toEqual([]);
    expect(await fingerprintStartingNamespace()).toBe(before);
  });
});

describe.skipIf(isRoot)('conformance without root', () => {
  it.skip('needs root: labs are network namespaces', () => {});
});
