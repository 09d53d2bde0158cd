// The `${…}` placeholders a Docker host's checks may use, known from the scenario alone: the
// names run/evaluate.ts's factsOf() gives values to once the engines run, so that validate can
// refuse an unknown one before any lab exists. Keep the two in step (specs/placeholders.spec.ts
// holds this set against factsOf on real runs).
import type { FactNames, FactTable } from '../rules/symbolic.js';
import type { ContainerSpec, HostSpec, Scenario } from './types.js';

/** The default bridge, which every host has. */
const DEFAULT_NETWORK = 'bridge';

/**
 * Every name factsOf(sc, host, …) can hold in any phase: more rather than fewer (a container
 * refused at start, removed or disconnected by a step keeps its names; a port counts even where
 * its network cannot publish it), so that no valid scenario is refused.
 */
export function placeholderNames(sc: Pick<Scenario, 'hosts' | 'phases'>, host: HostSpec): FactNames {
  const names: Record<FactTable, Set<string>> = { addresses: new Set(), subnets: new Set(), bridges: new Set(), ports: new Set(), hostnames: new Set(), macs: new Set() };
  for (const net of networksOf(host)) {
    names.subnets.add(net);
    names.bridges.add(net);
    names.addresses.add(`gateway:${net}`);
    if (hasIpv6(host, net)) names.addresses.add(`subnet6:${net}`).add(`gateway6:${net}`);
  }
  const connected = connectedNetworks(sc);
  const multi = sc.hosts.length > 1;
  for (const h of sc.hosts) {
    for (const c of h.containers) {
      // in a multi-host scenario host/name, and the plain name on its own host
      const refs = multi ? [c.ref, ...(h === host ? [c.name] : [])] : [c.name];
      const own = ownNetworks(c, connected);
      // --network container:X has X's addresses (not its MACs or IPv6 addresses)
      const joined = own ? undefined : joinedContainer(h, c);
      const nets = own ?? (joined && ownNetworks(joined, connected)) ?? [];
      for (const ref of refs) {
        names.hostnames.add(ref);
        if (nets.length) names.addresses.add(ref);
        for (const net of nets) names.addresses.add(`${ref}@${net}`);
        for (const net of own ?? []) names.macs.add(ref).add(`${ref}@${net}`);
        const nets6 = (own ?? []).filter((net) => hasIpv6(h, net));
        if (nets6.length) names.addresses.add(`ipv6:${ref}`);
        for (const net of nets6) names.addresses.add(`ipv6:${ref}@${net}`);
      }
    }
  }
  // published ports by the container's own name, on its host only
  for (const c of host.containers) for (const p of publishedPorts(c)) names.ports.add(`${c.name}:${p}`);
  return names;
}

/** The names of several hosts together: a check that may be taken on any of them. */
export function unionOfNames(list: FactNames[]): FactNames {
  const union = (t: FactTable) => new Set(list.flatMap((n) => [...n[t]]));
  return { addresses: union('addresses'), subnets: union('subnets'), bridges: union('bridges'), ports: union('ports'), hostnames: union('hostnames'), macs: union('macs') };
}

function networksOf(host: HostSpec): string[] {
  return [DEFAULT_NETWORK, ...host.networks.map((n) => n.name)];
}

/** An --ipv6 network, or the default bridge of a daemon with --ipv6 and its fixed-cidr-v6. */
function hasIpv6(host: HostSpec, net: string): boolean {
  if (net === DEFAULT_NETWORK) return Boolean(host.daemon.ipv6 && host.daemon['fixed-cidr-v6']);
  return host.networks.some((n) => n.name === net && n.ipv6);
}

/** Container reference → the networks `connect` steps attach it to, in any phase. */
function connectedNetworks(sc: Pick<Scenario, 'phases'>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of sc.phases.flatMap((p) => p.steps)) if (s.kind === 'connect') out.set(s.container, [...(out.get(s.container) ?? []), s.network]);
  return out;
}

/** The networks a container has endpoints on; undefined for host, none and container: modes. */
function ownNetworks(c: ContainerSpec, connected: Map<string, string[]>): string[] | undefined {
  if (c.network === 'host' || c.network === 'none' || c.network.startsWith('container:')) return undefined;
  return [...new Set([c.network, ...c.networks, ...(connected.get(c.ref) ?? [])])];
}

/** The container whose network namespace c has: X for --network container:X (followed to the end), else c. */
function joinedContainer(h: HostSpec, c: ContainerSpec): ContainerSpec | undefined {
  let at: ContainerSpec | undefined = c;
  // the loader lets container:X name only a container declared before: no cycles, but bound it anyway
  for (let hops = 0; at?.network.startsWith('container:') && hops <= h.containers.length; hops++) {
    const name = at.network.slice('container:'.length);
    at = h.containers.find((x) => x.name === name);
  }
  return at;
}

/**
 * "PORT/proto" of each IPv4 binding (factsOf reads the engines' IPv4 bindings only; an
 * IPv6-only one like [::1]:8083:80 has none), and with publish-all each exposed port.
 */
function publishedPorts(c: ContainerSpec): string[] {
  const bound = c.publish.filter((p) => !p.hostIp?.includes(':')).map((p) => `${p.containerPort}/${p.proto}`);
  const published = new Set(c.publish.map((p) => `${p.containerPort}/${p.proto}`));
  const exposed = c.publishAll ? c.expose.map((x) => `${x.port}/${x.proto}`).filter((x) => !published.has(x)) : [];
  return [...new Set([...bound, ...exposed])];
}
