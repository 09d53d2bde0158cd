// Rule-set assertions on one chain (or one nftables set or map): ordered `contains`, `absent`,
// `exact`, `policy`, `exists` and golden files, on either backend. A check without `family`
// reads the iptables rule set (iptables-save); with `family` (ip, ip6, inet…) the nftables
// rule set (nft -j list ruleset). A failure carries a unified diff, expected against actual.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { normalizeRule } from '../rules/iptables/editor.js';
import { getChain } from '../rules/iptables/save.js';
import { getNftTable, normalizeNft } from '../rules/nft/model.js';
import type { HostRules } from '../rules/snapshot.js';
import { listingDiff } from '../rules/textdiff.js';

export interface RuleCheck {
  /** read ip6tables-save instead of iptables-save */
  ipv6?: boolean;
  /** nftables family (ip, ip6, inet, …): the check reads the nft rule set */
  family?: string;
  table: string;
  chain?: string;
  /** an nftables set or map: its elements are checked (in any order) */
  set?: string;
  contains?: string[];
  absent?: string[];
  exact?: string[];
  golden?: string; // absolute path
  policy?: string;
  exists?: boolean; // false: the chain (or set, or with neither the nft table) must not exist
}

export interface CheckResult {
  ok: boolean;
  message: string;
  diff?: string;
}

export interface CheckOptions {
  expand?: (s: string) => string;
  updateGolden?: boolean;
}

/** What a check looks at, whichever backend it comes from. */
interface Subject {
  /** "filter/FORWARD", "ip docker-bridges/filter-FORWARD", "ip docker-bridges @filter-forward-in-jumps" */
  label: string;
  what: 'chain' | 'set' | 'table';
  /** undefined: it does not exist */
  items?: string[];
  policy?: string;
  /** whether order matters (chains) or not (set elements) */
  ordered: boolean;
  normalize: (s: string) => string;
  /** an item as a line of the diff */
  line: (s: string) => string;
}

function subjectOf(rules: HostRules, check: RuleCheck): Subject | string {
  if (!check.family) {
    const chain = check.chain ?? '';
    if (check.ipv6 && !rules.ip6tables) return 'no ip6tables rule set was read on this host (ip6tables checks need a dual-stack lab: ipv6: true)';
    const c = getChain(check.ipv6 ? rules.ip6tables! : rules.iptables, check.table, chain);
    return { label: `${check.ipv6 ? 'ip6tables ' : ''}${check.table}/${chain}`, what: 'chain', items: c?.rules, policy: c?.policy, ordered: true, normalize: normalizeRule, line: (r) => `-A ${chain} ${r}` };
  }
  if (!rules.nft) return 'no nftables rule set was read on this host (is nftables installed? apt-get install -y nftables)';
  const t = getNftTable(rules.nft, check.family, check.table);
  const table = `${check.family} ${check.table}`;
  if (check.set) {
    const s = t?.sets.find((x) => x.name === check.set);
    return { label: `${table} @${check.set}`, what: 'set', items: s?.elements.map(normalizeNft), ordered: false, normalize: normalizeNft, line: (e) => e };
  }
  if (check.chain) {
    const c = t?.chains.find((x) => x.name === check.chain);
    return { label: `${table}/${check.chain}`, what: 'chain', items: c?.rules.map(normalizeNft), policy: c?.base?.policy, ordered: true, normalize: normalizeNft, line: (r) => r };
  }
  return { label: table, what: 'table', items: t ? t.chains.map((c) => c.name) : undefined, ordered: false, normalize: (x: string) => x, line: (c) => `chain ${c}` };
}

function diffOf(label: string, expected: string[], actual: string[]): string {
  return listingDiff(expected.join('\n') + '\n', actual.join('\n') + '\n', { expected: 'expected', actual: `actual (${label})` }, 50) ?? '';
}

export function checkRules(rules: HostRules, check: RuleCheck, opts: CheckOptions = {}): CheckResult {
  const s = subjectOf(rules, check);
  if (typeof s === 'string') return { ok: false, message: s };
  const norm = (x: string) => s.normalize(opts.expand ? opts.expand(x) : x);
  const lines = (xs: string[]) => xs.map(s.line);
  const problems: string[] = [];
  let diff: string | undefined;

  if (check.exists === false) {
    return s.items ? { ok: false, message: `${s.what} ${s.label} exists, but should not (it has ${s.items.length} ${s.what === 'table' ? 'chains' : s.what === 'set' ? 'elements' : 'rules'})`, diff: diffOf(s.label, [], lines(s.items)) } : { ok: true, message: '' };
  }
  if (!s.items) {
    const onlyAbsent = !check.contains && !check.exact && !check.golden && !check.policy && check.exists !== true;
    return onlyAbsent ? { ok: true, message: '' } : { ok: false, message: `${s.what} ${s.label} does not exist` };
  }
  const actual = s.items;
  // sets have no order: compare sorted
  const shown = s.ordered ? actual : [...actual].sort();

  if (check.policy !== undefined && s.policy !== check.policy) {
    problems.push(`policy of ${s.label} is ${s.policy ?? '(not a base chain, none)'}, expected ${check.policy}`);
  }

  if (check.contains) {
    const want = check.contains.map(norm);
    let at = 0;
    for (const w of want) {
      const i = s.ordered ? actual.indexOf(w, at) : actual.indexOf(w);
      if (i < 0) {
        const elsewhere = actual.indexOf(w) >= 0;
        problems.push(elsewhere ? `rule out of order in ${s.label}: ${w}` : `${s.what === 'set' ? 'element' : 'rule'} missing from ${s.label}: ${w}`);
        diff ??= diffOf(s.label, lines(s.ordered ? want : [...want].sort()), lines(shown));
        break;
      }
      at = i + 1;
    }
  }

  if (check.absent) {
    for (const a of check.absent.map(norm)) {
      if (actual.includes(a)) problems.push(`${s.what === 'set' ? 'element' : 'rule'} present in ${s.label} but should be absent: ${a}`);
    }
  }

  if (check.exact) {
    const want = check.exact.map(norm);
    const w = s.ordered ? want : [...want].sort();
    if (w.join('\n') !== shown.join('\n')) {
      problems.push(`${s.label} differs from the expected ${s.what === 'set' ? 'elements' : 'rules'}`);
      diff ??= diffOf(s.label, lines(w), lines(shown));
    }
  }

  if (check.golden) {
    if (opts.updateGolden) {
      mkdirSync(dirname(check.golden), { recursive: true });
      writeFileSync(check.golden, lines(shown).join('\n') + '\n');
    } else if (!existsSync(check.golden)) {
      problems.push(`golden file ${check.golden} does not exist (write it with --update-golden)`);
    } else {
      // a golden file holds the lines as written: `-A CHAIN rule` for iptables, the rule for nft
      const want = readFileSync(check.golden, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .map((l) => s.line(norm(l))); // iptables' normalizer drops the "-A CHAIN" it finds
      const w = s.ordered ? want : [...want].sort();
      if (w.join('\n') !== lines(shown).join('\n')) {
        problems.push(`${s.label} differs from golden file ${check.golden}`);
        diff ??= diffOf(s.label, w, lines(shown));
      }
    }
  }

  return { ok: problems.length === 0, message: problems.join('\n'), diff };
}
