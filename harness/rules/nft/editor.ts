// A table a firewall driver owns, edited in memory with the operations moby's nftables
// package offers (daemon/libnetwork/internal/nftables): base chains, chains, verdict maps and
// their elements, and rules placed in numbered groups (a chain lists its groups in ascending
// order, each group's rules in the order they were added). Nobody else writes the table, so
// it is never read back: a change marks it dirty, and the backend (backend.ts) replaces it in
// the kernel in one transaction.
import type { NftBaseChain, NftFamily, NftTable } from './model.js';

interface ChainState {
  base?: NftBaseChain;
  groups: Map<number, string[]>;
}

interface MapState {
  kind: 'set' | 'map';
  type: string;
  /** key → element text, in the order they were added */
  elements: Map<string, string>;
}

export class NftTableEditor {
  private chains = new Map<string, ChainState>();
  private sets = new Map<string, MapState>();
  /** changed since the last commit */
  dirty = true;

  constructor(
    readonly family: NftFamily,
    readonly name: string,
  ) {}

  /** Start over with an empty table (moby re-creates its tables at every daemon start). */
  reset(): void {
    this.chains = new Map();
    this.sets = new Map();
    this.dirty = true;
  }

  private chain(name: string): ChainState {
    const c = this.chains.get(name);
    if (!c) throw new Error(`nftables: chain ${this.family} ${this.name} ${name} does not exist`);
    return c;
  }

  hasChain(name: string): boolean {
    return this.chains.has(name);
  }

  baseChain(name: string, base: NftBaseChain): void {
    if (this.chains.has(name)) throw new Error(`nftables: chain ${name} exists`);
    this.chains.set(name, { base, groups: new Map() });
    this.dirty = true;
  }

  addChain(name: string): void {
    if (this.chains.has(name)) throw new Error(`nftables: chain ${name} exists`);
    this.chains.set(name, { groups: new Map() });
    this.dirty = true;
  }

  /** Delete a chain (it must be empty: as nft refuses otherwise). */
  deleteChain(name: string): void {
    const c = this.chain(name);
    if ([...c.groups.values()].some((g) => g.length)) throw new Error(`nftables: cannot delete chain ${name}, it is not empty`);
    this.chains.delete(name);
    this.dirty = true;
  }

  /** Empty a chain's rules. */
  flushChain(name: string): void {
    this.chain(name).groups = new Map();
    this.dirty = true;
  }

  /** Add a rule at the end of its group; an existing one is an error unless ignoreExist. */
  addRule(chain: string, group: number, rule: string, opts: { ignoreExist?: boolean } = {}): void {
    const c = this.chain(chain);
    const g = c.groups.get(group) ?? [];
    if (g.includes(rule)) {
      if (opts.ignoreExist) return;
      throw new Error(`nftables: rule exists in ${chain} (group ${group}): ${rule}`);
    }
    g.push(rule);
    c.groups.set(group, g);
    this.dirty = true;
  }

  /** Delete a rule from its group; true when it was there. */
  deleteRule(chain: string, group: number, rule: string): boolean {
    const g = this.chains.get(chain)?.groups.get(group);
    const i = g?.indexOf(rule) ?? -1;
    if (i < 0) return false;
    g!.splice(i, 1);
    this.dirty = true;
    return true;
  }

  addMap(name: string, type: string): void {
    if (this.sets.has(name)) throw new Error(`nftables: map ${name} exists`);
    this.sets.set(name, { kind: 'map', type, elements: new Map() });
    this.dirty = true;
  }

  /** An element `key : verdict` (key as nft prints it, e.g. "docker0" quoted for ifname maps). */
  addElement(map: string, key: string, verdict: string): void {
    const m = this.sets.get(map);
    if (!m) throw new Error(`nftables: map ${map} does not exist`);
    if (m.elements.has(key)) throw new Error(`nftables: element ${key} exists in ${map}`);
    m.elements.set(key, `${key} : ${verdict}`);
    this.dirty = true;
  }

  deleteElement(map: string, key: string): boolean {
    const gone = this.sets.get(map)?.elements.delete(key) ?? false;
    if (gone) this.dirty = true;
    return gone;
  }

  toTable(): NftTable {
    return {
      family: this.family,
      name: this.name,
      sets: [...this.sets].map(([name, s]) => ({ name, kind: s.kind, type: s.type, flags: [], elements: [...s.elements.values()] })),
      chains: [...this.chains].map(([name, c]) => ({
        name,
        ...(c.base ? { base: c.base } : {}),
        rules: [...c.groups].sort(([a], [b]) => a - b).flatMap(([, rules]) => rules),
      })),
    };
  }
}
