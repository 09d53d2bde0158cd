// Hosts run iptables-nft or iptables-legacy. A lab host's variant (the run's --host-iptables,
// or `host: { iptables: legacy }`) is what the reference engine writes with, what the dumps
// and checks read, what administrator steps run, and what a real dockerd finds as `iptables`
// on its PATH; the machine's alternatives are never consulted nor changed.
import { readlinkSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Lab } from '../harness/lab/lab.js';
import { ReferenceEngine } from '../harness/engine/reference/engine.js';
import { dockerPool } from '../harness/engine/docker/pool.js';
import { locateDocker } from '../harness/engine/docker/locate.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory, loadDockerEngine } from '../harness/run/suite.js';
import type { IptablesVariant } from '../harness/rules/iptables/tools.js';
import { IPTABLES_VARIANTS } from '../harness/rules/iptables/tools.js';
import { fingerprintStartingNamespace } from './support/fingerprint.js';
import { expectMachineClean, scenario } from './support/engines.js';
import { expectAllPassed } from './support/cases.js';

const isRoot = process.getuid?.() === 0;
const MASQ = '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE';
const other = (v: IptablesVariant): IptablesVariant => (v === 'nft' ? 'legacy' : 'nft');

/** The machine's iptables alternative (where it has one): it must stay as it was. */
function alternative(): string {
  try {
    return readlinkSync('/etc/alternatives/iptables');
  } catch {
    return '(none)';
  }
}

const egress = (variant: IptablesVariant) =>
  scenario(`
id: host-iptables-${variant}
title: egress from a host on iptables-${variant}
covers: [EG-01]
host: { iptables: ${variant} }
containers:
  web: { listen: [tcp/80] }
expect:
  - id: EG-01
    reach: { from: web, to: wan, proto: tcp, port: 9000 }
    result: connected
    seen-source: host
  - id: EG-01
    rules: { table: nat, chain: POSTROUTING, contains: ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"] }
then:
  - steps: [{ iptables: "-t nat -I POSTROUTING -o eth0 -p tcp --dport 9000 -j RETURN" }]
    expect:
      - id: EG-01
        name: the administrator's rule lands in the same variant (no masquerade for it)
        reach: { from: web, to: wan, proto: tcp, port: 9000 }
        result: timeout
`);

describe.skipIf(!isRoot)('the host firewall backend (iptables-nft or iptables-legacy)', () => {
  let before = '';
  let alt = '';
  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
    alt = alternative();
  });

  for (const variant of IPTABLES_VARIANTS) {
    it(`the reference engine writes with iptables-${variant}, and only there`, async () => {
      const lab = Lab.create();
      try {
        await lab.addNamespaces(['host']);
        const engine = new ReferenceEngine('docker-29');
        await engine.start({ lab, hostNs: 'host', daemon: { icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true }, iptables: variant, log: () => {} });
        await engine.sync();
        await engine.stop();
        expect((await lab.exec('host', `iptables-${variant}-save`, [])).stdout).toContain(MASQ);
        // the other variant's tables are empty: had the engine used it, this would fail
        expect((await lab.exec('host', `iptables-${other(variant)}-save`, [])).stdout).not.toContain('MASQUERADE');
      } finally {
        await lab.destroy();
      }
    });

    it(`a scenario on a host pinned to iptables-${variant} passes: engine, dumps, checks and steps agree`, async () => {
      const r = await runScenario(egress(variant), { engineName: 'reference:docker-29', makeEngine: engineFactory('reference:docker-29'), environment: {}, hostIptables: other(variant) });
      expectAllPassed(r, { skippedFail: true });
      expect(r.properties['host-iptables']).toBe(variant);
    });
  }

  it('the run chooses for hosts that do not pin one', async () => {
    const sc = egress('nft');
    sc.hosts[0].iptables = undefined;
    const r = await runScenario(sc, { engineName: 'reference', makeEngine: engineFactory('reference'), environment: {}, hostIptables: 'legacy' });
    expect(r.properties['host-iptables']).toBe('legacy');
    expect(r.ruleDump).toContain(MASQ);
  });

  it('a real dockerd on a legacy host writes with iptables-legacy (its PATH), the machine untouched', async (ctx) => {
    try {
      await locateDocker();
    } catch (e) {
      ctx.skip(`no dockerd: ${(e as Error).message}`);
    }
    await loadDockerEngine();
    const r = await runScenario(egress('legacy'), { engineName: 'docker', makeEngine: engineFactory('docker'), environment: {} });
    expectAllPassed(r, { skippedFail: true });
    // the daemon's own start state was read with iptables-legacy-save; nft holds none of it
    const d = dockerPool().daemons().find((x) => x.key.includes('"iptables":"legacy"'))!;
    expect(d.snapshot!.iptables).toContain(MASQ);
    expect((await d.lab.exec('host', 'iptables-nft-save', [])).stdout).not.toContain('DOCKER');
  });

  afterAll(async () => {
    expect(alternative()).toBe(alt);
    await expectMachineClean(before);
  });
});
