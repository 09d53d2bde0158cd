// What this kernel and machine can do, found by trying each feature in a scratch namespace
// (never in the starting one). Scenarios declare `requires:`; a missing feature skips them
// with its reason.
import { FIREWALLD_MISSING, firewalldInstalled } from './firewalld.js';
import { run } from './exec.js';
import { Lab } from './lab.js';
import { missingOvsTools, OVS_MISSING } from './ovs.js';

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
};

/** Every feature, or only those asked for (a run probes what its scenarios require: each probe costs processes). */
export async function detectCapabilities(only?: string[]): Promise<Capability[]> {
  const wanted = (f: string) => !only || only.includes(f);
  const probes = Object.entries(PROBES).filter(([f]) => wanted(f));
  const lab = Lab.create();
  const out: Capability[] = [];
  try {
    await lab.addNamespaces(probes.map(([f]) => f));
    await Promise.all(
      probes.map(async ([feature, lines]) => {
        const r = await run('ip', ['-n', lab.ns(feature), '-batch', '-'], { input: lines.join('\n') + '\n', allowFail: true });
        const err = r.stderr.trim().split('\n')[0];
        out.push({ feature, ok: r.exitCode === 0, detail: r.exitCode === 0 ? 'works' : `${lines.at(-1)}: ${err}` });
      }),
    );
  } finally {
    await lab.destroy();
  }
  if (wanted('openvswitch')) out.push(await openvswitchDatapath());
  // The kernel datapath alone is not enough: each lab runs its own ovsdb-server and ovs-vswitchd.
  const ovs = out.find((c) => c.feature === 'openvswitch');
  const tools = ovs?.ok ? await missingOvsTools() : [];
  if (ovs && tools.length) {
    ovs.ok = false;
    ovs.detail = `${OVS_MISSING} (no ${tools.join(', ')})`;
  }
  if (wanted('iptables-nft') || wanted('iptables-legacy')) out.push(...(await iptablesBackends()).filter((c) => wanted(c.feature)));
  if (wanted('nftables')) out.push(await nftables());
  // a lab host's firewalld (host: { firewalld: true }) is Debian's package, run per lab
  if (wanted('firewalld')) out.push(firewalldInstalled() ? { feature: 'firewalld', ok: true, detail: 'installed' } : { feature: 'firewalld', ok: false, detail: FIREWALLD_MISSING });
  return out.sort((a, b) => a.feature.localeCompare(b.feature));
}

/** OVS datapaths are made over generic netlink, not `ip link`: ask for its family (this loads the module where it can). */
async function openvswitchDatapath(): Promise<Capability> {
  const r = await run('genl', ['ctrl', 'get', 'name', 'ovs_datapath'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '', stderr: 'genl not found (iproute2)' }));
  const err = r.stderr.trim().split('\n')[0];
  return { feature: 'openvswitch', ok: r.exitCode === 0, detail: r.exitCode === 0 ? 'works' : `no ovs_datapath netlink family: ${err || `exit ${r.exitCode}`}` };
}

/** A backend works when its tool is installed and this kernel gives it a nat table (in a scratch namespace). */
async function iptablesBackends(): Promise<Capability[]> {
  const out: Capability[] = [];
  const lab = Lab.create();
  try {
    await lab.addNamespaces(['ipt']);
    for (const [feature, bin] of [
      ['iptables-nft', 'iptables-nft'],
      ['iptables-legacy', 'iptables-legacy'],
    ] as const) {
      const v = await run(bin, ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '', stderr: 'not installed' }));
      if (v.exitCode !== 0) {
        out.push({ feature, ok: false, detail: `${bin} not found` });
        continue;
      }
      const nat = await lab.exec('ipt', bin, ['-w', '-t', 'nat', '-S'], { allowFail: true });
      const err = nat.stderr.trim().split('\n')[0];
      out.push({ feature, ok: nat.exitCode === 0, detail: nat.exitCode === 0 ? v.stdout.trim() : `${bin} -t nat: ${err || `exit ${nat.exitCode}`}` });
    }
  } finally {
    await lab.destroy();
  }
  return out;
}

/** nft (Debian's nftables) works when it loads a table with the base chains and expressions Docker's nftables layout uses. */
async function nftables(): Promise<Capability> {
  const v = await run('nft', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '', stderr: '' }));
  if (v.exitCode !== 0) return { feature: 'nftables', ok: false, detail: 'nft not found (apt-get install -y nftables, which ./scripts/setup.sh does)' };
  const lab = Lab.create();
  try {
    await lab.addNamespaces(['nft']);
    const probe = [
      'table ip cap {',
      '  map m { type ifname : verdict; }',
      '  chain f { type filter hook forward priority 0; policy accept; oifname vmap @m; ct state established,related counter accept; }',
      '  chain n { type nat hook postrouting priority 100; policy accept; fib saddr type local masquerade; }',
      '  chain p { type nat hook prerouting priority -100; policy accept; tcp dport 8080 dnat to 192.0.2.2:80; }',
      '}',
    ].join('\n');
    const r = await lab.exec('nft', 'nft', ['-f', '-'], { input: probe + '\n', allowFail: true });
    return { feature: 'nftables', ok: r.exitCode === 0, detail: r.exitCode === 0 ? v.stdout.trim() : `nft -f: ${r.stderr.trim().split('\n')[0]}` };
  } finally {
    await lab.destroy();
  }
}

/**
 * The modules of a stock distribution kernel (Debian's) that give each feature, loaded in the
 * microVM guest before the harness starts. The iptables list is what the engine's rules use:
 * every scenario passes in the guest with on-demand loading off (GuestOptions.autoload).
 */
export const FEATURE_MODULES: Record<string, string[]> = {
  veth: ['veth'],
  bridge: ['bridge', 'br_netfilter'],
  macvlan: ['macvlan'],
  vxlan: ['vxlan'],
  '8021q': ['8021q'],
  'bridge-vlan-filtering': ['bridge'],
  openvswitch: ['openvswitch'],
  'iptables-nft': ['nf_tables', 'nft_compat', 'nft_chain_nat', 'nf_nat', 'nf_conntrack', 'xt_conntrack', 'xt_addrtype', 'xt_tcpudp', 'xt_MASQUERADE', 'xt_nat', 'xt_comment', 'xt_mark', 'nf_reject_ipv4', 'ipt_REJECT'],
  'iptables-legacy': ['ip_tables', 'iptable_filter', 'iptable_nat', 'iptable_raw', 'iptable_mangle'],
  nftables: ['nf_tables', 'nft_chain_nat', 'nft_nat', 'nft_masq', 'nft_ct', 'nft_fib', 'nft_fib_ipv4', 'nft_reject', 'nft_reject_ipv4', 'nft_limit', 'nft_log'],
};

export const GUEST_MODULES = [...new Set(Object.values(FEATURE_MODULES).flat())];

/** The `iptables` the engines use, e.g. "iptables v1.8.9 (nf_tables)". */
export async function iptablesVersion(): Promise<string> {
  const r = await run('iptables', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  return r.exitCode === 0 ? r.stdout.trim() : 'iptables not found';
}

export function missingFeatures(caps: Capability[]): Map<string, string> {
  return new Map(caps.filter((c) => !c.ok).map((c) => [c.feature, c.detail]));
}
