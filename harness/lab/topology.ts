// The fixed part of every lab, around the engines: the Docker hosts, the `lan` they sit on,
// LAN peers, further L2 segments, and the outside world.
//
//   wan namespace: the upstream router. Its bridge lan0 is the lan's switch (router address on
//   it); further segments are bridges seg-<name> without an address. Switch ports are named
//   h<i> (host i's eth0), h<i>n<k> (host i's k-th further NIC) and p<j> (peer j), so a step
//   `on: lan` can configure one (e.g. hairpin). Outside servers are /32s on
//   its lo. It has no default route, so nothing can leave the lab.
//   one namespace per Docker host: eth0 is a veth into lan0, default route via the router;
//   further NICs (eth1 …) are veths into their segment.
//   one namespace per lan peer (peer-<name>): eth0 into lan0, default route via the router.
//   A segment with `switch: ovs` is an Open vSwitch bridge seg-<name> instead, run by the
//   lab's own OVS daemons in the wan namespace (lab/ovs.ts); its ports are the same veths.
//   A dual-stack lab (`ipv6: true`) adds the IPv6 plan beside: the router 2001:db8:1::fe on
//   lan0, hosts and peers 2001:db8:1::N/64 with a default route via it, outside servers as /128s
//   on wan's lo. Addresses skip duplicate address detection (nodad, accept_dad=0): a lab's
//   addresses are unique by construction, and DAD would delay every probe by a second or more.
import { iptablesTools, type IptablesVariant } from '../rules/iptables/tools.js';
import type { HostSpec, PeerSpec, Scenario } from '../scenario/types.js';
import type { Lab } from './lab.js';
import { OvsSwitch } from './ovs.js';
import { Firewalld, firewalldOf } from './firewalld.js';

export const WAN = 'wan';
/** The Docker host of a single-host scenario. */
export const HOST = 'host';
export const LAN_BRIDGE = 'lan0';

/** Sysctls of a freshly booted machine: forwarding off, so the engine must turn it on. */
const HOST_DEFAULT_SYSCTLS: Record<string, string> = { 'net.ipv4.ip_forward': '0' };
const HOST_DEFAULT_SYSCTLS6: Record<string, string> = { 'net.ipv6.conf.all.forwarding': '0' };
/** set in every namespace of a dual-stack lab before its interfaces exist (they inherit default) */
const NO_DAD: Record<string, string> = { 'net.ipv6.conf.all.accept_dad': '0', 'net.ipv6.conf.default.accept_dad': '0' };

/** Lab namespace of a Docker host (its name: "host" in single-host scenarios). */
export const hostNs = (h: HostSpec | string) => (typeof h === 'string' ? h : h.name);
export const peerNs = (p: PeerSpec | string) => `peer-${typeof p === 'string' ? p : p.name}`;
export const segmentBridge = (segment: string) => `seg-${segment}`;

export async function buildTopology(lab: Lab, sc: Scenario): Promise<void> {
  await lab.addNamespaces([WAN, ...sc.hosts.map(hostNs), ...sc.lan.peers.map(peerNs)]);
  if (sc.ipv6) await Promise.all([WAN, ...sc.hosts.map(hostNs), ...sc.lan.peers.map(peerNs)].map((n) => lab.setSysctls(n, NO_DAD)));
  const prefix = sc.lan.subnet.split('/')[1];
  const wan: string[] = [
    'link set lo up',
    `link add ${LAN_BRIDGE} type bridge`,
    `addr add ${sc.lan.router}/${prefix} dev ${LAN_BRIDGE}`,
    ...(sc.lan.router6 ? [`addr add ${sc.lan.router6}/${sc.lan.subnet6!.split('/')[1]} dev ${LAN_BRIDGE} nodad`] : []),
    ...sc.wan.servers6.map((s) => `addr add ${s}/128 dev lo`),
    `link set ${LAN_BRIDGE} up`,
    ...sc.segments.filter((s) => !sc.ovsSegments.includes(s)).flatMap((s) => [`link add ${segmentBridge(s)} type bridge`, `link set ${segmentBridge(s)} up`]),
    ...sc.wan.servers.map((s) => `addr add ${s}/32 dev lo`),
  ];
  // OVS segment → its ports; they are plugged in by ovs-vsctl once the veths exist
  const ovsPorts = new Map(sc.ovsSegments.map((s) => [s, [] as string[]]));
  const plug = (port: string, segment: string) => {
    const ports = ovsPorts.get(segment);
    if (ports) ports.push(port);
    return ports ? `link set ${port} up` : `link set ${port} master ${segment === 'lan' ? LAN_BRIDGE : segmentBridge(segment)} up`;
  };
  // wan-side port names are short and positional: interface names have 15 characters at most
  sc.hosts.forEach((h, i) => {
    wan.push(`link add h${i} type veth peer name eth0 netns ${lab.ns(hostNs(h))}`, `link set h${i} master ${LAN_BRIDGE} up`);
    Object.entries(h.nics).forEach(([nic, segment], k) => {
      wan.push(`link add h${i}n${k} type veth peer name ${nic} netns ${lab.ns(hostNs(h))}`, plug(`h${i}n${k}`, segment));
    });
  });
  sc.lan.peers.forEach((p, j) => {
    wan.push(`link add p${j} type veth peer name eth0 netns ${lab.ns(peerNs(p))}`, plug(`p${j}`, p.segment));
  });
  await lab.ip(WAN, wan);

  await Promise.all([
    ...(ovsPorts.size ? [buildOvs(lab, ovsPorts)] : []),
    ...sc.hosts.map(async (h) => {
      await Promise.all([
        lab.ip(hostNs(h), [
          'link set lo up',
          `addr add ${h.address} dev eth0`,
          ...(h.address6 ? [`addr add ${h.address6} dev eth0 nodad`] : []),
          ...h.extraAddresses.map((a) => `addr add ${a} dev eth0${a.includes(':') ? ' nodad' : ''}`),
          'link set eth0 up',
          ...Object.keys(h.nics).map((nic) => `link set ${nic} up`),
          `route add default via ${h.gateway} dev eth0`,
          ...(h.address6 ? [`route add ::/0 via ${sc.lan.router6} dev eth0`] : []),
        ]),
        lab.setSysctls(hostNs(h), { ...HOST_DEFAULT_SYSCTLS, ...(sc.ipv6 ? HOST_DEFAULT_SYSCTLS6 : {}), ...h.sysctls }),
      ]);
      for (const rule of h.rules) await iptables(lab, hostNs(h), rule, h.iptables);
      for (const cmd of h.nft) await nft(lab, hostNs(h), cmd);
      // the host firewall comes up before the engine, as on a booted machine (a daemon pool
      // that lends its host namespace started one there before its dockerd)
      if (h.firewalld && !lab.isAdopted(hostNs(h)) && !firewalldOf(lab, hostNs(h))) await Firewalld.start(lab, hostNs(h));
    }),
    ...sc.lan.peers.map(async (p) => {
      await lab.ip(peerNs(p), [
        'link set lo up',
        // A peer routing loopback addresses to a host (the attack on ports published on
        // 127.0.0.1, moby#45610) must not keep delivering them to its own lo first.
        ...(p.routes.some((r) => inLoopback(r.dest)) ? ['route del local 127.0.0.0/8 dev lo table local', 'route del local 127.0.0.1 dev lo table local'] : []),
        `addr add ${p.address} dev eth0`,
        ...(p.address6 ? [`addr add ${p.address6} dev eth0 nodad`] : []),
        'link set eth0 up',
        // a peer on the lan has the router as its gateway; one on another segment has none
        ...(p.segment === 'lan' ? [`route add default via ${sc.lan.router} dev eth0`] : []),
        ...(p.segment === 'lan' && p.address6 ? [`route add ::/0 via ${sc.lan.router6} dev eth0`] : []),
        ...p.routes.map((r) => `route replace ${routeDest(r.dest)} via ${routeVia(sc, r.via, isV6Route(r.dest))} dev eth0`),
      ]);
      await lab.setSysctls(peerNs(p), p.sysctls);
    }),
  ]);
}

/** The lab's OVS, and its bridges with their ports in one transaction (an untagged port is a trunk of every VLAN). */
async function buildOvs(lab: Lab, ports: Map<string, string[]>): Promise<void> {
  const sw = await OvsSwitch.start(lab, WAN);
  await sw.vsctl([...ports].flatMap(([segment, ps]) => ['--', 'add-br', segmentBridge(segment), ...ps.flatMap((p) => ['--', 'add-port', segmentBridge(segment), p])]));
}

/** An administrator's `ovs-vsctl` command on the lab's Open vSwitch ("set port h0n0 tag=100"). */
/**
 * `ovs-vsctl` commands on the lab's Open vSwitch, in one process and one transaction
 * (`ovs-vsctl -- CMD1 -- CMD2`): ovs-vswitchd applies them together, and the call returns once
 * it has. A command that fails fails them all, naming itself.
 */
export async function ovsVsctl(lab: Lab, commands: string[]): Promise<void> {
  const sw = OvsSwitch.of(lab);
  if (!sw) throw new Error('this lab has no Open vSwitch (no segment with switch: ovs)');
  await sw.vsctl(commands.flatMap((c) => ['--', ...splitArgs(c)]));
}

const inLoopback = (dest: string) => dest.startsWith('127.');

/** An IPv6 route (an IPv6 prefix, or default6: the IPv6 default route). */
const isV6Route = (dest: string) => dest === 'default6' || dest.includes(':');
const routeDest = (dest: string) => (dest === 'default6' ? '::/0' : dest);

function routeVia(sc: Scenario, via: string, v6 = false): string {
  if (via === 'router') return v6 ? sc.lan.router6! : sc.lan.router;
  const h = sc.hosts.find((x) => x.name === via);
  if (!h) return via;
  return (v6 ? h.address6! : h.address).split('/')[0];
}

/** Give `wan` routes to container subnets via their host (a neighbour that routes to them). */
export async function routeWanTo(lab: Lab, routes: { subnet: string; via: string }[]): Promise<void> {
  await lab.ip(
    WAN,
    routes.map((r) => `route replace ${r.subnet} via ${r.via} dev ${LAN_BRIDGE}`),
  );
}

/**
 * An administrator's iptables command in a lab namespace ("-I DOCKER-USER -s 1.2.3.4 -j DROP"),
 * with the host's variant (iptables-nft or iptables-legacy; unset: the machine's `iptables`).
 */
export async function iptables(lab: Lab, ns: string, rule: string, variant?: IptablesVariant, family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<void> {
  const tool = variant ? iptablesTools(variant, family).iptables : family === 'ipv6' ? 'ip6tables' : 'iptables';
  await lab.exec(ns, tool, splitArgs(rule));
}

/** An administrator's nft command in a lab namespace ("add table inet admin"). */
export async function nft(lab: Lab, ns: string, command: string): Promise<void> {
  await lab.exec(ns, 'nft', splitArgs(command));
}

/** An administrator's `ip` commands in a lab namespace ("link set eth1 master docker0"), one batch. */
export async function ipCommands(lab: Lab, ns: string, commands: string[]): Promise<void> {
  await lab.ip(ns, commands);
}

/** An administrator's `bridge` commands in a lab namespace ("vlan add dev h0n0 vid 10 pvid untagged"), one batch. */
export async function bridgeCommands(lab: Lab, ns: string, commands: string[]): Promise<void> {
  await lab.run('bridge', ['-n', lab.ns(ns), '-batch', '-'], { input: commands.join('\n') + '\n' });
}

function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}
