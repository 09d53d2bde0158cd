// nftables tables in one canonical listing, the form in which two rule sets are compared rule
// for rule (moby's documents against a lab, one engine against another): sets and chains
// sorted by name, a base chain's declaration with a figure for its priority, set elements
// sorted (a set has no order), rules in kernel order, every rule and element in one spelling
// (normalizeNft), names replaced through `symbol` (bridge names, addresses …).
import { baseChainLine, getNftTable, normalizeNft, type NftRuleset } from './model.js';

export function canonicalNftListing(rs: NftRuleset, tables: { family: string; name: string }[], symbol: (s: string) => string = (s) => s): string {
  const out: string[] = [];
  for (const { family, name } of tables) {
    const t = getNftTable(rs, family, name);
    out.push(`table ${family} ${name}${t ? '' : ' (absent)'}`);
    if (!t) continue;
    const byName = <T extends { name: string }>(xs: T[]) => xs.map((x) => ({ x, n: symbol(x.name) })).sort((a, b) => a.n.localeCompare(b.n));
    for (const { x: s, n } of byName(t.sets)) {
      out.push(`${s.kind} ${n}: type ${s.type}${s.flags.length ? `; flags ${s.flags.join(',')}` : ''}`);
      for (const e of s.elements.map((e) => symbol(normalizeNft(e))).sort()) out.push(`  element ${e}`);
    }
    for (const { x: c, n } of byName(t.chains)) {
      out.push(`chain ${n}${c.base ? `: ${baseChainLine(c.base)}` : ''}`);
      for (const r of c.rules) out.push(`  ${symbol(normalizeNft(r))}`);
    }
  }
  return out.join('\n') + '\n';
}
