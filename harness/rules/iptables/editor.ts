// A rule set in memory on which an engine's firewall driver performs iptables operations with
// iptables semantics (-N -I -A -D -F -X -P), so rule order comes out exactly as the sequence
// of commands would leave it in the kernel. One iptables-restore then writes the tables that
// changed since the rules were read.
import { serializeRuleset, type Chain, type Ruleset, type Table } from './save.js';

const BUILTIN: Record<string, string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};

/** Bring a rule as a person or an engine writes it into the form iptables-save prints. */
export function normalizeRule(rule: string): string {
  let r = rule.trim().replace(/\s+/g, ' ');
  r = r.replace(/^-A \S+ /, '');
  r = r.replace(/--source /g, '-s ').replace(/--destination /g, '-d ');
  // iptables-save names the protocol match module explicitly: -p tcp -m tcp --dport 80
  r = r.replace(/(^|\s)(-p (tcp|udp|sctp))(?! -m \3)(?=\s+(?:!\s+)?--[sd]port\b)/g, '$1$2 -m $3');
  // a bare address after -s/-d is a /32
  r = r.replace(/(^|\s)((?:! )?-[sd] )(\d+\.\d+\.\d+\.\d+)(?=\s|$)/g, '$1$2$3/32');
  return r;
}

export class RuleEditor {
  private readonly tables: Table[];
  /** each table as it was read, to write only the tables that changed */
  private readonly read: Map<string, string>;

  constructor(rs: Ruleset) {
    this.tables = structuredClone(rs);
    this.read = new Map(rs.map((t) => [t.name, serializeRuleset([t])]));
  }

  private table(name: string): Table {
    let t = this.tables.find((x) => x.name === name);
    if (!t) {
      t = { name, chains: (BUILTIN[name] ?? []).map((c) => ({ name: c, policy: 'ACCEPT', rules: [] })) };
      this.tables.push(t);
    }
    return t;
  }

  private chain(table: string, chain: string): Chain {
    const c = this.table(table).chains.find((x) => x.name === chain);
    if (!c) throw new Error(`iptables: chain ${table}/${chain} does not exist`);
    return c;
  }

  hasChain(table: string, chain: string): boolean {
    return this.table(table).chains.some((x) => x.name === chain);
  }

  ensureChain(table: string, chain: string): void {
    if (!this.hasChain(table, chain)) this.table(table).chains.push({ name: chain, rules: [] });
  }

  exists(table: string, chain: string, rule: string): boolean {
    if (!this.hasChain(table, chain)) return false;
    return this.chain(table, chain).rules.includes(normalizeRule(rule));
  }

  insert(table: string, chain: string, rule: string, position = 1): void {
    const c = this.chain(table, chain);
    if (position < 1 || position > c.rules.length + 1) throw new Error(`iptables: index of insertion too big: ${position} in ${table}/${chain}`);
    c.rules.splice(position - 1, 0, normalizeRule(rule));
  }

  append(table: string, chain: string, rule: string): void {
    this.chain(table, chain).rules.push(normalizeRule(rule));
  }

  delete(table: string, chain: string, rule: string): boolean {
    if (!this.hasChain(table, chain)) return false;
    const c = this.chain(table, chain);
    const i = c.rules.indexOf(normalizeRule(rule));
    if (i < 0) return false;
    c.rules.splice(i, 1);
    return true;
  }

  flush(table: string, chain: string): void {
    this.chain(table, chain).rules = [];
  }

  deleteChain(table: string, chain: string): void {
    const t = this.table(table);
    t.chains = t.chains.filter((c) => c.name !== chain);
  }

  setPolicy(table: string, chain: string, policy: string): void {
    this.chain(table, chain).policy = policy;
  }

  /** An iptables command line as an administrator types it after "iptables". */
  command(args: string): void {
    const words = args.trim().split(/\s+/);
    let table = 'filter';
    const ti = words.indexOf('-t');
    if (ti >= 0) {
      table = words[ti + 1];
      words.splice(ti, 2);
    }
    const [op, chain, ...rest] = words;
    let spec = rest.join(' ');
    switch (op) {
      case '-N':
        return this.ensureChain(table, chain);
      case '-X':
        return this.deleteChain(table, chain);
      case '-F':
        return this.flush(table, chain);
      case '-P':
        return this.setPolicy(table, chain, rest[0]);
      case '-A':
        return this.append(table, chain, spec);
      case '-D':
        if (!this.delete(table, chain, spec)) throw new Error(`iptables: bad rule (does a matching rule exist in that chain?): ${spec}`);
        return;
      case '-I': {
        let pos = 1;
        if (/^\d+$/.test(rest[0] ?? '')) {
          pos = Number(rest[0]);
          spec = rest.slice(1).join(' ');
        }
        return this.insert(table, chain, spec, pos);
      }
      default:
        throw new Error(`iptables: unsupported command ${op}`);
    }
  }

  toRuleset(): Ruleset {
    return structuredClone(this.tables);
  }

  /**
   * The tables that differ from what was read, as iptables-restore input (a table it is not
   * given is left alone), or undefined. Each table costs iptables-nft a commit and its kernel
   * grace period, and most later batches (a link, a connect) change only filter.
   */
  changes(): string | undefined {
    const changed = this.tables.filter((t) => serializeRuleset([t]) !== this.read.get(t.name));
    return changed.length ? serializeRuleset(changed) : undefined;
  }
}
