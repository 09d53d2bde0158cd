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

export function expand(text: string, facts: Facts): string {
  return text.replace(/\$\{([^}]+)\}/g, (_, key: string) => {
    const [kind, ...rest] = key.split(':');
    const arg = rest.join(':');
    let v: string | number | undefined;
    if (kind === 'subnet') v = facts.subnets[arg];
    else if (kind === 'bridge') v = facts.bridges[arg];
    else if (kind === 'port') v = facts.ports[arg];
    else if (kind === 'gateway') v = facts.addresses[`gateway:${arg}`];
    else if (kind === 'hostname') v = facts.hostnames?.[arg];
    else if (kind === 'mac') v = facts.macs?.[arg];
    else v = facts.addresses[key];
    if (v === undefined) throw new Error(`unknown placeholder \${${key}} (known: ${known(facts).join(', ')})`);
    return String(v);
  });
}

function known(f: Facts): string[] {
  return [
    ...Object.keys(f.addresses).map((k) => `\${${k}}`),
    ...Object.keys(f.subnets).map((k) => `\${subnet:${k}}`),
    ...Object.keys(f.bridges).map((k) => `\${bridge:${k}}`),
    ...Object.keys(f.ports).map((k) => `\${port:${k}}`),
    ...Object.keys(f.hostnames ?? {}).map((k) => `\${hostname:${k}}`),
    ...Object.keys(f.macs ?? {}).map((k) => `\${mac:${k}}`),
  ];
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
