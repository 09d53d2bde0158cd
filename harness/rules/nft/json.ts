// A parser of `nft -j list ruleset` (libnftables' JSON schema, nft 1.0+) into the model, with
// each rule's expressions rendered back into the text `nft list ruleset` prints for them.
// The renderer covers what container engines and administrators write (matches on payload,
// meta, ct and fib, sets and verdict maps, NAT, counters, marks, tracing, log, limit, reject);
// anything else is shown as its JSON so a rule is never lost. specs/nft.spec.ts holds it to
// nft's own text for every construct the engines' layouts use.
import type { NftChain, NftRuleset, NftSet, NftTable } from './model.js';
import { isNftFamily } from './model.js';

type J = any; // the JSON schema is wide; each renderer below checks the shape it reads

// meta keys nft prints without the "meta" keyword (nft(8), META EXPRESSION)
const BARE_META = new Set(['iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'skuid', 'skgid', 'rtclassid', 'iifgroup', 'oifgroup', 'cgroup', 'ibrname', 'obrname', 'ibrport', 'obrport']);
const NAME_KEYS = new Set(['iifname', 'oifname', 'ibrname', 'obrname']);

function quoted(s: string): string {
  return `"${s.replace(/"/g, '\\"')}"`;
}

/** A value on the right of a match; strings compared with interface names are quoted, as nft does. */
function value(v: J, quoteStrings = false): string {
  if (typeof v === 'string') return v.startsWith('@') || !quoteStrings ? v : quoted(v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map((x) => value(x, quoteStrings)).join(','); // a bitmask: established,related
  return expr(v, quoteStrings);
}

export function expr(e: J, quoteStrings = false): string {
  if (e === null || typeof e !== 'object' || Array.isArray(e)) return value(e, quoteStrings);
  const [kind, body] = Object.entries(e)[0] as [string, J];
  switch (kind) {
    case 'payload':
      return body.protocol ? `${body.protocol} ${body.field}` : `@${body.base},${body.offset},${body.len}`;
    case 'meta':
      return BARE_META.has(body.key) ? body.key : `meta ${body.key}`;
    case 'ct':
      return ['ct', body.dir, body.family, body.key].filter(Boolean).join(' ');
    case 'fib':
      return `fib ${(body.flags ?? []).join(' . ')} ${body.result}`;
    case 'prefix':
      return `${body.addr}/${body.len}`;
    case 'range':
      return `${value(body[0])}-${value(body[1])}`;
    case 'set':
      return `{ ${(Array.isArray(body) ? body : [body]).map((x: J) => (Array.isArray(x) ? `${value(x[0], quoteStrings)} : ${statement(x[1])}` : value(x, quoteStrings))).join(', ')} }`;
    case 'concat':
      return body.map((x: J) => expr(x, quoteStrings)).join(' . ');
    case 'elem':
      return value(body.val, quoteStrings);
    case 'map':
      return `${expr(body.key)} map ${value(body.data)}`;
    case '&':
    case '|':
    case '^':
    case '<<':
    case '>>':
      return `${expr(body[0])} ${kind} ${value(body[1])}`;
    default: // hashes, numgen …: shown as they are, never dropped
      return JSON.stringify(e);
  }
}

function nat(kind: string, b: J): string {
  if (!b) return kind;
  const fam = b.family ? ` ${b.family}` : '';
  const addr = b.addr === undefined ? '' : typeof b.addr === 'string' && b.addr.includes(':') && b.port !== undefined ? `[${b.addr}]` : expr(b.addr);
  const port = b.port === undefined ? '' : `:${expr(b.port)}`;
  const flags = b.flags ? ` ${[].concat(b.flags).join(',')}` : '';
  return addr || port ? `${kind}${fam} to ${addr}${port}${flags}` : `${kind}${flags}`;
}

export function statement(s: J): string {
  const [kind, b] = Object.entries(s)[0] as [string, J];
  switch (kind) {
    case 'match': {
      const quote = b.left?.meta && NAME_KEYS.has(b.left.meta.key);
      const left = expr(b.left);
      // marks print as 32-bit hex figures (meta mark 0x00000001)
      const mark = typeof b.right === 'number' && (b.left?.meta?.key === 'mark' || b.left?.ct?.key === 'mark');
      const right = mark ? `0x${b.right.toString(16).padStart(8, '0')}` : value(b.right, quote);
      return b.op === '==' || b.op === 'in' ? `${left} ${right}` : `${left} ${b.op} ${right}`;
    }
    case 'counter':
      return typeof b === 'string' ? `counter name ${b}` : 'counter';
    case 'accept':
    case 'drop':
    case 'continue':
    case 'return':
    case 'notrack':
      return kind;
    case 'jump':
    case 'goto':
      return `${kind} ${b.target}`;
    case 'vmap':
      return `${expr(b.key)} vmap ${value(b.data)}`;
    case 'dnat':
    case 'snat':
    case 'masquerade':
      return nat(kind, b);
    case 'redirect':
      return b?.port !== undefined ? `redirect to :${expr(b.port)}` : 'redirect';
    case 'reject':
      return b ? `reject with ${b.type === 'tcp reset' ? 'tcp reset' : `${b.type} ${b.expr ?? ''}`.trim()}` : 'reject';
    case 'log':
      return ['log', b?.prefix !== undefined ? `prefix ${quoted(b.prefix)}` : '', b?.level ? `level ${b.level}` : '', b?.group !== undefined ? `group ${b.group}` : ''].filter(Boolean).join(' ');
    case 'limit':
      // nft leaves out the default burst (5 packets)
      return `limit rate ${b.inv ? 'over ' : ''}${b.rate}${b.rate_unit && b.rate_unit !== 'packets' ? ` ${b.rate_unit}` : ''}/${b.per}${b.burst && !(b.burst === 5 && (b.burst_unit ?? 'packets') === 'packets') ? ` burst ${b.burst} ${b.burst_unit ?? 'packets'}` : ''}`;
    case 'mangle':
      return `${expr(b.key)} set ${value(b.value)}`;
    case 'xt':
      return `xt ${b.type} ${quoted(b.name)}`;
    case 'set':
      return `${b.op} ${b.set} { ${expr(b.elem)} }`;
    default:
      return JSON.stringify(s);
  }
}

/** A rule's statements as nft prints them, its comment last. */
export function ruleText(r: { expr?: J[]; comment?: string }): string {
  const parts = (r.expr ?? []).map(statement);
  if (r.comment !== undefined) parts.push(`comment ${quoted(r.comment)}`);
  return parts.join(' ');
}

function element(e: J, kind: 'set' | 'map', quote: boolean): string {
  if (kind === 'map' && Array.isArray(e)) return `${value(e[0], quote)} : ${typeof e[1] === 'object' && e[1] && !Array.isArray(e[1]) && ('jump' in e[1] || 'goto' in e[1] || 'accept' in e[1] || 'drop' in e[1]) ? statement(e[1]) : value(e[1])}`;
  return value(e, quote);
}

/** The model of `nft -j list ruleset` output. */
export function parseNftJson(text: string): NftRuleset {
  const doc = JSON.parse(text) as { nftables?: J[] };
  const tables = new Map<string, NftTable>();
  const tableOf = (family: string, name: string): NftTable => {
    const key = `${family} ${name}`;
    let t = tables.get(key);
    if (!t) {
      if (!isNftFamily(family)) throw new Error(`nft -j: unknown family "${family}"`);
      tables.set(key, (t = { family, name, sets: [], chains: [] }));
    }
    return t;
  };
  const chains = new Map<string, NftChain>();
  for (const item of doc.nftables ?? []) {
    const [kind, b] = Object.entries(item)[0] as [string, J];
    if (kind === 'table') tableOf(b.family, b.name);
    else if (kind === 'chain') {
      const c: NftChain = { name: b.name, rules: [] };
      if (b.hook) c.base = { type: b.type, hook: b.hook, priority: Number(b.prio), policy: b.policy ?? 'accept' };
      tableOf(b.family, b.table).chains.push(c);
      chains.set(`${b.family} ${b.table} ${b.name}`, c);
    } else if (kind === 'set' || kind === 'map') {
      const type = [].concat(b.type).join(' . ') + (kind === 'map' ? ` : ${b.map}` : '');
      const quote = /ifname/.test(String(b.type));
      const s: NftSet = { name: b.name, kind, type, flags: [].concat(b.flags ?? []), elements: (b.elem ?? []).map((e: J) => element(e, kind, quote)) };
      tableOf(b.family, b.table).sets.push(s);
    } else if (kind === 'rule') {
      const c = chains.get(`${b.family} ${b.table} ${b.chain}`);
      if (!c) throw new Error(`nft -j: rule in unknown chain ${b.family} ${b.table} ${b.chain}`);
      c.rules.push(ruleText(b));
    }
  }
  return [...tables.values()];
}
