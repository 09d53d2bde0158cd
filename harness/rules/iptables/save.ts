// iptables-save output as an ordered model: tables → chains (declaration order) → rules
// (kernel order). Rules are kept as the text after "-A CHAIN ", in iptables-save's own form.

export interface Chain {
  name: string;
  /** built-in chains have a policy (ACCEPT/DROP); user chains have none */
  policy?: string;
  rules: string[];
}

export interface Table {
  name: string;
  chains: Chain[];
}

export type Ruleset = Table[];

export function parseIptablesSave(text: string): Ruleset {
  const rs: Ruleset = [];
  let table: Table | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line === 'COMMIT') continue;
    if (line.startsWith('*')) {
      table = { name: line.slice(1), chains: [] };
      rs.push(table);
      continue;
    }
    if (!table) throw new Error(`iptables-save: rule outside a table: ${line}`);
    if (line.startsWith(':')) {
      const [name, policy] = line.slice(1).split(/\s+/);
      table.chains.push({ name, policy: policy === '-' ? undefined : policy, rules: [] });
      continue;
    }
    // "[pkts:bytes] -A CHAIN rule" with -c, or "-A CHAIN rule"
    const m = /^(?:\[\d+:\d+\]\s+)?-A\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) throw new Error(`iptables-save: cannot read line: ${line}`);
    let chain = table.chains.find((c) => c.name === m[1]);
    if (!chain) table.chains.push((chain = { name: m[1], rules: [] }));
    chain.rules.push(m[2].replace(/\s+/g, ' ').trim());
  }
  return rs;
}

export function serializeRuleset(rs: Ruleset, tables?: string[]): string {
  const out: string[] = [];
  for (const t of rs) {
    if (tables && !tables.includes(t.name)) continue;
    out.push(`*${t.name}`);
    for (const c of t.chains) out.push(`:${c.name} ${c.policy ?? '-'} [0:0]`);
    for (const c of t.chains) for (const r of c.rules) out.push(`-A ${c.name} ${r}`);
    out.push('COMMIT');
  }
  return out.join('\n') + '\n';
}

export function getChain(rs: Ruleset, table: string, chain: string): Chain | undefined {
  return rs.find((t) => t.name === table)?.chains.find((c) => c.name === chain);
}
