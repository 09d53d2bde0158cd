// A flush of every rule table a host's iptables and ip6tables hold: what firewalld's iptables
// backend does to them when it reloads (every chain flushed and deleted, built-in policies
// ACCEPT), and what an administrator's `iptables -F; iptables -X` (with `-P … ACCEPT`) does.
// The engine is not told: what it writes back, and when, is the point of the recovery steps.
import type { Lab } from './lab.js';
import { iptablesTools, type IptablesVariant } from '../rules/iptables/tools.js';

const BUILTIN: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};

/** One restore per family, in one process: empty tables with ACCEPT policies. */
export async function flushAllTables(lab: Lab, ns: string, variant: IptablesVariant | undefined): Promise<void> {
  const input = Object.entries(BUILTIN)
    .map(([table, chains]) => `*${table}\n${chains.map((c) => `:${c} ACCEPT [0:0]`).join('\n')}\nCOMMIT\n`)
    .join('');
  const restore = (family: 'ipv4' | 'ipv6') => (variant ? iptablesTools(variant, family).restore : family === 'ipv4' ? 'iptables-restore' : 'ip6tables-restore');
  // iptables-restore without --noflush replaces each table it names: flushed, chains deleted
  await lab.exec(ns, 'sh', ['-ec', `${restore('ipv4')} <<'EOF'\n${input}EOF\n${restore('ipv6')} <<'EOF'\n${input}EOF\n`]);
}
