// Targets (engine + profile) and expectations that differ by profile: parsing, the loader's
// located errors, and how a run resolves a scenario for its target.
import { describe, expect, it } from 'vitest';
import { ScenarioError, loadScenarioText } from '../harness/scenario/load.js';
import { resolveForTarget } from '../harness/scenario/per-target.js';
import { PROFILES, expandTargets, parseTarget } from '../harness/targets.js';
import type { ReachExpect } from '../harness/scenario/types.js';
import { createFirewall } from '../harness/engine/reference/firewall/registry.js';
import { buildJunit } from '../harness/report/junit.js';

const base = `id: sc-01-sketch
title: a port on 127.0.0.1 and a neighbour
covers: [IN-02]
containers:
  web: { publish: ["127.0.0.1:8080:80"], listen: [tcp/80] }
`;

function errorsOf(text: string): string[] {
  try {
    loadScenarioText(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.errors.map((d) => `${d.line}:${d.col} ${d.path}: ${d.message}`);
    throw e;
  }
  return [];
}

describe('targets', () => {
  it('reads engine and profile; reference alone is docker-20.10', () => {
    expect(parseTarget('reference')).toEqual({ engine: 'reference', profile: 'docker-20.10', label: 'reference:docker-20.10' });
    expect(parseTarget('reference:docker-29').label).toBe('reference:docker-29');
    // a real dockerd is expected to write its release's layout: Debian's docker.io is 20.10
    expect(parseTarget('docker')).toEqual({ engine: 'docker', profile: 'docker-20.10', label: 'docker' });
    expect(parseTarget('docker:docker-29')).toEqual({ engine: 'docker', profile: 'docker-29', label: 'docker:docker-29', named: true });
  });

  it('names real releases: docker:28 is docker:docker-28, docker:20.10 is plain docker', () => {
    expect(parseTarget('docker:28')).toEqual({ engine: 'docker', profile: 'docker-28', label: 'docker:docker-28', named: true });
    expect(parseTarget('docker:26').label).toBe('docker:docker-26');
    expect(parseTarget('docker:20.10')).toEqual({ engine: 'docker', profile: 'docker-20.10', label: 'docker', named: true });
    expect(() => parseTarget('docker:27')).toThrow(/unknown release "27" \(known: 20.10, 26, 28, 29, all; e.g. docker:28\)/);
    expect(() => parseTarget('docker:all')).toThrow(/expand it first/);
    // docker:all stays for the edge to replace with the builds present
    expect(expandTargets(['reference', 'docker:all']).map((t) => [t.label, t.profile])).toEqual([
      ['reference:docker-20.10', 'docker-20.10'],
      ['docker:all', undefined],
    ]);
  });

  it('refuses unknown profiles and engines', () => {
    expect(() => parseTarget('reference:docker-27')).toThrow(`unknown profile "docker-27" (known: ${PROFILES.join(', ')})`);
    expect(() => parseTarget('podman')).toThrow(/unknown engine "podman" \(known: reference, docker\)/);
  });

  it('expands --profile over the reference engine, once per target', () => {
    expect(expandTargets(['reference'], ['all']).map((t) => t.label)).toEqual(PROFILES.map((p) => `reference:${p}`));
    expect(PROFILES).toContain('docker-29-nftables');
    expect(expandTargets(['reference', 'reference:docker-28'], ['docker-28']).map((t) => t.label)).toEqual(['reference:docker-28']);
    expect(() => expandTargets(['reference'], ['docker-19'])).toThrow(/unknown profile "docker-19"/);
  });

  it('has a firewall driver per profile, named after it', () => {
    for (const p of PROFILES) expect(createFirewall(p, { iptables: 'nft' }).profile).toBe(p);
  });

  it('writes ip6tables beside iptables from 28 on (27+ enable it by default), in the host\'s variant', () => {
    const backends = (p: (typeof PROFILES)[number], iptables: 'nft' | 'legacy') => createFirewall(p, { iptables }).backends.map((b) => b.name);
    expect(backends('docker-20.10', 'nft')).toEqual(['iptables-nft']);
    expect(backends('docker-26', 'nft')).toEqual(['iptables-nft']);
    expect(backends('docker-28', 'nft')).toEqual(['iptables-nft', 'ip6tables-nft']);
    expect(backends('docker-29', 'legacy')).toEqual(['iptables-legacy', 'ip6tables-legacy']);
    expect(createFirewall('docker-28', { iptables: 'nft' }).init6).toBeTypeOf('function');
    expect(createFirewall('docker-26', { iptables: 'nft' }).init6).toBeUndefined();
  });
});

describe('expectations per profile', () => {
  it('reads a result map with a default and picks per target', () => {
    const sc = loadScenarioText(
      `${base}expect:
  - id: IN-02
    reach: { from: wan, to: 127.0.0.1, proto: tcp, port: 8080 }
    result: { docker-20.10: connected, default: timeout }
    seen-source: { docker-20.10: wan }
`,
      'x.yaml',
    );
    const e = sc.expect[0] as ReachExpect;
    expect(e.resultBy).toEqual({ 'docker-20.10': 'connected', default: 'timeout' });
    const pick = (t: string) => resolveForTarget(sc, parseTarget(t)).expect[0] as ReachExpect;
    expect(pick('reference').result).toBe('connected');
    expect(pick('reference').seenSource).toBe('wan');
    expect(pick('reference:docker-28').result).toBe('timeout');
    expect(pick('reference:docker-28').seenSource).toBeUndefined();
    expect(pick('docker').result).toBe('connected'); // Debian's dockerd is 20.10
    expect(pick('docker:docker-29').result).toBe('timeout');
  });

  it('prefers engine:profile, then engine, then profile, then default', () => {
    const sc = loadScenarioText(
      `${base}expect:
  - id: IN-02
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: { reference:docker-28: refused, docker: unreachable, docker-28: connected, default: timeout }
`,
      'x.yaml',
    );
    const pick = (t: string) => (resolveForTarget(sc, parseTarget(t)).expect[0] as ReachExpect).result;
    expect(pick('reference:docker-28')).toBe('refused');
    expect(pick('docker')).toBe('unreachable');
    expect(pick('reference:docker-29')).toBe('timeout');
  });

  it('leaves expectations stated for other profiles out of a run (not a skip)', () => {
    const sc = loadScenarioText(
      `${base}expect:
  - id: IN-02
    profiles: [docker-28, docker-29]
    rules: { table: raw, chain: PREROUTING, contains: ["-d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP"] }
  - id: IN-02
    reach: { from: host, to: 127.0.0.1, proto: tcp, port: 8080 }
    result: connected
`,
      'x.yaml',
    );
    const old = resolveForTarget(sc, parseTarget('reference'));
    expect(old.expect[0].notFor).toBe('stated for docker-28, docker-29 only');
    expect(old.expect[0].skipReason).toBeUndefined();
    expect(old.expect[1].notFor).toBeUndefined();
    expect(resolveForTarget(sc, parseTarget('reference:docker-29')).expect[0].notFor).toBeUndefined();
    // the real dockerd here is 20.10: the 28/29 rules are not its to write
    expect(resolveForTarget(sc, parseTarget('docker')).expect[0].notFor).toBeDefined();
  });

  it('skips a whole scenario outside its profiles', () => {
    const sc = loadScenarioText(`${base}profiles: [docker-29]\nexpect:\n  - id: IN-02\n    reach: { from: host, to: 127.0.0.1, proto: tcp, port: 8080 }\n    result: connected\n`, 'x.yaml');
    expect(sc.profiles).toEqual(['docker-29']);
    expect(resolveForTarget(sc, parseTarget('reference:docker-28')).expect[0].skipReason).toMatch(/runs under docker-29 only/);
    expect(resolveForTarget(sc, parseTarget('reference:docker-29')).expect[0].skipReason).toBeUndefined();
  });

  it('reports unknown profile names where they are written', () => {
    const errs = errorsOf(`${base}profiles: [docker-28, docker-30]
expect:
  - id: IN-02
    profiles: [docker-29]
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: { docker-27: connected, default: timeout }
`);
    expect(errs).toContain(`6:23 profiles[1]: unknown profile 'docker-30' (known: ${PROFILES.join(', ')})`);
    expect(errs).toContain("9:16 expect[0].profiles[0]: profile 'docker-29' is not one the scenario runs under (profiles: [docker-28, docker-30])");
    expect(errs.find((e) => e.startsWith('11:15 expect[0].result'))).toMatch(/unknown profile or engine 'docker-27'/);
  });

  it('requires a value for every profile in scope, or a default', () => {
    const errs = errorsOf(`${base}expect:
  - id: IN-02
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: { docker-20.10: connected, docker-28: timeout }
`);
    expect(errs).toEqual(['9:13 expect[0].result: no value for docker-26, docker-29: name them or add a default']);
    // restricted to the profiles it names, the same map is complete
    expect(errorsOf(`${base}expect:\n  - id: IN-02\n    profiles: [docker-20.10, docker-28]\n    reach: { from: wan, to: host, proto: tcp, port: 8080 }\n    result: { docker-20.10: connected, docker-28: timeout }\n`)).toEqual([]);
  });

  it('says what a result map must hold when a value is not an outcome', () => {
    const errs = errorsOf(`${base}expect:
  - id: IN-02
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: { docker-28: blocked, default: timeout }
`);
    expect(errs.some((e) => /expect\[0\]\.result\.docker-28: expected one of: connected, refused, timeout, unreachable; got "blocked"/.test(e))).toBe(true);
  });
});

describe('compliance findings', () => {
  const text = `${base}expect:
  - id: IN-02
    finding: { docker-20.10: a port published on 127.0.0.1 is reachable from the LAN }
    reach: { from: wan, to: 127.0.0.1, proto: tcp, port: 8080 }
    result: { docker-20.10: connected, default: timeout }
  - id: IN-02
    finding: exposed under every release
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: timeout
`;

  it('resolves a finding per target: where the map names none, there is no finding', () => {
    const sc = loadScenarioText(text, 'x.yaml');
    expect(resolveForTarget(sc, parseTarget('reference')).expect[0].finding).toBe('a port published on 127.0.0.1 is reachable from the LAN');
    expect(resolveForTarget(sc, parseTarget('docker')).expect[0].finding).toBe('a port published on 127.0.0.1 is reachable from the LAN');
    expect(resolveForTarget(sc, parseTarget('reference:docker-28')).expect[0].finding).toBeUndefined();
    expect(resolveForTarget(sc, parseTarget('reference:docker-29')).expect[1].finding).toBe('exposed under every release');
  });

  it('says what a finding must be, where it is written', () => {
    expect(errorsOf(`${base}expect:\n  - id: IN-02\n    finding: 3\n    reach: { from: wan, to: host, proto: tcp, port: 8080 }\n    result: timeout\n`)).toEqual([
      '8:14 expect[0].finding: 3: expected why it is a finding (text), or a map of profile or engine to text, e.g. { docker-20.10: "reachable from the LAN" }',
    ]);
  });

  it('JUnit carries a passed finding as a property of its case', () => {
    const loc = { file: 'x.yaml', line: 7, col: 5 };
    const xml = buildJunit([
      {
        scenarioId: 'x',
        title: 'x',
        file: 'x.yaml',
        engine: 'reference:docker-20.10',
        engineDescription: 'reference',
        cases: [{ id: 'IN-02', name: 'IN-02 exposed', kind: 'reach', status: 'passed', loc, timeMs: 1, expectIndex: 0, finding: 'reachable from the LAN' }],
        ruleDump: '',
        transcript: [],
        timeMs: 1,
        probes: 1,
        phaseMs: { build: 0, probe: 0, teardown: 0 },
        properties: {},
      },
    ]);
    expect(xml).toMatch(/<property name="finding" value="reachable from the LAN"\/>/);
  });
});
