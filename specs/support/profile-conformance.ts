// Every scenario of scenarios/ under one of the reference engine's newer profiles (docker-20.10
// runs in conformance.spec.ts), one test per expectation; expectations the run leaves out
// (stated for other profiles, or checks of iptables under an nftables profile) are no tests
// here. Plus proof that the layout's assertions can fail (per rule backend), and that a run
// names its profile in JUnit. One spec file per profile, so vitest's workers run them side by
// side.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarios } from '../../harness/scenario/load.js';
import { runScenario } from '../../harness/run/runner.js';
import { engineFactory, runSuite } from '../../harness/run/suite.js';
import { detectCapabilities, missingFeatures } from '../../harness/lab/capabilities.js';
import { buildJunit } from '../../harness/report/junit.js';
import type { ScenarioResult } from '../../harness/report/results.js';
import type { Expectation, Scenario, Step } from '../../harness/scenario/types.js';
import { resolveForTarget } from '../../harness/scenario/per-target.js';
import { firewallBackend, parseTarget } from '../../harness/targets.js';
import { fingerprintStartingNamespace, labNamespaces } from './fingerprint.js';

const isRoot = process.getuid?.() === 0;
const { scenarios } = loadScenarios([join(import.meta.dirname, '..', '..', 'scenarios')]);
const byId = (id: string) => scenarios.find((s) => s.id === id)!;

let missing = new Map<string, string>();

function runOn(sc: Scenario, engine: string): Promise<ScenarioResult> {
  return runScenario(sc, { engineName: engine, makeEngine: engineFactory(engine), missing, environment: { kernel: 'test' } });
}

/** The scenario again, with administrator iptables (or nft) commands before the kept expectations. */
function withSteps(sc: Scenario, commands: string[], keep: (e: Expectation) => boolean, kind: 'iptables' | 'nft' = 'iptables'): Scenario {
  const loc = sc.loc;
  const expect = sc.expect.filter(keep).map((e) => ({ ...e, phase: 0 }));
  return { ...sc, phases: [{ steps: commands.map((args): Step => ({ kind, host: 'host', args, loc })), loc }], expect };
}

/**
 * A test per expectation of every scenario, read from the results of one suite run under a
 * profile (filled by the caller's beforeAll); a case skipped by the run is skipped, with its
 * reason, and expectations stated for other profiles are no tests.
 */
export function defineExpectationCases(scenarios: Scenario[], profile: string, results: Map<Scenario, ScenarioResult>): void {
  const target = parseTarget(`reference:${profile}`);
  for (const sc of scenarios) {
    const resolved = resolveForTarget(sc, target).expect;
    describe(`${sc.id} (${sc.covers.join(' ')})`, () => {
      for (const [i, e] of sc.expect.entries()) {
        if (resolved[i].notFor) continue;
        it(`${e.id} ${e.kind} at line ${e.loc.line}`, (ctx) => {
          const result = results.get(sc)!;
          const c = result.cases.find((x) => x.expectIndex === i)!;
          if (c.status === 'skipped') ctx.skip(c.message);
          expect(c.status, `${c.name}\n${c.message ?? ''}\n${c.diff ?? ''}\n${result.transcript.join('\n')}`).toBe('passed');
        });
      }
    });
  }
}

export function defineProfileConformance(profile: string): void {
  const engine = `reference:${profile}`;

  describe.skipIf(!isRoot)(`conformance under ${engine}`, () => {
    let before = '';
    const results = new Map<Scenario, ScenarioResult>();
    beforeAll(async () => {
      before = await fingerprintStartingNamespace();
      missing = missingFeatures(await detectCapabilities());
      // the catalogue as one suite, several labs at once (as conformance.spec.ts does)
      const all = await runSuite(scenarios, { engines: [engine], jobs: 4 });
      for (const [i, sc] of scenarios.entries()) results.set(sc, all[i]);
    });

    defineExpectationCases(scenarios, profile, results);

    if (firewallBackend(profile) === 'nftables') nftablesNegatives(engine);
    else iptablesNegatives(profile, engine);

    it('JUnit names the profile: suites, classnames and properties', async () => {
      const xml = buildJunit([await runOn(byId('egress-masquerade'), engine)]);
      expect(xml).toContain(`<testsuite name="egress-masquerade [${engine}]"`);
      expect(xml).toContain(`classname="${engine}.egress-masquerade"`);
      expect(xml).toContain(`<property name="profile" value="${profile}"/>`);
      expect(xml).toContain(`<property name="engine" value="reference ${profile}"/>`);
    });

    afterAll(async () => {
      expect(await labNamespaces()).toEqual([]);
      expect(await fingerprintStartingNamespace()).toBe(before);
    });
  });

  describe.skipIf(isRoot)(`conformance under ${engine} without root`, () => {
    it.skip('needs root: labs are network namespaces', () => {});
  });
}

/** The iptables layouts (28, 29): delete a rule, watch the case fail. */
function iptablesNegatives(profile: string, engine: string): void {
    describe('assertions fail when the rule behind them is gone', () => {
      it('BR-04 fails with a diff when DOCKER-FORWARD loses its jump to DOCKER-BRIDGE', async () => {
        const keep = (e: Expectation) => e.kind === 'rules' && e.id === 'BR-04' && e.profiles?.includes(profile) === true;
        const r = await runOn(withSteps(byId('default-bridge'), ['-D DOCKER-FORWARD -j DOCKER-BRIDGE'], keep), engine);
        const c = r.cases.find((x) => x.status === 'failed' && x.diff?.includes('DOCKER-FORWARD'));
        expect(c?.diff).toMatch(/^-\s*-A DOCKER-FORWARD -j DOCKER-BRIDGE$/m);
      });

      it('IN-08 fails when a neighbour’s direct packets are no longer dropped', async () => {
        // both defences of 28.0.2+: the raw direct-access DROP and the bridge's DROP in DOCKER
        const commands = ['-P FORWARD ACCEPT', '-t raw -D PREROUTING -d 172.17.0.2/32 ! -i docker0 -j DROP', '-D DOCKER ! -i docker0 -o docker0 -j DROP'];
        const r = await runOn(withSteps(byId('ingress-direct-routing'), commands, (e) => e.kind === 'reach' && e.phase === 1), engine);
        const exposed = r.cases.filter((c) => c.status === 'failed' && c.reach?.to === 'web');
        expect(exposed.map((c) => c.reach!.actual)).toEqual(['connected', 'connected']);
        expect(exposed[0].message).toMatch(/expected timeout, got connected/);
      });

      it('SC-01 fails when 127.0.0.1 packets from the LAN are no longer dropped in raw', async () => {
        const commands = ['-t raw -D PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP'];
        const r = await runOn(withSteps(byId('security-loopback-publish'), commands, (e) => e.kind === 'reach' && e.from === 'laptop' && e.to === '127.0.0.1'), engine);
        expect(r.cases.map((c) => [c.status, c.reach?.actual])).toEqual([['failed', 'connected']]);
        expect(r.cases[0].message).toMatch(/expected timeout, got connected/);
      });

      it('UN-02 is decided in raw PREROUTING: without the raw DROPs the probe still times out, decided-by fails', async () => {
        const keep = (e: Expectation) => e.kind === 'reach' && e.from === 'web' && e.to === 'db' && e.phase === 0;
        const r = await runOn(withSteps(byId('networks-user-defined'), ['-t raw -F PREROUTING'], keep), engine);
        expect(r.cases.map((c) => [c.status, c.reach?.actual])).toEqual([['failed', 'timeout']]);
        // a later layer stops it now: 28's isolation chain, 29's DROP for the bridge in DOCKER
        expect(r.cases[0].message).toMatch(/timeout as expected, but decided by filter:(DOCKER-ISOLATION-STAGE-2|DOCKER) rule \d+ DROP \(.*-j DROP\), expected raw:PREROUTING DROP/);
        expect(r.cases[0].rulePath).not.toMatch(/raw:PREROUTING #/);
      });

      it('the raw direct-access DROP alone is a defence: without the DOCKER DROP ports stay closed', async () => {
        const commands = ['-P FORWARD ACCEPT', '-D DOCKER ! -i docker0 -o docker0 -j DROP'];
        const r = await runOn(withSteps(byId('ingress-direct-routing'), commands, (e) => e.kind === 'reach' && e.phase === 1), engine);
        expect(r.cases.map((c) => c.status)).toEqual(['passed', 'passed', 'passed']);
      });
    });
}

/** Docker 29's nftables layout: take a rule or an element out of its table (or the administrator's table away), watch the case fail. */
function nftablesNegatives(engine: string): void {
  describe('assertions fail when the rule behind them is gone', () => {
    it('NF-01 fails with a diff when a verdict map loses a bridge', async () => {
      const keep = (e: Expectation) => e.kind === 'rules' && e.set === 'filter-forward-in-jumps';
      const r = await runOn(withSteps(byId('nftables-tables'), ['delete element ip docker-bridges filter-forward-in-jumps { docker0 }'], keep, 'nft'), engine);
      expect(r.cases.map((c) => c.status)).toEqual(['failed']);
      expect(r.cases[0].message).toBe('ip docker-bridges @filter-forward-in-jumps differs from the expected elements');
      expect(r.cases[0].diff).toMatch(/^-docker0 : jump filter-forward-in__docker0$/m);
    });

    it('SC-02 fails when raw-PREROUTING no longer drops direct access (the published port opens to the LAN)', async () => {
      const r = await runOn(withSteps(byId('ingress-direct-routing'), ['flush chain ip docker-bridges raw-PREROUTING'], (e) => e.kind === 'reach' && e.phase === 1, 'nft'), engine);
      const exposed = r.cases.filter((c) => c.status === 'failed' && c.reach!.actual === 'connected');
      expect(exposed.map((c) => `${c.reach!.to}:${c.reach!.port} ${c.reach!.actual}`)).toEqual(['web:80 connected']);
      // the unpublished port stays closed, by the bridge chain's UNPUBLISHED PORT DROP now: its
      // verdict holds and decided-by (raw-PREROUTING) fails
      const moved = r.cases.find((c) => c.reach!.port === 81)!;
      expect([moved.status, moved.reach!.actual]).toEqual(['failed', 'timeout']);
      expect(moved.message).toMatch(
        /timeout as expected, but decided by docker-bridges:filter-forward-in__docker0 rule \d+ DROP \(counter drop comment "UNPUBLISHED PORT DROP"\), expected docker-bridges:raw-PREROUTING DROP/,
      );
      expect(moved.rulePath).not.toMatch(/raw-PREROUTING #/);
    });

    it('NF-02 fails without the administrator\'s table: the blocked source gets through', async () => {
      const keep = (e: Expectation) => e.kind === 'reach' && e.phase === 1 && e.id === 'FW-01';
      const r = await runOn(withSteps(byId('nftables-admin-table'), ['add table inet admin'], keep, 'nft'), engine);
      expect(r.cases.map((c) => `${c.status} ${c.reach!.actual}`)).toEqual(['failed connected', 'passed connected']);
    });

    it("FW-01 is decided in the administrator's table: the same DROP in another table keeps the verdict and fails decided-by", async () => {
      const keep = (e: Expectation) => e.kind === 'reach' && e.phase === 1 && e.id === 'FW-01';
      const elsewhere = ['add table inet other', 'add chain inet other forward "{ type filter hook forward priority filter - 1; policy accept; }"', 'add rule inet other forward iifname eth0 ip saddr 198.51.100.8 counter drop'];
      const r = await runOn(withSteps(byId('nftables-admin-table'), elsewhere, keep, 'nft'), engine);
      expect(r.cases.map((c) => `${c.status} ${c.reach!.actual}`)).toEqual(['failed timeout', 'passed connected']);
      expect(r.cases[0].message).toMatch(/timeout as expected, but decided by other:forward rule 1 DROP \(iifname "eth0" ip saddr 198\.51\.100\.8 counter drop\), expected admin:forward DROP/);
    });
  });
}
