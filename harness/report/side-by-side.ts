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

// nftables chains per bridge say which way packets cross it: filter-forward-in__br holds packets
// going into the bridge (oifname br), nat-postrouting-out__br those coming from it (iifname br)
const CHAIN_SIDE: [RegExp, string][] = [
  [/^filter-forward-in__(.+)$/, 'out'],
  [/^filter-forward-out__(.+)$/, 'in'],
  [/^nat-postrouting-in__(.+)$/, 'out'],
  [/^nat-postrouting-out__(.+)$/, 'in'],
];

/**
 * What a rule names, in words both backends share: source and destination addresses, ports,
 * the interfaces packets come in or go out by, connection states. A rule written as
 * `chain: rule` (nftables) gets what its chain's name implies.
 */
function namesOf(line: string): Set<string> {
  const out = new Set<string>();
  const m = /^(\S+): (.*)$/.exec(line); // the chain's name may hold a placeholder: filter-forward-in__${bridge:back}
  const rule = m && !line.startsWith('-A ') ? m[2] : line;
  if (m && !line.startsWith('-A ')) for (const [re, side] of CHAIN_SIDE) if (re.test(m[1])) out.add(`${side}:${re.exec(m[1])![1]}`);
  const addr = (a: string) => a.replace(/\/32$/, '');
  for (const x of rule.matchAll(/(!\s+)?-([sd])\s+(\S+)/g)) out.add(`${x[1] ? '!' : ''}${x[2] === 's' ? 'src' : 'dst'}:${addr(x[3])}`);
  for (const x of rule.matchAll(/ip6? ([sd])addr (!=\s+)?(\S+)/g)) out.add(`${x[2] ? '!' : ''}${x[1] === 's' ? 'src' : 'dst'}:${addr(x[3])}`);
  for (const x of rule.matchAll(/(!\s+)?-([io])\s+(\S+)/g)) out.add(`${x[1] ? '!' : ''}${x[2] === 'i' ? 'in' : 'out'}:${x[3]}`);
  for (const x of rule.matchAll(/\b([io])ifname (!=\s+)?"?([^\s"]+)"?/g)) out.add(`${x[2] ? '!' : ''}${x[1] === 'i' ? 'in' : 'out'}:${x[3]}`);
  // a verdict map's element: the key is the interface, its chain the direction
  const el = /^@\S+: (\S+) : jump (\S+)$/.exec(line);
  if (el) for (const [re, side] of CHAIN_SIDE) if (re.test(el[2])) out.add(`${side}:${el[1]}`);
  for (const x of rule.matchAll(/(?:--to-destination|dnat to|snat to|--to-source)\s+([\d.]+|\$\{[^}]+\})(?::(\d+))?/g)) {
    out.add(`to:${x[1]}`);
    if (x[2]) out.add(`toport:${x[2]}`);
  }
  for (const x of rule.matchAll(/(?:--)?([sd])port\s+(\S+)/g)) out.add(`${x[1]}port:${x[2]}`);
  if (/ctstate [A-Z,]*ESTABLISHED|ct state [a-z,]*established/.test(rule)) out.add('ct:established');
  if (/--src-type LOCAL|fib saddr type local/.test(rule)) out.add('src:local');
  if (/--dst-type LOCAL|fib daddr type local/.test(rule)) out.add('dst:local');
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
