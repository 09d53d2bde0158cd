// Whole rule sets as `iptables -S` listings, per table: how Moby documents them, and the form
// in which two rule sets are compared (policies, chains sorted, rules in kernel order), so a
// comparison does not depend on the order a tool happened to declare chains in.
import type { Ruleset, Table } from './save.js';

const BUILTIN: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};

/**
 * Parse `*table` sections of `iptables -S` lines (-P CHAIN POLICY, -N CHAIN, -A CHAIN rule), as
 * Moby's generated documents list them. Lines starting with # are comments.
 */
export function parseListing(text: string): Ruleset {
  const rs: Ruleset = [];
  let table: Table | undefined;
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    if (line.startsWith('*')) {
      table = { name: line.slice(1), chains: [] };
      rs.push(table);
      continue;
    }
    const m = /^-([PNA])\s+(\S+)\s*(.*)$/.exec(line);
    if (!m || !table) throw new Error(`line ${i + 1}: expected *TABLE, -P, -N or -A, got: ${line}`);
    const [, op, name, rest] = m;
    let chain = table.chains.find((c) => c.name === name);
    if (!chain) table.chains.push((chain = { name, rules: [] }));
    if (op === 'P') chain.policy = rest;
    if (op === 'A') chain.rules.push(rest.replace(/\s+/g, ' '));
  }
  return rs;
}

/**
 * One canonical listing of the given tables: built-in chains with their policies in the
 * kernel's order, user chains sorted, then every chain's rules in order. A table the rule set
 * lacks counts as empty (built-in chains, policy ACCEPT).
 */
export function canonicalListing(rs: Ruleset, tables: string[], rule: (r: string) => string = (r) => r): string {
  const out: string[] = [];
  for (const name of tables) {
    const t = rs.find((x) => x.name === name);
    const builtins = BUILTIN[name] ?? [];
    const user = (t?.chains ?? []).filter((c) => !builtins.includes(c.name)).map((c) => c.name).sort();
    out.push(`*${name}`);
    for (const b of builtins) out.push(`-P ${b} ${t?.chains.find((c) => c.name === b)?.policy ?? 'ACCEPT'}`);
    for (const u of user) out.push(`-N ${u}`);
    for (const c of [...builtins, ...user]) {
      for (const r of t?.chains.find((x) => x.name === c)?.rules ?? []) out.push(`-A ${c} ${rule(r)}`);
    }
  }
  return out.join('\n') + '\n';
}
