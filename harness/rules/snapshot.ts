// A Docker host's rule sets at one moment, from every backend the host runs: what assertions
// check, what reports show, what the differential and the upgrade diff compare. Read in one
// process per host (iptables-save of the host's variant, and `nft -j list ruleset` where the
// nftables rule set matters).
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
  /** the engine's and the administrator's nftables tables; absent when not read */
  nft?: NftRuleset;
}

export interface ReadRules extends HostRules {
  /** the dumps as a person reads them (for reports) */
  text: string;
}

/** Read a host namespace's rules: its iptables variant's, and nftables' when asked. */
export async function readHostRules(lab: Lab, ns: string, opts: { iptables: IptablesVariant; nft: boolean }): Promise<ReadRules> {
  const save = { file: iptablesTools(opts.iptables).save, args: [] };
  const { dumps } = await lab.snapshot(ns, [], opts.nft ? [save, NFT_DUMP] : [save]);
  const iptablesText = dumps[0].replace(/^#.*\n/gm, '');
  const nft = opts.nft ? parseNftDump(dumps[1]) : undefined;
  const nftText = nft?.length ? `# nft list ruleset (${nft.map((t) => `${t.family} ${t.name}`).join(', ')})\n${rulesetText(nft)}` : '';
  return { iptables: parseIptablesSave(dumps[0]), nft, text: iptablesText + nftText };
}
