// The text forms of an nftables rule set: a parser of `nft list ruleset` listings (how moby's
// nftablesdoc documents show Docker's tables, and how administrators write theirs), and the
// script that `nft -f` loads to replace a table in one transaction.
import { baseChainLine, isNftFamily, priorityValue, tableLabel, type NftChain, type NftRuleset, type NftSet, type NftTable } from './model.js';

/** Split "a, b, { c, d }" at the commas outside braces. */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '{') depth++;
    if (ch === '}') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim()) out.push(cur.trim());
  return out;
}

function parseSet(kind: 'set' | 'map', name: string, body: string): NftSet {
  const s: NftSet = { name, kind, type: '', flags: [], elements: [] };
  const elems = /elements\s*=\s*\{([\s\S]*)\}/.exec(body);
  const rest = elems ? body.replace(elems[0], '') : body;
  for (const stmt of rest.split(/[;\n]/).map((x) => x.trim()).filter(Boolean)) {
    const [word, ...more] = stmt.split(/\s+/);
    if (word === 'type') s.type = more.join(' ');
    else if (word === 'flags') s.flags = more.join(' ').split(/\s*,\s*/);
  }
  if (elems) s.elements = splitTop(elems[1].replace(/\s+/g, ' '));
  return s;
}

/**
 * A listing (`table FAMILY NAME { … }` blocks with sets, maps and chains) into the model.
 * Lines starting with # are comments. Errors name the line.
 */
export function parseNftText(text: string): NftRuleset {
  const rs: NftRuleset = [];
  const lines = text.split('\n');
  let table: NftTable | undefined;
  let chain: NftChain | undefined;
  let set: { kind: 'set' | 'map'; name: string; body: string[] } | undefined;
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const fail = (why: string) => new Error(`line ${i + 1}: ${why}: ${line}`);
    if (set) {
      if (line === '}' && set.body.join(' ').split('{').length === set.body.join(' ').split('}').length) {
        table!.sets.push(parseSet(set.kind, set.name, set.body.join('\n')));
        set = undefined;
      } else set.body.push(line);
      continue;
    }
    let m: RegExpExecArray | null;
    if (!table) {
      if (!(m = /^table\s+(\S+)\s+(\S+)\s*\{$/.exec(line))) throw fail('expected "table FAMILY NAME {"');
      if (!isNftFamily(m[1])) throw fail(`unknown family "${m[1]}"`);
      rs.push((table = { family: m[1], name: m[2], sets: [], chains: [] }));
      continue;
    }
    if (chain) {
      if (line === '}') {
        table.chains.push(chain);
        chain = undefined;
      } else if ((m = /^type\s+(\S+)\s+hook\s+(\S+)\s+priority\s+([^;]+);\s*(?:policy\s+(\w+);)?$/.exec(line))) {
        chain.base = { type: m[1], hook: m[2], priority: priorityValue(m[3], table.family), policy: m[4] ?? 'accept' };
      } else chain.rules.push(line.replace(/\s+/g, ' '));
      continue;
    }
    if (line === '}') {
      table = undefined;
    } else if ((m = /^chain\s+(\S+)\s*\{\s*(\})?$/.exec(line))) {
      chain = { name: m[1], rules: [] };
      if (m[2]) {
        table.chains.push(chain);
        chain = undefined;
      }
    } else if ((m = /^(set|map)\s+(\S+)\s*\{$/.exec(line))) {
      set = { kind: m[1] as 'set' | 'map', name: m[2], body: [] };
    } else throw fail('expected "chain NAME {", "set NAME {", "map NAME {" or "}"');
  }
  if (table || chain || set) throw new Error('unterminated block at the end of the listing');
  return rs;
}

/** A table as nft lists it (figures for priorities). */
export function tableText(t: NftTable): string {
  const out = [`table ${tableLabel(t)} {`];
  const blocks: string[][] = [];
  for (const s of t.sets) {
    const b = [`\t${s.kind} ${s.name} {`, `\t\ttype ${s.type}`];
    if (s.flags.length) b.push(`\t\tflags ${s.flags.join(',')}`);
    if (s.elements.length) b.push(`\t\telements = { ${s.elements.join(',\n\t\t\t     ')} }`);
    b.push('\t}');
    blocks.push(b);
  }
  for (const c of t.chains) blocks.push([`\tchain ${c.name} {`, ...(c.base ? [`\t\t${baseChainLine(c.base)}`] : []), ...c.rules.map((r) => `\t\t${r}`), '\t}']);
  blocks.forEach((b, i) => out.push(...(i ? [''] : []), ...b));
  out.push('}');
  return out.join('\n') + '\n';
}

/** A whole rule set as nft lists it. */
export function rulesetText(rs: NftRuleset): string {
  return rs.map(tableText).join('');
}

/**
 * The `nft -f` script that makes a table exactly this, atomically: created if missing,
 * deleted, then declared whole (deleting a table takes its chains, sets and rules with it).
 */
export function replaceTableScript(t: NftTable): string {
  return `add table ${tableLabel(t)}\ndelete table ${tableLabel(t)}\n${tableText(t)}`;
}

/** The script that removes a table (if it exists). */
export function deleteTableScript(t: Pick<NftTable, 'family' | 'name'>): string {
  return `add table ${tableLabel(t)}\ndelete table ${tableLabel(t)}\n`;
}
