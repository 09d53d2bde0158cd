// The state of a daemon's host namespace that scenarios change, so one daemon can serve
// scenario after scenario as if freshly started:
// - right after the daemon started, a snapshot: its rule sets (iptables and ip6tables), the sysctls that the lab and
//   the daemon set, and the interfaces that belong to the daemon (docker0, a -b bridge);
// - after a scenario, a reset to a fresh namespace's state: every interface the lab added is
//   deleted (synchronously, so the next lab can reuse the names), every table flushed (the
//   host's iptables variant's, and the nftables tables of the engine and the administrator),
//   connection tracking emptied;
// - before the next scenario (after the lab re-prepared the namespace exactly as before the
//   daemon's first start), the snapshot is restored.
import { parseIptablesSave, serializeRuleset } from '../../rules/iptables/save.js';
import { iptablesTools, type IptablesTools, type IptablesVariant } from '../../rules/iptables/tools.js';
import { NFT_DUMP, parseNftDump } from '../../rules/nft/backend.js';
import { deleteTableScript, rulesetText } from '../../rules/nft/text.js';
import type { Lab } from '../../lab/lab.js';
import { run } from '../../lab/exec.js';

export interface HostSnapshot {
  tools: IptablesTools;
  iptables: string;
  /** 27+ write IPv6 rules by default: they are reset and restored alike */
  ip6tables: string;
  /** the daemon's nftables tables (Docker 29's nftables backend) as an nft -f script; '' when none */
  nft: string;
  sysctls: Record<string, string>;
  /** interfaces that stay: lo and what the daemon created at start */
  keepLinks: string[];
}

/** Sysctls the daemon sets at start (besides any the scenario's host sets). */
const DAEMON_SYSCTLS = ['net.ipv4.ip_forward', 'net.bridge.bridge-nf-call-iptables', 'net.bridge.bridge-nf-call-ip6tables'];

export async function linkNames(lab: Lab, ns: string): Promise<string[]> {
  return (await lab.ipJson(ns, ['link', 'show'])).map((l: { ifname: string }) => l.ifname);
}

async function readSysctls(lab: Lab, ns: string, keys: string[]): Promise<Record<string, string>> {
  if (lab.machine.sysctls) {
    const got = await lab.machine.sysctls(lab.nsPath(ns), {}, keys);
    return Object.fromEntries(Object.entries(got).filter(([, v]) => v !== ''));
  }
  const out: Record<string, string> = {};
  const script = keys.map((k) => `printf '%s=%s\\n' ${k} "$(cat /proc/sys/${k.replace(/\./g, '/')} 2>/dev/null)"`).join('; ');
  const r = await lab.exec(ns, 'sh', ['-c', script]);
  for (const line of r.stdout.split('\n').filter(Boolean)) {
    const i = line.indexOf('=');
    const v = line.slice(i + 1);
    if (v !== '') out[line.slice(0, i)] = v;
  }
  return out;
}

/** The host's nftables tables (not iptables-nft's), or none when nft is not installed. */
async function nftTables(lab: Lab, ns: string) {
  if (!(await haveNft())) return [];
  return parseNftDump((await lab.exec(ns, NFT_DUMP.file, NFT_DUMP.args)).stdout);
}

export async function snapshotHost(lab: Lab, ns: string, scenarioSysctls: string[], linksBeforeDaemon: string[], variant: IptablesVariant): Promise<HostSnapshot> {
  const tools = iptablesTools(variant);
  const tools6 = iptablesTools(variant, 'ipv6');
  const saved = await lab.exec(ns, tools.save, []);
  const saved6 = await lab.exec(ns, tools6.save, []);
  const now = await linkNames(lab, ns);
  return {
    tools,
    iptables: serializeRuleset(parseIptablesSave(saved.stdout)),
    ip6tables: serializeRuleset(parseIptablesSave(saved6.stdout)),
    nft: rulesetText(await nftTables(lab, ns)),
    sysctls: await readSysctls(lab, ns, [...new Set([...DAEMON_SYSCTLS, ...scenarioSysctls])]),
    keepLinks: ['lo', ...now.filter((l) => !linksBeforeDaemon.includes(l))],
  };
}

/** Put the daemon's start state back (the lab just re-applied its pre-start state). */
export async function restoreHost(lab: Lab, ns: string, snap: HostSnapshot): Promise<void> {
  await lab.setSysctls(ns, snap.sysctls);
  await lab.exec(ns, snap.tools.restore, [], { input: snap.iptables });
  if (snap.ip6tables.trim()) await lab.exec(ns, iptablesTools(snap.tools.variant, 'ipv6').restore, [], { input: snap.ip6tables });
  if (snap.nft) await lab.exec(ns, 'nft', ['-f', '-'], { input: snap.nft });
}

/** Empty every table that exists: flush, delete user chains, ACCEPT policies. */
function emptyTables(saveText: string): string {
  return serializeRuleset(
    parseIptablesSave(saveText).map((t) => ({
      name: t.name,
      chains: t.chains.filter((c) => c.policy !== undefined).map((c) => ({ name: c.name, policy: 'ACCEPT', rules: [] })),
    })),
  );
}

/** Back to a fresh namespace's state, except for the daemon's own interfaces. */
export async function resetHost(lab: Lab, ns: string, snap: HostSnapshot): Promise<void> {
  const extra = (await linkNames(lab, ns)).filter((l) => !snap.keepLinks.includes(l));
  // -force: deleting one end of a veth pair may already have taken the other one along
  if (extra.length) await lab.exec(ns, 'ip', ['-force', '-batch', '-'], { input: extra.map((l) => `link del ${l}`).join('\n') + '\n', allowFail: true });
  const left = (await linkNames(lab, ns)).filter((l) => !snap.keepLinks.includes(l));
  if (left.length) throw new Error(`could not delete lab interfaces ${left.join(', ')} from the daemon's host namespace`);
  const saved = await lab.exec(ns, snap.tools.save, []);
  await lab.exec(ns, snap.tools.restore, [], { input: emptyTables(saved.stdout) });
  const tools6 = iptablesTools(snap.tools.variant, 'ipv6');
  const saved6 = await lab.exec(ns, tools6.save, []);
  if (saved6.stdout.trim()) await lab.exec(ns, tools6.restore, [], { input: emptyTables(saved6.stdout) });
  const tables = await nftTables(lab, ns);
  if (tables.length) await lab.exec(ns, 'nft', ['-f', '-'], { input: tables.map(deleteTableScript).join('') });
  // stale NAT bindings of the last scenario's flows must not steer the next one's packets
  await lab.exec(ns, 'conntrack', ['-F'], { allowFail: true });
}

let nftInstalled: Promise<boolean> | undefined;

/** Whether `nft` (Debian's nftables package) is there. */
export function haveNft(): Promise<boolean> {
  nftInstalled ??= run('sh', ['-c', 'command -v nft'], { allowFail: true }).then((r) => r.exitCode === 0);
  return nftInstalled;
}

/** Whether `conntrack` (Debian's conntrack package) is there to flush connection tracking. */
export async function haveConntrack(): Promise<boolean> {
  const r = await run('sh', ['-c', 'command -v conntrack'], { allowFail: true });
  return r.exitCode === 0;
}
