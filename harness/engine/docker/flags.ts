// A scenario's daemon options as dockerd command-line flags, and the key under which a
// running daemon can serve another scenario (same options, same host preparation).
import type { DaemonOptions, HostSpec } from '../../scenario/types.js';
import type { DaemonPaths } from './paths.js';

/** Flags for the scenario's networking options, as an operator would pass them. */
export function optionFlags(d: DaemonOptions): string[] {
  const f = [`--icc=${d.icc}`, `--ip-masq=${d['ip-masq']}`, `--iptables=${d.iptables}`, `--ip-forward=${d['ip-forward']}`, `--userland-proxy=${d['userland-proxy']}`];
  // -b and --bip exclude each other in dockerd: with -b the bridge is made beforehand and
  // carries the --bip address itself (see bridgeSetup).
  if (d.bridge) f.push(`--bridge=${d.bridge}`);
  else if (d.bip) f.push(`--bip=${d.bip}`);
  if (d['fixed-cidr']) f.push(`--fixed-cidr=${d['fixed-cidr']}`);
  if (d.ip) f.push(`--ip=${d.ip}`);
  if (d.ipv6) f.push('--ipv6');
  if (d['fixed-cidr-v6']) f.push(`--fixed-cidr-v6=${d['fixed-cidr-v6']}`);
  // unset: the release's default (on from 27); 20.10 and 26 also need --experimental
  if (d.ip6tables !== undefined) f.push(`--ip6tables=${d.ip6tables}`);
  if (d.experimental) f.push('--experimental');
  // Docker 29+ (a profile named <release>-nftables); older daemons do not know the flag
  if (d['firewall-backend']) f.push(`--firewall-backend=${d['firewall-backend']}`);
  return f;
}

/**
 * `ip` lines that create the bridge `-b` names before dockerd starts (dockerd refuses a
 * bridge that does not exist), with the --bip address when the scenario gives one.
 */
export function bridgeSetup(d: DaemonOptions): string[] {
  if (!d.bridge) return [];
  return [`link add ${d.bridge} type bridge`, ...(d.bip ? [`addr add ${d.bip} dev ${d.bridge}`] : []), `link set ${d.bridge} up`];
}

/** Every flag of one daemon: private paths, its own containerd, the scenario's options. */
export function dockerdArgs(d: DaemonOptions, paths: DaemonPaths, proxy?: string): string[] {
  return [
    `--config-file=${paths.configFile}`, // never the machine's /etc/docker/daemon.json
    `--containerd=${paths.containerdSocket}`,
    `--data-root=${paths.dataRoot}`,
    `--exec-root=${paths.execRoot}`,
    `--pidfile=${paths.dockerdPidfile}`,
    `--host=unix://${paths.socket}`,
    `--cgroup-parent=${paths.cgroupParent}`,
    // containers outlive a dockerd restart, which is how `restart-rules` reprograms the rules
    '--live-restore',
    ...(proxy ? [`--userland-proxy-path=${proxy}`] : []),
    ...optionFlags(d),
  ];
}

/** Daemons are shared by scenarios whose options and pre-start host state (its iptables too) are the same. */
export function daemonKey(d: DaemonOptions, host: Pick<HostSpec, 'sysctls' | 'rules'> & Partial<Pick<HostSpec, 'nft' | 'iptables' | 'firewalld' | 'daemonEnv'>>): string {
  const sorted = (o: object) => Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
  const env = host.daemonEnv && Object.keys(host.daemonEnv).length ? { env: sorted(host.daemonEnv) } : {};
  return JSON.stringify({ daemon: sorted(d), sysctls: sorted(host.sysctls), rules: host.rules, nft: host.nft ?? [], iptables: host.iptables, ...(host.firewalld ? { firewalld: true } : {}), ...env });
}
