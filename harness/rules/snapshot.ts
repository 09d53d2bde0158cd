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
  /** ip6tables-save; read in dual-stack labs */
  ip6tables?: Ruleset;
}

export interface ReadRules extends HostRules {
  /** the dumps as a person reads them (for reports) */
  text: string;
}

/** Read a host namespace's rules: its iptables variant's, and nftables' when asked. */
export async function readHostRules(lab: Lab, ns: string, opts: { iptables: IptablesVariant; nft: boolean; ip6?: boolean }): Promise<ReadRules> {
  const save = { file: iptablesTools(opts.iptables).save, args: [] };
  const save6 = { file: iptablesTools(opts.iptables, 'ipv6').save, args: [] };
  const { dumps } = await lab.snapshot(ns, [], [save, ...(opts.nft ? [NFT_DUMP] : []), ...(opts.ip6 ? [save6] : [])]);
  const iptablesText = dumps[0].replace(/^#.*\n/gm, '');
  const nft = opts.nft ? parseNftDump(dumps[1]) : undefined;
  const nftText = nft?.length ? `# nft list ruleset (${nft.map((t) => `${t.family} ${t.name}`).join(', ')})\n${rulesetText(nft)}` : '';
  const ip6Dump = opts.ip6 ? dumps[opts.nft ? 2 : 1] : undefined;
  const ip6Text = ip6Dump !== undefined ? `# ip6tables-save\n${ip6Dump.replace(/^#.*\n/gm, '')}` : '';
  return { iptables: parseIptablesSave(dumps[0]), nft, ...(ip6Dump !== undefined ? { ip6tables: parseIptablesSave(ip6Dump) } : {}), text: iptablesText + nftText + ip6Text };
}
