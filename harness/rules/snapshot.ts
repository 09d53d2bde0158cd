// A Docker host's rule sets at one moment, from every backend the host runs: what assertions
// check, what reports show, what the differential and the upgrade diff compare. Read in one
// process per host (iptables-save and ip6tables-save of the host's variant, and `nft -j list
// ruleset` where the nftables rule set matters).
import type { Lab } from '../lab/lab.js';
import type { Ruleset } from './iptables/save.js';
import { parseIptablesSave } from './iptables/save.js';
import { iptablesTools, type IptablesVariant } from './iptables/tools.js';
import type { NftRuleset } from './nft/model.js';
import { NFT_DUMP, parseNftDump } from './nft/backend.js';
import { rulesetText } from './nft/text.js';

export interface HostRules {
  /** iptables-save (IPv4) */
  iptables: Ruleset;
  /** ip6tables-save (27+ write IPv6 rules by default); absent when not read */
  ip6tables?: Ruleset;
  /** the engine's and the administrator's nftables tables; absent when not read */
  nft?: NftRuleset;
}

export interface ReadRules extends HostRules {
  ip6tables: Ruleset;
  /** the dumps as a person reads them (for reports) */
  text: string;
}

/** Read a host namespace's rules: its iptables variant's, and nftables' when asked. */
export async function readHostRules(lab: Lab, ns: string, opts: { iptables: IptablesVariant; nft: boolean }): Promise<ReadRules> {
  const save = { file: iptablesTools(opts.iptables).save, args: [] };
  const save6 = { file: iptablesTools(opts.iptables, 'ipv6').save, args: [] };
  const { dumps } = await lab.snapshot(ns, [], opts.nft ? [save, save6, NFT_DUMP] : [save, save6]);
  const iptablesText = dumps[0].replace(/^#.*\n/gm, '');
  const v6 = dumps[1].replace(/^#.*\n/gm, '');
  const ip6tablesText = v6.trim() ? `# ip6tables-save\n${v6}` : '';
  const nft = opts.nft ? parseNftDump(dumps[2]) : undefined;
  const nftText = nft?.length ? `# nft list ruleset (${nft.map((t) => `${t.family} ${t.name}`).join(', ')})\n${rulesetText(nft)}` : '';
  return { iptables: parseIptablesSave(dumps[0]), ip6tables: parseIptablesSave(dumps[1]), nft, text: iptablesText + ip6tablesText + nftText };
}
