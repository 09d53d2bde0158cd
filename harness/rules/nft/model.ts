// An nftables rule set as an ordered model: tables (family and name) → sets and maps (with
// their elements) and chains (base chains with type, hook, priority and policy) → rules in
// kernel order. Rules and elements are kept as the text `nft list ruleset` prints, without
// counters' figures or handles; `normalizeNft` brings any spelling of them to one form.

export const NFT_FAMILIES = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] as const;
export type NftFamily = (typeof NFT_FAMILIES)[number];

export interface NftBaseChain {
  type: string; // filter, nat, route
  hook: string; // prerouting, input, forward, output, postrouting, ingress
  priority: number;
  policy: string; // accept, drop
}

export interface NftChain {
  name: string;
  base?: NftBaseChain;
  rules: string[];
}

export interface NftSet {
  name: string;
  kind: 'set' | 'map';
  /** "ipv4_addr", "ifname : verdict" */
  type: string;
  flags: string[];
  /** as nft prints them: 192.0.2.2, "docker0" : jump filter-forward-in__docker0 */
  elements: string[];
}

export interface NftTable {
  family: NftFamily;
  name: string;
  sets: NftSet[];
  chains: NftChain[];
}

export type NftRuleset = NftTable[];

export function isNftFamily(f: string): f is NftFamily {
  return (NFT_FAMILIES as readonly string[]).includes(f);
}

/** "ip docker-bridges" */
export function tableLabel(t: Pick<NftTable, 'family' | 'name'>): string {
  return `${t.family} ${t.name}`;
}

export function getNftTable(rs: NftRuleset, family: string, name: string): NftTable | undefined {
  return rs.find((t) => t.family === family && t.name === name);
}

// Standard priority names (nft(8), "PRIORITY"): the bridge family has its own figures.
const PRIORITIES: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };
const BRIDGE_PRIORITIES: Record<string, number> = { dstnat: -300, filter: -200, out: 100, srcnat: 300 };

/** "filter", "dstnat", "filter - 1", "-100" → a number (nft prints names or figures by version). */
export function priorityValue(text: string, family: string): number {
  const names = family === 'bridge' ? BRIDGE_PRIORITIES : PRIORITIES;
  const m = /^\s*([a-z]+)?\s*(?:([+-])\s*(\d+))?\s*$/.exec(text);
  if (m && m[1] && m[1] in names) return names[m[1]] + (m[2] ? Number(`${m[2]}${m[3]}`) : 0);
  const n = Number(text.replace(/\s+/g, ''));
  if (!Number.isInteger(n)) throw new Error(`unknown nftables priority "${text}"`);
  return n;
}

/** The chain's declaration as nft prints it (with a figure for the priority). */
export function baseChainLine(b: NftBaseChain): string {
  return `type ${b.type} hook ${b.hook} priority ${b.priority}; policy ${b.policy};`;
}

/**
 * One spelling of a rule or element: counters without figures, no handles, words unquoted
 * (`iifname "docker0"` and `iifname docker0` are the same rule), single spaces.
 */
export function normalizeNft(text: string): string {
  return text
    .replace(/\s+#\s*handle\s+\d+\s*$/, '')
    .replace(/\bcounter packets \d+ bytes \d+/g, 'counter')
    .replace(/"([\w.:/@*+-]+)"/g, '$1')
    .replace(/\s+/g, ' ')
    .trim();
}
