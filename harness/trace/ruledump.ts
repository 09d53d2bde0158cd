// The rule text behind a trace event's handle. `list ruleset` with handles (what the trace
// monitor prints through libnftables, as `nft -a list ruleset` would) names every rule by its
// handle, in chain order; for the tables iptables-nft manages (ip filter, nat, raw, mangle,
// security), the same chain in `iptables-save` lists the same rules in the same order, so the
// n-th rule of both is one rule and the path can show it as iptables-save prints it. A chain
// whose rule counts differ (someone added native rules to an iptables table) keeps nft's text.
import type { Ruleset } from '../rules/iptables/save.js';

export interface DumpedChain {
  family: string;
  table: string;
  name: string;
  /** base chains: their type ("filter", "nat", "route"), hook, priority and policy */
  base?: { type: string; hook: string; priority: string; policy: string };
  rules: { handle: number; nft: string; iptables?: string }[];
  /** handle → index in rules */
  byHandle: Map<number, number>;
}

export interface RuleDump {
  /** "family table chain" → chain */
  chains: Map<string, DumpedChain>;
}

export const chainKey = (family: string, table: string, chain: string) => `${family} ${table} ${chain}`;

const IPTABLES_TABLES = ['filter', 'nat', 'raw', 'mangle', 'security'];

function unquote(s: string): string {
  return s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** nft's text of a rule without its counters (they change with every packet). */
function stripCounters(text: string): string {
  return text.replace(/\bcounter packets \d+ bytes \d+/g, 'counter').replace(/\s+/g, ' ').trim();
}

export function parseNftRuleset(text: string): RuleDump {
  const chains = new Map<string, DumpedChain>();
  let table: { family: string; name: string } | undefined;
  let chain: DumpedChain | undefined;
  let skipping = 0; // depth inside a set, map or other block that holds no rules
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (skipping) {
      if (line === '}') skipping--;
      else if (/\{\s*(#.*)?$/.test(line) && !line.includes('}')) skipping++;
      continue;
    }
    const t = /^table (\S+) (\S+) \{/.exec(line);
    if (t) {
      table = { family: t[1], name: unquote(t[2]) };
      continue;
    }
    const c = /^chain (\S+) \{/.exec(line);
    if (c && table) {
      chain = { family: table.family, table: table.name, name: unquote(c[1]), rules: [], byHandle: new Map() };
      chains.set(chainKey(chain.family, chain.table, chain.name), chain);
      continue;
    }
    if (line === '}') {
      if (chain) chain = undefined;
      else table = undefined;
      continue;
    }
    if (!chain) {
      // a set, map, flowtable, named counter … of the table: skip its block
      if (/\{\s*(#.*)?$/.test(line)) skipping = 1;
      continue;
    }
    const base = /^type (\S+) hook (\S+)(?: device \S+)? priority ([^;]+);(?: policy (\S+);)?/.exec(line);
    if (base) {
      chain.base = { type: base[1], hook: base[2], priority: base[3].trim(), policy: base[4] ?? 'accept' };
      continue;
    }
    const r = /^(.*?)\s*# handle (\d+)$/.exec(line);
    if (r) {
      chain.byHandle.set(Number(r[2]), chain.rules.length);
      chain.rules.push({ handle: Number(r[2]), nft: stripCounters(r[1]) });
    }
  }
  return { chains };
}

/**
 * Gives the chains of iptables-nft's tables their iptables-save text, rule by rule in order,
 * where both dumps list the same number of rules for the chain.
 */
export function attachIptablesText(dump: RuleDump, iptables: Ruleset): void {
  for (const t of iptables) {
    if (!IPTABLES_TABLES.includes(t.name)) continue;
    for (const c of t.chains) {
      const dumped = dump.chains.get(chainKey('ip', t.name, c.name));
      if (!dumped || dumped.rules.length !== c.rules.length) continue;
      dumped.rules.forEach((r, i) => (r.iptables = `-A ${c.name} ${c.rules[i]}`));
    }
  }
}

/** A rule by its handle: its text (iptables-save's where known) and its 1-based position. */
export function ruleByHandle(dump: RuleDump, family: string, table: string, chain: string, handle: number): { text: string; iptables: boolean; position: number } | undefined {
  const c = dump.chains.get(chainKey(family, table, chain));
  const i = c?.byHandle.get(handle);
  if (!c || i === undefined) return undefined;
  const r = c.rules[i];
  return { text: r.iptables ?? r.nft, iptables: r.iptables !== undefined, position: i + 1 };
}
