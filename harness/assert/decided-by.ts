// `decided-by:` on a reach: not only that a packet was stopped (or let through), but which
// layer did it: a chain and verdict (`{ table: filter, chain: DOCKER-ISOLATION-STAGE-2,
// verdict: DROP }`, `policy: true` for the chain's policy), or the deciding rule's text as
// iptables-save prints it (as nft prints it for native nftables tables such as Docker's
// nftables backend's), with ${…} placeholders; or `none`: no rule decided (nothing filtered
// the packet, or only a chain's ACCEPT policy let it through).
import { normalizeRule } from '../rules/iptables/editor.js';
import { normalizeNft } from '../rules/nft/model.js';
import type { Decision, RulePath } from '../trace/path.js';
import { where } from '../trace/path.js';
import type { DecidedBy } from '../scenario/types.js';

export function describeDecidedBy(d: DecidedBy): string {
  if (d.none) return 'no rule';
  const at = d.table && d.chain ? `${d.table}:${d.chain}${d.policy ? ' policy' : ''} ${d.verdict ?? ''}`.trim() : '';
  const rule = d.rule ? `rule ${JSON.stringify(d.rule)}` : '';
  return [at, rule].filter(Boolean).join(', ') + (d.host ? ` on ${d.host}` : '');
}

/** A rule as iptables-save prints it (iptables-nft's tables) or as nft does (native tables, e.g. Docker's nftables backend). */
function sameRule(actual: string, wanted: string): boolean {
  return actual.startsWith('-') ? normalizeRule(actual) === normalizeRule(wanted) : normalizeNft(actual) === normalizeNft(wanted);
}

function describeDecision(d: Decision, multiHost: boolean): string {
  return `${where(d)} ${d.verdict}${d.rule ? ` (${d.rule})` : ''}${multiHost ? ` on ${d.host}` : ''}`;
}

/**
 * Whether the path's deciding step is the one the expectation names. `expand` fills in the
 * placeholders of a rule text, and of a chain (nftables backends name chains after bridges:
 * `filter-forward-in__${bridge:back}`), with the names of the host that decided.
 */
export function checkDecidedBy(want: DecidedBy, path: RulePath, expand: (host: string, text: string) => string, multiHost: boolean): { ok: boolean; message: string } {
  const d = path.decision;
  const expected = describeDecidedBy(want);
  if (want.none) {
    if (!d || (d.policy && d.verdict === 'ACCEPT')) return { ok: true, message: '' };
    return { ok: false, message: `decided by ${describeDecision(d, multiHost)}, expected no rule to decide it` };
  }
  if (!d) return { ok: false, message: `no firewall rule decided this packet (${path.end}); expected it decided by ${expected}` };
  const problems: string[] = [];
  if (want.host && d.host !== want.host) problems.push(`on ${d.host}`);
  if (want.table && d.table !== want.table) problems.push(`in table ${d.table}`);
  if (want.chain) {
    let chain: string;
    try {
      chain = expand(d.host, want.chain);
    } catch (e) {
      return { ok: false, message: `decided-by: ${(e as Error).message}` };
    }
    if (d.chain !== chain) problems.push(`in chain ${d.chain}`);
  }
  if (want.verdict && d.verdict !== want.verdict.toUpperCase()) problems.push(`with ${d.verdict}`);
  if (want.policy !== undefined && d.policy !== want.policy) problems.push(d.policy ? "by the chain's policy" : 'by a rule');
  if (want.rule !== undefined) {
    let text: string;
    try {
      text = expand(d.host, want.rule);
    } catch (e) {
      return { ok: false, message: `decided-by: ${(e as Error).message}` };
    }
    const chainNamed = /^-A (\S+) /.exec(text.trim())?.[1];
    if (chainNamed && chainNamed !== d.chain) problems.push(`in chain ${d.chain}`);
    if (!d.rule || !sameRule(d.rule, text)) problems.push(`by ${d.rule ? `rule ${JSON.stringify(d.rule)}` : "the chain's policy"}`);
  }
  if (problems.length === 0) return { ok: true, message: '' };
  return { ok: false, message: `decided by ${describeDecision(d, multiHost)}, expected ${expected}` };
}
