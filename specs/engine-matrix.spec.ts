// The engine matrix: the real Docker 26.1.5 and 28.5.2 (Debian's own builds, cached by
// scripts/get-engines.sh) and 29.7.2 (built from moby's tag by scripts/build-engine.sh, with
// both its firewall backends) against the reference engine's profile of each, on the scenarios
// where releases differ (binding order, port allocator, internal networks, container files and
// environments, held ports, nftables); and proof, with real engines, that the comparison fails
// when a container file, a variable or an ip6tables rule differs, and that a failure keeps the
// daemon's log as evidence. A release that is not cached is skipped, saying how to get it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarios } from '../harness/scenario/load.js';
import { runSuite } from '../harness/run/suite.js';
import { compareRuns } from '../harness/compare/differential.js';
import { BUILD_HINT, cachedBuild, FETCH_HINT } from '../harness/engine/docker/builds.js';
import type { Profile } from '../harness/targets.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { fingerprintStartingNamespace } from './support/fingerprint.js';
import { expectMachineClean, scenario } from './support/engines.js';
import { expectAllPassed } from './support/cases.js';

const isRoot = process.getuid?.() === 0;
const { scenarios } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);
const byId = (id: string) => scenarios.find((s) => s.id === id)!;
const WHERE_RELEASES_DIFFER = ['ingress-publish-forms', 'ingress-port-conflict', 'networks-internal', 'networks-user-defined', 'modes-names', 'modes-host', 'egress-masquerade'];
// 29: legacy links' variables only on request, held ports that drop; its nftables backend
const WHERE_29_DIFFERS = [...WHERE_RELEASES_DIFFER, 'links-legacy', 'links-legacy-env', 'firewall-iptables-false-no-proxy'];
const MATRIX: { release: string; profile: Profile; scenarios: string[]; hint: string }[] = [
  { release: '26', profile: 'docker-26', scenarios: WHERE_RELEASES_DIFFER, hint: FETCH_HINT },
  { release: '28', profile: 'docker-28', scenarios: WHERE_RELEASES_DIFFER, hint: FETCH_HINT },
  { release: '29', profile: 'docker-29', scenarios: WHERE_29_DIFFERS, hint: BUILD_HINT },
  { release: '29-nftables', profile: 'docker-29-nftables', scenarios: [...WHERE_29_DIFFERS, 'nftables-tables'], hint: BUILD_HINT },
];

for (const { release, profile, scenarios: ids, hint } of MATRIX) {
  const have = isRoot && cachedBuild(profile) !== undefined;
  describe.skipIf(!have)(`Docker ${release} (real) and reference:${profile} agree where releases differ`, () => {
    let before = '';
    let results: ScenarioResult[] = [];
    beforeAll(async () => {
      before = await fingerprintStartingNamespace();
      results = await runSuite(ids.map(byId), { engines: [`reference:${profile}`, `docker:${release}`] });
    });

    for (const id of ids) {
      it(`${id}: passes on both, and the comparison agrees (verdicts, rules, ip6tables, files, ports)`, () => {
        const mine = results.filter((r) => r.scenarioId === id);
        expect(mine.map((r) => r.engine)).toEqual([`reference:${profile}`, `docker:${profile}`, `reference:${profile}-vs-docker:${profile}`]);
        expectAllPassed(mine);
        const names = mine[2].cases.map((c) => c.name.replace(/ \(phase \d+\)$/, ''));
        expect(new Set(names)).toEqual(new Set(['packet verdicts agree', 'rule sets agree', 'ip6tables rule sets agree', 'addresses and ports agree', 'container files agree', 'container environments agree'].map((n) => `reference:${profile}-vs-docker:${profile}: ${n}`)));
      });
    }

    afterAll(async () => {
      await expectMachineClean(before);
    });
  });
  if (isRoot && !have) {
    describe(`Docker ${release} (real)`, () => {
      it.skip(`not cached: ${hint}`, () => {});
    });
  }
}

const have28 = isRoot && cachedBuild('docker-28') !== undefined;

describe.skipIf(!have28)('the comparison sees container files and ip6tables (real Docker 28)', () => {
  let before = '';
  let ref: ScenarioResult;
  let real: ScenarioResult;
  let old: ScenarioResult;
  const sc = byId('modes-names');
  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
    [old, ref, real] = await runSuite([sc], { engines: ['reference:docker-20.10', 'reference:docker-28', 'docker:28'], compare: false });
  });

  const caseOf = (r: ScenarioResult, what: string) => r.cases.find((c) => c.name.endsWith(what))!;

  it('the profile of the release agrees with it', () => {
    const c = compareRuns(sc, ref, real);
    expectAllPassed(c, { skippedFail: true });
  });

  it("an older release's files and ip6tables fail it: 20.10 writes no IPv6 chains and another resolv.conf", () => {
    const c = compareRuns(sc, old, real);
    const v6 = caseOf(c, 'ip6tables rule sets agree');
    expect(v6.status).toBe('failed');
    expect(v6.message).toMatch(/^ip6tables: reference:docker-20.10 and docker:docker-28 disagree in .*filter\/DOCKER-FORWARD/);
    expect(v6.diff).toMatch(/^\+-A DOCKER-FORWARD -j DOCKER-CT$/m);
    const files = caseOf(c, 'container files agree');
    expect(files.status).toBe('failed');
    expect(files.message).toMatch(/write different container files: .*web:\/etc\/resolv\.conf/);
    expect(files.diff).toMatch(/^\+# Generated by Docker Engine\.$/m);
  });

  it('one ip6tables rule gone from the real engine fails the comparison, with the rule in the diff', () => {
    const broken = structuredClone(real);
    const fwd = broken.snapshots![0].rules6!.find((t) => t.name === 'filter')!.chains.find((ch) => ch.name === 'DOCKER-FORWARD')!;
    expect(fwd.rules).toContain('-j DOCKER-BRIDGE');
    fwd.rules = fwd.rules.filter((r) => r !== '-j DOCKER-BRIDGE');
    const v6 = caseOf(compareRuns(sc, ref, broken), 'ip6tables rule sets agree');
    expect(v6.status).toBe('failed');
    expect(v6.diff).toMatch(/^--A DOCKER-FORWARD -j DOCKER-BRIDGE$/m);
  });

  it('one changed line of a container file fails the comparison, naming the container and the file', () => {
    const broken = structuredClone(real);
    const files = broken.snapshots![0].files!;
    files.web['/etc/hosts'] = files.web['/etc/hosts'].replace('legacy.example', 'legacy.example.org');
    const c = caseOf(compareRuns(sc, ref, broken), 'container files agree');
    expect(c.status).toBe('failed');
    expect(c.message).toBe('reference:docker-28 and docker:docker-28 write different container files: web:/etc/hosts');
    expect(c.diff).toMatch(/^\+192\.0\.2\.10\tlegacy\.example\.org$/m);
  });

  it("one changed variable of a container's environment fails the comparison, naming the container", () => {
    const broken = structuredClone(real);
    const env = broken.snapshots![0].env!;
    expect(env.web.some((v) => v.startsWith('PATH='))).toBe(true);
    env.web = env.web.map((v) => (v.startsWith('PATH=') ? `${v}:/opt/bin` : v));
    const c = caseOf(compareRuns(sc, ref, broken), 'container environments agree');
    expect(c.status).toBe('failed');
    expect(c.message).toBe('reference:docker-28 and docker:docker-28 give containers different environments: web:environment');
    expect(c.diff).toMatch(/^\+PATH=.*:\/opt\/bin$/m);
  });

  const tmp = mkdtempSync(join(tmpdir(), 'netconform-evidence-'));

  it("a failure keeps the real daemon's log under the evidence folder and names it", async () => {
    const dir = join(tmp, 'logs');
    const failing = scenario(`id: evidence-check
title: egress said to be blocked, which it is not
covers: [EG-01]
containers:
  web: {}
expect:
  - id: EG-01
    reach: { from: web, to: wan, proto: tcp, port: 9000 }
    result: timeout
`);
    const [r] = await runSuite([failing], { engines: ['docker:28'], evidenceDir: dir });
    const c = r.cases[0];
    expect(c.status).toBe('failed');
    const path = join(dir, 'evidence-check', 'docker_docker-28', 'dockerd.log');
    expect(c.message).toContain(`evidence (docker:docker-28): ${path}, `);
    expect(existsSync(path)).toBe(true);
    expect(readFileSync(path, 'utf8')).toMatch(/level=info msg="Starting up"/);
    expect(r.evidence).toBeUndefined(); // the texts are not carried further (JUnit stays small)
  });

  afterAll(async () => {
    rmSync(tmp, { recursive: true, force: true });
    await expectMachineClean(before);
  });
});
