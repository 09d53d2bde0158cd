// The fixed part of every lab: the Docker host (`host`) and the outside world (`wan`), joined
// by one veth pair. `wan` holds the upstream router and the outside servers and has no default
// route, so nothing can leave the lab; the host's default route points into `wan`.
import type { HostSpec, WanSpec } from '../scenario/types.js';
import type { Lab } from './lab.js';
import { run } from './exec.js';

export const HOST = 'host';
export const WAN = 'wan';

/** Sysctls of a freshly booted machine: forwarding off, so the engine must turn it on. */
const HOST_DEFAULT_SYSCTLS: Record<string, string> = { 'net.ipv4.ip_forward': '0' };

export async function buildBase(lab: Lab, host: HostSpec, wan: WanSpec): Promise<void> {
  await lab.addNamespaces([HOST, WAN]);
  const prefix = host.address.split('/')[1];
  await lab.ip(WAN, [
    'link set lo up',
    `link add eth0 type veth peer name eth0 netns ${lab.ns(HOST)}`,
    `addr add ${host.gateway}/${prefix} dev eth0`,
    'link set eth0 up',
    ...wan.servers.map((s) => `addr add ${s}/32 dev lo`),
  ]);
  await Promise.all([
    lab.ip(HOST, [
      'link set lo up',
      `addr add ${host.address} dev eth0`,
      ...host.extraAddresses.map((a) => `addr add ${a} dev eth0`),
      'link set eth0 up',
      `route add default via ${host.gateway} dev eth0`,
    ]),
    lab.setSysctls(HOST, { ...HOST_DEFAULT_SYSCTLS, ...host.sysctls }),
  ]);
  for (const rule of host.rules) await iptables(lab, HOST, rule);
}

/** Give `wan` routes to the container subnets via the host (a neighbour that routes to them). */
export async function routeWanTo(lab: Lab, host: HostSpec, subnets: string[]): Promise<void> {
  const via = host.address.split('/')[0];
  await lab.ip(
    WAN,
    subnets.map((s) => `route replace ${s} via ${via} dev eth0`),
  );
}

/** An administrator's iptables command in a lab namespace ("-I DOCKER-USER -s 1.2.3.4 -j DROP"). */
export async function iptables(lab: Lab, ns: string, rule: string): Promise<void> {
  const args = splitArgs(rule);
  await run('nsenter', [`--net=${lab.nsPath(ns)}`, '--', 'iptables', ...args]);
}

function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}
