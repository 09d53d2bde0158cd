// Every backend's rule set as one flat list of chains, so that whatever compares rule sets
// (the engine differential, the upgrade diff) does not care where a chain lives: an iptables
// chain is `filter` / `FORWARD`, an nftables chain `ip docker-bridges` / `filter-FORWARD`,
// and an nftables set or map `ip docker-bridges` / `@filter-forward-in-jumps` with its
// elements (sorted: sets have no order) in place of rules.
import type { Ruleset } from './iptables/save.js';
import { baseChainLine, normalizeNft, tableLabel, type NftRuleset } from './nft/model.js';

export interface ChainView {
  backend: 'iptables' | 'nft';
  /** filter, nat … (iptables); "ip docker-bridges" (nftables: family and name) */
  table: string;
  /** a chain's name; "@name" for an nftables set or map */
  chain: string;
  /** an iptables built-in chain: it exists whenever its table does */
  builtin: boolean;
  /** ACCEPT/DROP (iptables built-in chains), accept/drop (nftables base chains) */
  policy?: string;
  /** what declares it: an nftables base chain's type, hook and priority; a set's or map's kind and type */
  header?: string;
  rules: string[];
}

const BUILTIN = new Set(['INPUT', 'FORWARD', 'OUTPUT', 'PREROUTING', 'POSTROUTING']);

export function chainViews(s: { rules: Ruleset; nft?: NftRuleset }): ChainView[] {
  const out: ChainView[] = [];
  for (const t of s.rules) {
    for (const c of t.chains) out.push({ backend: 'iptables', table: t.name, chain: c.name, builtin: BUILTIN.has(c.name), policy: c.policy, rules: c.rules });
  }
  for (const t of s.nft ?? []) {
    const table = tableLabel(t);
    for (const set of t.sets) out.push({ backend: 'nft', table, chain: `@${set.name}`, builtin: false, header: `${set.kind} ${set.name} { type ${set.type} }`, rules: set.elements.map(normalizeNft).sort() });
    for (const c of t.chains) out.push({ backend: 'nft', table, chain: c.name, builtin: false, policy: c.base?.policy, header: c.base ? baseChainLine(c.base) : undefined, rules: c.rules.map(normalizeNft) });
  }
  return out;
}

/** A rule as a line of a listing: `-A CHAIN rule` for iptables, the rule itself for nftables. */
export function viewLine(v: Pick<ChainView, 'backend' | 'chain'>, rule: string): string {
  return v.backend === 'iptables' ? `-A ${v.chain} ${rule}` : rule;
}

/** A chain's declaration line: `:FORWARD DROP` for iptables; `chain NAME { type … }` for nftables. */
export function viewHeader(v: ChainView): string {
  if (v.backend === 'iptables') return `:${v.chain} ${v.policy ?? '-'}`;
  return v.chain.startsWith('@') ? v.header! : `chain ${v.chain}${v.header ? ` { ${v.header} }` : ''}`;
}
