// Two rule sets written for different backends, side by side: each rule of one beside the rule
// of the other that does the same job. iptables and nftables spell rules differently, but the
// job shows in what a rule names — addresses and subnets (symbolic: ${web}, ${subnet:back}),
// ports, interfaces — and in its verdict (accept, drop, dnat, masquerade, snat, a jump). Two
// rules with the same verdict are paired by the overlap of what they name (most similar
// first); what finds no partner stands alone.

export interface SideBySide {
  scenario: string;
  host: string;
  phase: number;
  /** [left, right]; undefined where a rule has no partner */
  rows: [string | undefined, string | undefined][];
}

const VERDICTS = ['accept', 'drop', 'dnat', 'snat', 'masquerade', 'return', 'reject'];

/** accept, drop, dnat, snat, masquerade, return, reject, or jump (to another chain, through a map). */
function verdictOf(rule: string): string {
  const target = /-j (\S+)/.exec(rule)?.[1]?.toLowerCase();
  if (target) return VERDICTS.includes(target) ? target : 'jump';
  const words = rule.replace(/comment\s+"[^"]*"/g, '').split(/\s+/);
  const last = words.reverse().find((w) => [...VERDICTS, 'jump', 'goto', 'vmap'].includes(w));
  return last && VERDICTS.includes(last) ? last : 'jump';
}

/** What a rule names: placeholders, addresses, ports and interface names. */
function namesOf(rule: string): Set<string> {
  const out = new Set<string>();
  for (const m of rule.matchAll(/\$\{[^}]+\}|\b\d+\.\d+\.\d+\.\d+(?:\/\d+)?\b/g)) out.add(m[0].replace(/\/32$/, ''));
  for (const m of rule.matchAll(/(?:-[io]|iifname|oifname)\s+(?:!=\s+)?"?([\w.*${}:-]+)"?/g)) out.add(`if:${m[1]}`);
  for (const m of rule.matchAll(/(?:--?[sd]port|[sd]port|to \S*:)\s*(\d+)/g)) out.add(`port:${m[1]}`);
  for (const m of rule.matchAll(/(?:-p|tcp|udp)\s*(tcp|udp)?\b/g)) if (m[1]) out.add(`proto:${m[1]}`);
  if (/\btcp dport|\budp dport/.test(rule)) out.add(`proto:${/\b(tcp|udp) dport/.exec(rule)![1]}`);
  return out;
}

function similarity(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 0;
  let both = 0;
  for (const x of a) if (b.has(x)) both++;
  return both / (a.size + b.size - both);
}

/** Pair the rules of two listings; the right side's order leads. */
export function pairRules(left: string[], right: string[], threshold = 0.5): Pick<SideBySide, 'rows'> {
  const L = left.map((r) => ({ r, v: verdictOf(r), n: namesOf(r) }));
  const R = right.map((r) => ({ r, v: verdictOf(r), n: namesOf(r) }));
  const candidates: { i: number; j: number; s: number }[] = [];
  L.forEach((l, i) =>
    R.forEach((r, j) => {
      if (l.v !== r.v) return;
      const s = similarity(l.n, r.n);
      if (s >= threshold) candidates.push({ i, j, s });
    }),
  );
  candidates.sort((a, b) => b.s - a.s || a.j - b.j || a.i - b.i);
  const leftOf = new Map<number, number>();
  const usedLeft = new Set<number>();
  for (const c of candidates) {
    if (leftOf.has(c.j) || usedLeft.has(c.i)) continue;
    leftOf.set(c.j, c.i);
    usedLeft.add(c.i);
  }
  const rows: SideBySide['rows'] = R.map((r, j) => [leftOf.has(j) ? L[leftOf.get(j)!].r : undefined, r.r]);
  L.forEach((l, i) => {
    if (!usedLeft.has(i)) rows.push([l.r, undefined]);
  });
  return { rows };
}
