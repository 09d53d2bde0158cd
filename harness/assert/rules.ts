// Rule-set assertions on one chain: ordered `contains`, `absent`, `exact`, `policy` and golden
// files. A failure carries a unified diff of the chain, expected against actual.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { normalizeRule } from '../rules/editor.js';
import { getChain, type Ruleset } from '../rules/ruleset.js';

export interface RuleCheck {
  table: string;
  chain: string;
  contains?: string[];
  absent?: string[];
  exact?: string[];
  golden?: string; // absolute path
  policy?: string;
  exists?: boolean; // false: the chain must not exist
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

const asLines = (chain: string, rules: string[]) => rules.map((r) => `-A ${chain} ${r}`);

function diffOf(label: string, expected: string[], actual: string[]): string {
  const patch = createTwoFilesPatch('expected', `actual (${label})`, expected.join('\n') + '\n', actual.join('\n') + '\n', '', '', { context: 50 });
  // drop the "Index:"/"====" banner; keep the ---/+++ header that says which side is which
  return patch
    .split('\n')
    .filter((l) => !/^(Index: |={10,})/.test(l))
    .map((l) => l.replace(/\t$/, ''))
    .join('\n')
    .trimEnd();
}

export function checkRules(rs: Ruleset, check: RuleCheck, opts: CheckOptions = {}): CheckResult {
  const label = `${check.table}/${check.chain}`;
  const norm = (s: string) => normalizeRule(opts.expand ? opts.expand(s) : s);
  const chain = getChain(rs, check.table, check.chain);
  const problems: string[] = [];
  let diff: string | undefined;

  if (check.exists === false) {
    return chain ? { ok: false, message: `chain ${label} exists, but should not (it has ${chain.rules.length} rules)`, diff: diffOf(label, [], asLines(check.chain, chain.rules)) } : { ok: true, message: '' };
  }
  if (!chain) {
    const onlyAbsent = !check.contains && !check.exact && !check.golden && !check.policy;
    return onlyAbsent ? { ok: true, message: '' } : { ok: false, message: `chain ${label} does not exist` };
  }
  const actual = chain.rules;

  if (check.policy !== undefined && chain.policy !== check.policy) {
    problems.push(`policy of ${label} is ${chain.policy ?? '(user chain, none)'}, expected ${check.policy}`);
  }

  if (check.contains) {
    const want = check.contains.map(norm);
    let at = 0;
    for (const w of want) {
      const i = actual.indexOf(w, at);
      if (i < 0) {
        const elsewhere = actual.indexOf(w) >= 0;
        problems.push(elsewhere ? `rule out of order in ${label}: ${w}` : `rule missing from ${label}: ${w}`);
        diff ??= diffOf(label, asLines(check.chain, want), asLines(check.chain, actual));
        break;
      }
      at = i + 1;
    }
  }

  if (check.absent) {
    for (const a of check.absent.map(norm)) {
      if (actual.includes(a)) problems.push(`rule present in ${label} but should be absent: ${a}`);
    }
  }

  if (check.exact) {
    const want = check.exact.map(norm);
    if (want.join('\n') !== actual.join('\n')) {
      problems.push(`${label} differs from the expected rules`);
      diff ??= diffOf(label, asLines(check.chain, want), asLines(check.chain, actual));
    }
  }

  if (check.golden) {
    const lines = asLines(check.chain, actual);
    if (opts.updateGolden) {
      mkdirSync(dirname(check.golden), { recursive: true });
      writeFileSync(check.golden, lines.join('\n') + '\n');
    } else if (!existsSync(check.golden)) {
      problems.push(`golden file ${check.golden} does not exist (write it with --update-golden)`);
    } else {
      const want = readFileSync(check.golden, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !l.startsWith('#'))
        .map((l) => `-A ${check.chain} ${norm(l)}`);
      if (want.join('\n') !== lines.join('\n')) {
        problems.push(`${label} differs from golden file ${check.golden}`);
        diff ??= diffOf(label, want, lines);
      }
    }
  }

  return { ok: problems.length === 0, message: problems.join('\n'), diff };
}
