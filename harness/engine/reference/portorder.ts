// The order in which Docker 20.10 allocates a container's port bindings and writes their
// rules. dockerd sorts them with go-connections' nat.SortPortMap before handing them to the
// bridge driver; its comparator puts a larger explicit host port first, then a larger
// container port, then tcp, and Go's sort runs it as an insertion sort (few elements):
//   less(i, j) = hostPort(i) > hostPort(j) || port(i) > port(j) || (port(i) == port(j) && tcp(i))
// Evidence (dockerd 20.10.24, this suite's differential run): `-p 127.0.0.1:9090:80
// -p 9091:80` writes the DNAT for 9091 first; `-p 80 -p 203.0.113.2::81` allocates 81 first
// (it gets 32768 and 80, whose proxy on 0.0.0.0 then collides, gets 32769).
// The comparator is not a strict order: two bindings of one container port compare "less"
// both ways, which reverses them; where the result depends on the input order (dockerd
// iterates a Go map, so that order is random) this takes the ports in ascending order.
import type { ContainerSpec } from '../../scenario/types.js';

export interface Binding {
  containerPort: number;
  proto: 'tcp' | 'udp';
  hostIp?: string;
  hostPort?: number; // undefined: ephemeral
}

interface Entry {
  port: string; // "80/tcp"
  portInt: number;
  proto: string;
  binding?: Binding;
}

function less(a: Entry, b: Entry): boolean {
  const ha = a.binding?.hostPort ?? 0;
  const hb = b.binding?.hostPort ?? 0;
  return ha > hb || a.portInt > b.portInt || (a.portInt === b.portInt && a.proto === 'tcp');
}

/** The bindings of a container in the order dockerd allocates them (`-P` included). */
export function dockerBindingOrder(spec: ContainerSpec): Binding[] {
  const ports = new Map<string, { portInt: number; proto: 'tcp' | 'udp' }>();
  const bindings = new Map<string, Binding[]>();
  for (const x of spec.expose) ports.set(`${x.port}/${x.proto}`, { portInt: x.port, proto: x.proto });
  for (const p of spec.publish) {
    const key = `${p.containerPort}/${p.proto}`;
    ports.set(key, { portInt: p.containerPort, proto: p.proto });
    const list = bindings.get(key) ?? [];
    list.push({ containerPort: p.containerPort, proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort });
    bindings.set(key, list);
  }
  const input = [...ports.entries()].sort(([, a], [, b]) => a.portInt - b.portInt || a.proto.localeCompare(b.proto));
  const entries: Entry[] = [];
  for (const [port, { portInt, proto }] of input) {
    const bs = bindings.get(port);
    if (bs?.length) for (const binding of bs) entries.push({ port, portInt, proto, binding });
    else entries.push({ port, portInt, proto });
  }
  for (let i = 1; i < entries.length; i++) {
    for (let j = i; j > 0 && less(entries[j], entries[j - 1]); j--) [entries[j], entries[j - 1]] = [entries[j - 1], entries[j]];
  }
  // ports in order of first appearance, each with its bindings in sorted order
  const order: string[] = [];
  const sorted = new Map<string, Binding[]>();
  for (const e of entries) {
    if (!sorted.has(e.port)) {
      order.push(e.port);
      sorted.set(e.port, []);
    }
    if (e.binding) sorted.get(e.port)!.push(e.binding);
  }
  const out: Binding[] = [];
  for (const port of order) {
    const bs = sorted.get(port)!;
    out.push(...bs);
    if (spec.publishAll && bs.length === 0) out.push({ containerPort: ports.get(port)!.portInt, proto: ports.get(port)!.proto });
  }
  return out;
}

/** Where a host address sorts in Go's netip order: none first, then IPv4 by value, then IPv6. */
function hostIpKey(ip?: string): string {
  if (!ip) return '0';
  if (ip.includes(':')) return `2${ip}`;
  return `1${ip.split('.').map((o) => o.padStart(3, '0')).join('.')}`;
}

/**
 * The bindings of a container in the order Docker 28 allocates them (and writes their rules):
 * libnetwork's cmpPortBinding puts exact host ports before ephemeral ones, then orders by
 * container port, protocol (tcp before udp), host port and host address. Seen with 28.5.2:
 * `-p 80 -p 203.0.113.2::81` binds 80 first; `-p 127.0.0.1:9090:80 -p 9091:80` writes 9090 first.
 */
export function exactFirstOrder(spec: ContainerSpec): Binding[] {
  const out: Binding[] = spec.publish.map((p) => ({ containerPort: p.containerPort, proto: p.proto, hostIp: p.hostIp, hostPort: p.hostPort }));
  if (spec.publishAll) {
    const bound = new Set(out.map((b) => `${b.containerPort}/${b.proto}`));
    for (const x of spec.expose) if (!bound.has(`${x.port}/${x.proto}`)) out.push({ containerPort: x.port, proto: x.proto });
  }
  const key = (b: Binding) => [b.hostPort === undefined ? 1 : 0, b.containerPort, b.proto === 'tcp' ? 0 : 1, b.hostPort ?? 0, hostIpKey(b.hostIp)] as const;
  return out.sort((a, b) => {
    const ka = key(a);
    const kb = key(b);
    for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] < kb[i] ? -1 : 1;
    return 0;
  });
}
