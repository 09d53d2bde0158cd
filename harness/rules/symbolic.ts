// Placeholders that make rule texts independent of one run's concrete names: scenarios write
// ${web} for a container's address; differential comparisons turn concrete names back into them.

export interface Facts {
  /** name → IPv4: "web", "web@backend", "gateway:backend" */
  addresses: Record<string, string>;
  /** network name → CIDR */
  subnets: Record<string, string>;
  /** network name → bridge interface */
  bridges: Record<string, string>;
  /** "web:80/tcp" → host port */
  ports: Record<string, number>;
  /** container reference → hostname */
  hostnames?: Record<string, string>;
  /** container reference (and reference@network) → MAC address */
  macs?: Record<string, string>;
}

export type FactTable = keyof Facts;

/** The names each table of Facts holds, without their values: what a placeholder may name. */
export type FactNames = Record<FactTable, ReadonlySet<string>>;

/**
 * The key grammar, the one place it is spelled: `${kind:arg}` looks `arg` up in the kind's
 * table; any other key (`web`, `web@back`, `gateway:back`, `ipv6:web`, `subnet6:back`) is
 * looked up whole among the addresses.
 */
const TABLE_OF_KIND = new Map<string, FactTable>([
  ['subnet', 'subnets'],
  ['bridge', 'bridges'],
  ['port', 'ports'],
  ['hostname', 'hostnames'],
  ['mac', 'macs'],
]);
const KIND_OF_TABLE = new Map([...TABLE_OF_KIND].map(([kind, table]) => [table, kind]));

/** Where a placeholder's key is looked up. */
export function slotOf(key: string): { table: FactTable; name: string } {
  const colon = key.indexOf(':');
  const table = colon < 0 ? undefined : TABLE_OF_KIND.get(key.slice(0, colon));
  return table ? { table, name: key.slice(colon + 1) } : { table: 'addresses', name: key };
}

/** The key that looks `name` up in `table`: slotOf's inverse. */
export function keyFor(table: FactTable, name: string): string {
  const kind = KIND_OF_TABLE.get(table);
  return kind ? `${kind}:${name}` : name;
}

const PLACEHOLDER = /\$\{([^}]+)\}/g;

/** The `${…}` placeholders of a text, with the offset of each `$`. */
export function placeholdersIn(text: string): { key: string; index: number }[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => ({ key: m[1], index: m.index }));
}

export function namesOf(f: Facts): FactNames {
  const names = (r?: Record<string, unknown>) => new Set(Object.keys(r ?? {}));
  return { addresses: names(f.addresses), subnets: names(f.subnets), bridges: names(f.bridges), ports: names(f.ports), hostnames: names(f.hostnames), macs: names(f.macs) };
}

export function isKnown(key: string, names: FactNames): boolean {
  const { table, name } = slotOf(key);
  return names[table].has(name);
}

export function expand(text: string, facts: Facts): string {
  return text.replace(PLACEHOLDER, (_, key: string) => {
    const { table, name } = slotOf(key);
    const values = facts[table] ?? {};
    // own keys only: ${constructor} is no placeholder
    const v: string | number | undefined = Object.hasOwn(values, name) ? values[name] : undefined;
    if (v === undefined) throw new Error(`unknown placeholder \${${key}} (known: ${describeKnown(namesOf(facts))})`);
    return String(v);
  });
}

/** How many names of one group a message lists before it says how many more there are. */
const SHOWN = 12;

/**
 * The known placeholders, short enough to read: containers' addresses in full, the other
 * kinds by the names they take, kinds that take the same names in one group
 * (`${gateway:X}, ${subnet:X}, ${bridge:X} for X in bridge, back`), each list cut at SHOWN.
 */
export function describeKnown(names: FactNames): string {
  const cut = (xs: string[]) => (xs.length > SHOWN ? [...xs.slice(0, SHOWN), `… ${xs.length - SHOWN} more`] : xs).join(', ');
  const keys = (Object.keys(names) as FactTable[]).flatMap((t) => [...names[t]].map((n) => keyFor(t, n)));
  // a container's reference has no colon: a key with one is kind:name
  const plain = keys.filter((k) => !k.includes(':'));
  const namesByKind = new Map<string, string[]>();
  for (const k of keys.filter((x) => x.includes(':'))) {
    const [kind, name] = [k.slice(0, k.indexOf(':')), k.slice(k.indexOf(':') + 1)];
    namesByKind.set(kind, [...(namesByKind.get(kind) ?? []), name]);
  }
  // kinds that take the same names, in one group (keyed by the names, one a line)
  const kindsByNames = new Map<string, string[]>();
  for (const [kind, ns] of namesByKind) kindsByNames.set(ns.join('\n'), [...(kindsByNames.get(ns.join('\n')) ?? []), kind]);
  // MACs are usually known by the same names as the addresses: say so rather than list them twice
  const sameAsPlain = (ns: string[]) => plain.length > 1 && ns.length === plain.length && ns.every((n) => plain.includes(n));
  const groups = [...kindsByNames].map(([joined, kinds]) => {
    const ns = joined.split('\n');
    if (ns.length === 1) return kinds.map((k) => `\${${k}:${ns[0]}}`).join(', ');
    return `${kinds.map((k) => `\${${k}:X}`).join(', ')} for ${sameAsPlain(ns) ? 'each ${X} above' : `X in ${cut(ns)}`}`;
  });
  return [...(plain.length ? [cut(plain.map((k) => `\${${k}}`))] : []), ...groups].join('; ') || 'none';
}

/**
 * Concrete addresses, subnets and interface names back to placeholders, published host ports
 * (`--dport N`) to ${port:…}, veth names to veth*: what differs between two engines, or two
 * runs, that built the same lab.
 */
export function symbolize(rule: string, facts: Facts, opts: { ports?: boolean } = {}): string {
  const pairs: [string, string][] = [
    ...Object.entries(facts.subnets).map(([k, v]) => [v, `\${subnet:${k}}`] as [string, string]),
    ...Object.entries(facts.bridges).map(([k, v]) => [v, `\${bridge:${k}}`] as [string, string]),
    // a container's plain name comes before its name@network, so it wins for a shared address
    ...Object.entries(facts.addresses).map(([k, v]) => [v, `\${${k}}`] as [string, string]),
  ];
  // the first symbol of a concrete name wins; longest first, so 172.17.0.12 is not eaten by
  // 172.17.0.1; one pass, so a symbol put in (${subnet:bridge1}) is not rewritten again when a
  // bridge is named like its network (bridge1)
  const symbolOf = new Map<string, string>();
  for (const [concrete, symbol] of pairs) if (concrete && !symbolOf.has(concrete)) symbolOf.set(concrete, symbol);
  const alternatives = [...symbolOf.keys()].sort((a, b) => b.length - a.length).map((c) => c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'));
  // a name stands alone, or ends an nftables chain name (filter-forward-in__br-1a2b)
  const re = new RegExp(`(?:(?<![\\w.-])|(?<=__))(?:${alternatives.join('|')})(?![\\w-]|\\.\\d)`, 'g');
  const out = alternatives.length ? rule.replace(re, (m) => symbolOf.get(m)!) : rule;
  // published host ports by name, so that ephemeral ports compare across engines (unless the
  // ports are part of what is compared, as in a document that publishes 8080)
  const portKey = new Map<number, string>();
  if (opts.ports !== false) for (const [k, p] of Object.entries(facts.ports)) if (!portKey.has(p)) portKey.set(p, k);
  return out
    .replace(/(--dport )(\d+)\b/g, (m, flag: string, n: string) => (portKey.has(Number(n)) ? `${flag}\${port:${portKey.get(Number(n))}}` : m))
    .replace(/\bveth[0-9a-f]+\b/g, 'veth*');
}
