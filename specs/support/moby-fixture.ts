// Moby's documented rule sets (specs/fixtures/moby/PROFILE/DOC.rules for iptablesdoc,
// PROFILE/DOC.nft for nftablesdoc) and how both they and a lab's rules are brought to one form:
// names replaced by what they stand for (${bridge:bridge1}, ${subnet:bridge1}, ${c1}), tables
// listed canonically.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canonicalListing, parseListing } from '../../harness/rules/iptables/listing.js';
import type { Ruleset } from '../../harness/rules/iptables/save.js';
import type { NftRuleset } from '../../harness/rules/nft/model.js';
import { canonicalNftListing } from '../../harness/rules/nft/listing.js';
import { parseNftText } from '../../harness/rules/nft/text.js';
import { symbolize, type Facts } from '../../harness/rules/symbolic.js';

export const MOBY_DIR = join(import.meta.dirname, '..', 'fixtures', 'moby');
export const TABLES = ['filter', 'nat', 'raw'];

export interface MobyFixture {
  rules: Ruleset;
  /** the document's concrete names, as the facts they stand for */
  names: Facts;
}

/** "# names: bridge:bridge1=bridge1 subnet:bridge1=192.0.2.0/24 c1=192.0.2.2" → facts */
function parseNames(text: string): Facts {
  const facts: Facts = { addresses: {}, subnets: {}, bridges: {}, ports: {} };
  const line = /^# names: (.*)$/m.exec(text)?.[1];
  if (!line) throw new Error('fixture has no "# names:" line');
  for (const pair of line.trim().split(/\s+/)) {
    const [symbol, concrete] = pair.split('=');
    const [kind, arg] = symbol.includes(':') ? symbol.split(':') : ['address', symbol];
    if (kind === 'bridge') facts.bridges[arg] = concrete;
    else if (kind === 'subnet') facts.subnets[arg] = concrete;
    else facts.addresses[arg] = concrete;
  }
  return facts;
}

export function readMobyFixture(profile: string, doc: string): MobyFixture {
  const text = readFileSync(join(MOBY_DIR, profile, `${doc}.rules`), 'utf8');
  return { rules: parseListing(text), names: parseNames(text) };
}

export function normalizedListing(rules: Ruleset, facts: Facts): string {
  // the documents' host ports are concrete (8080) and so are the lab's: compared as they are
  return canonicalListing(rules, TABLES, (r) => symbolize(r, facts, { ports: false }));
}

/** Docker's own nftables table. */
export const NFT_TABLES = [{ family: 'ip', name: 'docker-bridges' }];

export interface MobyNftFixture {
  rules: NftRuleset;
  names: Facts;
}

export function readMobyNftFixture(profile: string, doc: string): MobyNftFixture {
  const text = readFileSync(join(MOBY_DIR, profile, `${doc}.nft`), 'utf8');
  return { rules: parseNftText(text), names: parseNames(text) };
}

export function normalizedNftListing(rules: NftRuleset, facts: Facts): string {
  return canonicalNftListing(rules, NFT_TABLES, (r) => symbolize(r, facts, { ports: false }));
}
