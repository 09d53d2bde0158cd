// Docker's inspect answers as the harness's engine facts: networks (bridge, subnet, gateway),
// containers (namespaces, addresses), and the host ports the engine actually bound.
import type Dockerode from 'dockerode';
import type { ContainerSpec } from '../../scenario/types.js';
import type { ContainerInfo, NetworkInfo, PortBinding } from '../types.js';
import { bigToIp6, network6Of, parseCidr6 } from '../../util/ipv6.js';

const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';

/** The kernel interface of a network: docker0, the named bridge, br-<12 hex of the id>, or the macvlan parent. */
export function bridgeOf(n: Dockerode.NetworkInspectInfo): string {
  if (n.Options?.[OPT_BRIDGE_NAME]) return n.Options[OPT_BRIDGE_NAME];
  if (n.Driver === 'bridge') return `br-${n.Id.slice(0, 12)}`;
  return n.Options?.parent ?? '';
}

export function networkInfo(name: string, n: Dockerode.NetworkInspectInfo): NetworkInfo {
  const cfg = (n.IPAM?.Config ?? []).find((c) => c.Subnet && !c.Subnet.includes(':')) ?? {};
  const cfg6 = n.EnableIPv6 ? (n.IPAM?.Config ?? []).find((c) => c.Subnet?.includes(':')) : undefined;
  // dockerd leaves the IPv6 gateway out when it chose it (the subnet's first address)
  const v6 = cfg6?.Subnet ? { subnet6: network6Of(cfg6.Subnet), gateway6: cfg6.Gateway || bigToIp6(parseCidr6(cfg6.Subnet).base + 1n) } : {};
  return { name, driver: n.Driver === 'macvlan' ? 'macvlan' : 'bridge', bridge: bridgeOf(n), subnet: cfg.Subnet ?? '', gateway: cfg.Gateway ?? '', internal: n.Internal ?? false, ...v6 };
}

export function modeOf(network: string): ContainerInfo['mode'] {
  if (network === 'host' || network === 'none') return network;
  return network.startsWith('container:') ? 'container' : 'bridge';
}

/**
 * A running container as the probes see it: they enter its namespaces through its main
 * process (/proc/<pid>/ns/…), and read its environment from /proc/<pid>/environ.
 */
export function containerInfo(spec: ContainerSpec, c: Dockerode.ContainerInspectInfo, env: string[], networkNames: Map<string, string>): ContainerInfo {
  const pid = c.State.Pid;
  const addresses: Record<string, string> = {};
  const macs: Record<string, string> = {};
  const addresses6: Record<string, string> = {};
  for (const [dockerNet, ep] of Object.entries(c.NetworkSettings.Networks ?? {})) {
    const net = networkNames.get(dockerNet) ?? dockerNet;
    if (ep.IPAddress) addresses[net] = ep.IPAddress;
    if (ep.GlobalIPv6Address) addresses6[net] = ep.GlobalIPv6Address;
    if (ep.MacAddress) macs[net] = ep.MacAddress;
  }
  const mode = modeOf(spec.network);
  return {
    name: spec.name,
    hostname: c.Config?.Hostname || undefined,
    netnsPath: `/proc/${pid}/ns/net`,
    mntnsPath: `/proc/${pid}/ns/mnt`,
    env,
    addresses,
    ...(Object.keys(addresses6).length ? { addresses6 } : {}),
    macs,
    ip: mode === 'bridge' ? (addresses[spec.network] ?? Object.values(addresses)[0]) : undefined,
    mode,
  };
}

/** IPv4 bindings from NetworkSettings.Ports ("80/tcp": [{HostIp, HostPort}]). */
export function portBindings(name: string, c: Dockerode.ContainerInspectInfo): PortBinding[] {
  const out: PortBinding[] = [];
  for (const [key, binds] of Object.entries(c.NetworkSettings.Ports ?? {})) {
    const [port, proto] = key.split('/');
    for (const b of binds ?? []) {
      if (b.HostIp.includes(':')) continue; // the IPv6 twin of a binding
      out.push({ container: name, hostIp: b.HostIp || '0.0.0.0', hostPort: Number(b.HostPort), containerPort: Number(port), proto: proto as 'tcp' | 'udp' });
    }
  }
  // per container port, the bindings stay in the order the daemon made them
  return out.sort((a, b) => a.containerPort - b.containerPort || a.proto.localeCompare(b.proto));
}

/** /proc/<pid>/environ is NUL-separated NAME=VALUE entries. */
export function parseEnviron(raw: string): string[] {
  return raw.split('\0').filter(Boolean);
}
