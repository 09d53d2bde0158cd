// What this kernel and machine can do, found by trying each feature in a scratch namespace
// (never in the starting one). Scenarios declare `requires:`; a missing feature skips them
// with its reason.
import { run } from './exec.js';
import { Lab } from './lab.js';

export interface Capability {
  feature: string;
  ok: boolean;
  detail: string;
}

const PROBES: Record<string, string[]> = {
  veth: ['link add cap0 type veth peer name cap1'],
  bridge: ['link add capbr type bridge'],
  macvlan: ['link add cap0 type veth peer name cap1', 'link add capmv link cap0 type macvlan mode bridge'],
  vxlan: ['link add capvx type vxlan id 42 dstport 4789 local 10.255.0.1'],
  '8021q': ['link add cap0 type veth peer name cap1', 'link add link cap0 name cap0.10 type vlan id 10'],
  'bridge-vlan-filtering': ['link add capbr type bridge vlan_filtering 1'],
  openvswitch: ['link add capovs type openvswitch'],
};

export async function detectCapabilities(): Promise<Capability[]> {
  const lab = Lab.create();
  const out: Capability[] = [];
  try {
    await lab.addNamespaces(Object.keys(PROBES));
    await Promise.all(
      Object.entries(PROBES).map(async ([feature, lines]) => {
        const r = await run('ip', ['-n', lab.ns(feature), '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
        const err = r.stderr.trim().split('\n')[0];
        out.push({ feature, ok: r.exitCode === 0, detail: r.exitCode === 0 ? 'works' : `${lines.at(-1)}: ${err}` });
      }),
    );
  } finally {
    await lab.destroy();
  }
  // The kernel datapath alone is not enough: scenarios drive it with ovs-vsctl.
  const ovs = out.find((c) => c.feature === 'openvswitch');
  if (ovs?.ok && (await run('sh', ['-c', 'command -v ovs-vsctl'], { allowFail: true })).exitCode !== 0) {
    ovs.ok = false;
    ovs.detail = 'kernel has openvswitch but ovs-vsctl is not installed';
  }
  out.push(...(await iptablesBackends()));
  return out.sort((a, b) => a.feature.localeCompare(b.feature));
}

async function iptablesBackends(): Promise<Capability[]> {
  const out: Capability[] = [];
  for (const [feature, bin] of [
    ['iptables-nft', 'iptables-nft'],
    ['iptables-legacy', 'iptables-legacy'],
  ] as const) {
    const r = await run(bin, ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '', stderr: 'not installed' }));
    out.push({ feature, ok: r.exitCode === 0, detail: r.exitCode === 0 ? r.stdout.trim() : `${bin} not found` });
  }
  return out;
}

/** The `iptables` the engines use, e.g. "iptables v1.8.9 (nf_tables)". */
export async function iptablesVersion(): Promise<string> {
  const r = await run('iptables', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  return r.exitCode === 0 ? r.stdout.trim() : 'iptables not found';
}

export function missingFeatures(caps: Capability[]): Map<string, string> {
  return new Map(caps.filter((c) => !c.ok).map((c) => [c.feature, c.detail]));
}
