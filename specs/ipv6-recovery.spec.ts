// IPv6 and recovery (issue 17): the pieces on their own (IPv6 arithmetic, the -p forms, the
// loader's IPv6 and recovery keys, advisories in JUnit and SARIF), and on real labs the proof
// that each capability can fail: remove the ip6tables DNAT and V6-03's case fails; skip the
// engine's rule restore after a firewall reload and SC-07's case fails; delete 28's raw drop
// after the reload and SC-06's case fails.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { bigToIp6, ip6ToBig, network6Of } from '../harness/util/ipv6.js';
import { AddressPool6 } from '../harness/engine/reference/ipam6.js';
import { parsePublish } from '../harness/scenario/publish.js';
import { loadScenarioText, loadScenarios } from '../harness/scenario/load.js';
import { errorsOf } from './support/scenario-errors.js';
import { explain } from './support/cases.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { resolveForTarget } from '../harness/scenario/per-target.js';
import { parseTarget } from '../harness/targets.js';
import { buildJunit } from '../harness/report/junit.js';
import type { ScenarioResult } from '../harness/report/results.js';
import type { Scenario, Step } from '../harness/scenario/types.js';

const isRoot = process.getuid?.() === 0;
const { scenarios } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);
const byId = (id: string) => scenarios.find((s) => s.id === id)!;


async function runOn(sc: Scenario, target: string): Promise<ScenarioResult> {
  return runScenario(resolveForTarget(sc, parseTarget(target)), { engineName: target, makeEngine: engineFactory(target), environment: { kernel: 'test' } });
}

/** The scenario with `extra` steps appended to phase `phase` (and nothing after it). */
function withSteps(sc: Scenario, phase: number, extra: Omit<Step, 'loc'>[]): Scenario {
  const phases = sc.phases.slice(0, phase + 1).map((p, i) => (i === phase ? { ...p, steps: [...p.steps, ...extra.map((s) => ({ ...s, loc: sc.loc }) as Step)] } : p));
  return { ...sc, phases, expect: sc.expect.filter((e) => e.phase <= phase) };
}

const caseAt = (r: ScenarioResult, sc: Scenario, line: number) => r.cases.find((c) => c.loc.line === line && c.loc.file === sc.file)!;

describe('IPv6 arithmetic and forms', () => {
  it('reads and writes IPv6 in its shortest form', () => {
    expect(bigToIp6(ip6ToBig('fd00:20:0:0:0:0:0:1'))).toBe('fd00:20::1');
    expect(bigToIp6(ip6ToBig('2001:db8::1:0:0:1'))).toBe('2001:db8::1:0:0:1');
    expect(bigToIp6(0n)).toBe('::');
    expect(network6Of('fd00:20::5/64')).toBe('fd00:20::/64');
  });

  it('gives the gateway the first address and containers the next ones', () => {
    const pool = new AddressPool6('fd00:20::/64');
    expect(pool.gateway).toBe('fd00:20::1');
    expect([pool.allocate(), pool.allocate()]).toEqual(['fd00:20::2', 'fd00:20::3']);
  });

  it('reads an IPv6 host address in brackets in -p', () => {
    expect(parsePublish('[::1]:8080:80')[0]).toMatchObject({ hostIp: '::1', hostPort: 8080, containerPort: 80, proto: 'tcp' });
    expect(parsePublish('[2001:db8:1::1]::80/udp')[0]).toMatchObject({ hostIp: '2001:db8:1::1', hostPort: undefined, proto: 'udp' });
    expect(() => parsePublish('::1:8080:80')).toThrow(/not a -p form/);
  });
});

describe('loader: IPv6 and recovery keys', () => {
  const dual = `id: v6
title: t
covers: [V6-01, SC-07]
ipv6: true
networks:
  n6: { subnet: 10.1.0.0/24, subnet6: "fd00:1::/64" }
containers:
  app: { network: n6, listen: [tcp/80] }
expect:
  - id: V6-01
    reach: { from: app, to: ipv6:wan, proto: tcp, port: 9000 }
    result: connected
    seen-source: ipv6:host
then:
  - steps: [{ reload-firewall: true }, { flush-rules: true }, { restart-daemon: true }, { ip6tables: "-L" }]
    expect:
      - id: SC-07
        rules: { ipv6: true, table: nat, chain: POSTROUTING, exists: true }
`;

  it('gives a dual-stack lab its IPv6 plan, and reads the steps and ip6tables checks', () => {
    const sc = loadScenarioText(dual, 'x.yaml');
    expect(sc.ipv6).toBe(true);
    expect(sc.hosts[0].address6).toBe('2001:db8:1::1/64');
    expect(sc.lan).toMatchObject({ subnet6: '2001:db8:1::/64', router6: '2001:db8:1::fe' });
    expect(sc.wan.servers6).toEqual(['2001:db8:100::7']);
    expect(sc.hosts[0].networks[0]).toMatchObject({ ipv6: true, subnet6: 'fd00:1::/64' });
    expect(sc.phases[1].steps.map((s) => s.kind)).toEqual(['reload-firewall', 'flush-rules', 'restart-daemon', 'ip6tables']);
    expect(sc.expect[1]).toMatchObject({ kind: 'rules', ipv6: true });
  });

  it('refuses IPv6 endpoints and routes outside a dual-stack lab, and ipv6 without its subnet', () => {
    const errs = errorsOf(dual.replace('ipv6: true\n', ''));
    expect(errs.join('\n')).toMatch(/ipv6:wan: an IPv6 endpoint needs a dual-stack lab \(ipv6: true at the top\)/);
    expect(errorsOf(dual.replace('networks:', 'daemon: { ipv6: true }\nnetworks:')).join('\n')).toMatch(/ipv6 on the default bridge needs its IPv6 subnet: add fixed-cidr-v6/);
  });
});

describe('advisories on findings and failures', () => {
  it('JUnit names the advisory of a finding; a failure of SC-07 names the catalogue\'s', () => {
    const sc = byId('recovery-network-isolation');
    const finding = sc.expect.find((e) => e.advisories)!;
    expect(finding.advisories).toEqual(['CVE-2025-54410', 'GHSA-4vq8-7jfc-9cvp']);
    const result: ScenarioResult = {
      scenarioId: sc.id, title: sc.title, file: sc.file, engine: 'reference', engineDescription: 'reference docker-20.10',
      cases: [
        { id: 'SC-07', name: 'SC-07 finding', kind: 'reach', status: 'passed', loc: finding.loc, timeMs: 1, expectIndex: 0, finding: 'open', advisories: finding.advisories },
      ],
      ruleDump: '', transcript: [], timeMs: 1, properties: {}, probes: 1,
    } as unknown as ScenarioResult;
    expect(buildJunit([result])).toMatch(/<property name="advisory" value="CVE-2025-54410 GHSA-4vq8-7jfc-9cvp"\/>/);
  });
});

describe.skipIf(!isRoot)('negative checks on real labs', () => {
  it('V6-03: removing the ip6tables DNAT of the published port fails the case (docker-28)', async () => {
    const sc = byId('ipv6-publish');
    const e = sc.expect.find((x) => x.kind === 'reach' && x.loc.line && x.name?.startsWith('the IPv6 container'))!;
    const ok = await runOn(sc, 'reference:docker-28');
    expect(caseAt(ok, sc, e.loc.line).status, explain(ok)).toBe('passed');
    // the administrator deletes the DNAT before the probes (a phase 0 step)
    const broken: Scenario = { ...sc, phases: [{ ...sc.phases[0], steps: [{ kind: 'ip6tables', host: 'host', args: '-t nat -F DOCKER', loc: sc.loc }] }] };
    const r = await runOn(broken, 'reference:docker-28');
    const c = caseAt(r, sc, e.loc.line);
    expect(c.status, explain(r)).toBe('failed');
    // docker-proxy on [::] still answers: the container sees the proxy, not the client
    expect(c.message).toMatch(/the listener saw source fd00:23::1 .*expected 2001:db8:1::10/);
  });

  it('SC-07: a firewall reload the engine does not answer (no rule restore) fails the case (docker-28)', async () => {
    const sc = byId('recovery-network-isolation');
    const reloadPhase = sc.phases.findIndex((p) => p.steps.some((s) => s.kind === 'reload-firewall'));
    const e = sc.expect.find((x) => x.phase === reloadPhase && x.kind === 'reach')!;
    const ok = await runOn(sc, 'reference:docker-28');
    expect(caseAt(ok, sc, e.loc.line).status, explain(ok)).toBe('passed');
    // the same flush as the reload, but the engine never hears of it (flush-rules)
    const phases = sc.phases.map((p, i) => (i === reloadPhase ? { ...p, steps: p.steps.map((s) => (s.kind === 'reload-firewall' ? { ...s, kind: 'flush-rules' as const } : s)) } : p));
    const r = await runOn({ ...sc, phases }, 'reference:docker-28');
    const c = caseAt(r, sc, e.loc.line);
    expect(c.status, explain(r)).toBe('failed');
    expect(c.message).toMatch(/expected timeout, got connected/);
    expect(c.advisories).toEqual(['CVE-2025-54410', 'GHSA-4vq8-7jfc-9cvp']);
  });

  it('SC-06: without the raw PREROUTING drop after the reload (28.2.0 … 28.3.2) the case fails (docker-28)', async () => {
    const sc = byId('recovery-loopback-publish');
    const reloadPhase = sc.phases.findIndex((p) => p.steps.some((s) => s.kind === 'reload-firewall'));
    const e = sc.expect.find((x) => x.phase === reloadPhase && x.kind === 'reach')!;
    const broken = withSteps(sc, reloadPhase, [{ kind: 'iptables', host: 'host', args: '-t raw -D PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP' }]);
    const r = await runOn(broken, 'reference:docker-28');
    const c = caseAt(r, sc, e.loc.line);
    expect(c.status, explain(r)).toBe('failed');
    expect(c.message).toMatch(/expected timeout, got connected/);
    expect(c.advisories).toEqual(['CVE-2025-54388', 'GHSA-x4rx-4gw3-53p4']);
  });
});
