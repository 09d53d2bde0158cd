// A lab's own Open vSwitch on this machine: ovsdb-server and ovs-vswitchd run inside the lab's
// switch namespace with every file in the lab's folder, and are stopped by pid with the lab,
// also when the scenario fails. (This host kernel has no openvswitch datapath: the daemons run,
// bridges exist only in their database; VL-02 on OVS itself runs in the microVM spec.)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { detectCapabilities, missingFeatures } from '../harness/lab/capabilities.js';
import { Lab } from '../harness/lab/lab.js';
import { packageRoot } from '../harness/paths.js';
import { loadScenarios } from '../harness/scenario/load.js';
import { placeScenarios } from '../harness/vm/plan.js';
import { missingOvsTools, OvsSwitch } from '../harness/lab/ovs.js';
import { processGone } from '../harness/machine/machine.js';
import { localMachine } from '../harness/machine/local.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { fingerprintStartingNamespace } from './support/fingerprint.js';
import { scenario } from './support/engines.js';

const isRoot = process.getuid?.() === 0;
const missing = isRoot ? await missingOvsTools() : [];
const why = !isRoot ? 'needs root' : missing.length ? `Open vSwitch userspace (openvswitch-switch) is not installed (no ${missing.join(', ')}; ./scripts/setup.sh installs it)` : '';

/** OVS daemons of this test process's labs (their command lines name the lab folder). */
function ourOvsDaemons(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${p}/stat`, 'utf8')) && /^ovs(db-server|-vswitchd)\0/.test(cmd) && cmd.includes(`/ncf-${process.pid}-`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

const failing = `id: ovs-step-fails
title: an ovs-vsctl step that fails
covers: [VL-02]
requires: [openvswitch]
segments: [{ name: sw, switch: ovs }]
host: { nics: { eth1: sw } }
expect:
  - id: VL-02
    reach: { from: host, to: wan, proto: tcp, port: 9000 }
    result: connected
then:
  - steps:
      - { on: lan, ovs-vsctl: set port nosuchport tag=100 }
    expect:
      - id: VL-02
        reach: { from: host, to: wan, proto: tcp, port: 9000 }
        result: connected
`;

describe.skipIf(Boolean(why))("a lab's own Open vSwitch", () => {
  it('runs both daemons in the lab namespace with db, sockets, logs and pidfiles in the lab folder, and stops them by pid', async () => {
    const before = await fingerprintStartingNamespace();
    const lab = Lab.create();
    let pids: number[] = [];
    let dir = '';
    try {
      await lab.addNamespaces(['wan']);
      const sw = await OvsSwitch.start(lab, 'wan');
      pids = sw.running();
      dir = sw.dir;
      expect(pids).toHaveLength(2);
      const labNs = statSync(lab.nsPath('wan')).ino;
      for (const pid of pids) expect(statSync(`/proc/${pid}/ns/net`).ino).toBe(labNs);
      expect(readdirSync(dir)).toEqual(expect.arrayContaining(['conf.db', 'db.sock', 'ovsdb-server.pid', 'ovs-vswitchd.pid', 'ovs-vswitchd.log']));
      await sw.vsctl(['add-br', 'seg-x', '--', 'set', 'bridge', 'seg-x', 'fail-mode=standalone']);
      expect((await sw.vsctl(['list-br'])).trim()).toBe('seg-x');
    } finally {
      await lab.destroy();
    }
    for (const pid of pids) expect(await processGone(localMachine, pid)).toBe(true);
    expect(existsSync(dir)).toBe(false);
    expect(existsSync('/var/run/openvswitch/db.sock')).toBe(false); // the machine's OVS was never involved
    expect(await fingerprintStartingNamespace()).toBe(before);
  });

  it('capabilities say whether this host kernel has the datapath, and the VL-02 OVS scenario goes where it is', async () => {
    const [cap] = await detectCapabilities(['openvswitch']);
    expect(cap.feature).toBe('openvswitch');
    // the userspace is installed (else this describe is skipped): only the kernel can be missing
    if (!cap.ok) expect(cap.detail).toMatch(/no ovs_datapath netlink family/);
    const { scenarios } = loadScenarios([join(packageRoot(), 'scenarios', 'vlan', 'access-ports-ovs.yaml')]);
    const [p] = placeScenarios(scenarios, missingFeatures([cap]), { vmAvailable: true });
    expect(p.where).toBe(cap.ok ? 'host' : 'vm');
  });

  it('a scenario whose ovs-vsctl step fails is an error, and its daemons are gone afterwards', async () => {
    const r = await runScenario(scenario(failing), { engineName: 'reference', makeEngine: engineFactory('reference'), environment: {} });
    const last = r.cases.at(-1)!;
    expect(last.status).toBe('error');
    expect(last.message).toMatch(/ovs-vsctl.*nosuchport/s);
    expect(r.transcript.join('\n')).not.toMatch(/step ovs-vsctl/); // the step never completed
    expect(ourOvsDaemons()).toEqual([]);
  });
});

describe.skipIf(!why)("a lab's own Open vSwitch unavailable", () => {
  it.skip(`skipped: ${why}`, () => {});
});
