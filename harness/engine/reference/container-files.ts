// What Docker 20.10 writes into a container's /etc/hosts, /etc/resolv.conf and /etc/hostname,
// and the environment it gives the container's processes (libnetwork's etchosts and
// resolvconf packages; daemon/links for legacy link variables).

/** libnetwork/etchosts defaultContent */
const DEFAULT_HOSTS = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', 'fe00::0\tip6-localnet', 'ff00::0\tip6-mcastprefix', 'ff02::1\tip6-allnodes', 'ff02::2\tip6-allrouters'];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface HostsRecord {
  ip: string;
  names: string; // "alias hostname name", space separated as Docker writes them
}

/**
 * /etc/hosts: the defaults, then extra records in the order the daemon passes them (--add-host
 * entries, then legacy links), then the container's own address(es) with its hostname.
 */
export function hostsFile(extra: HostsRecord[], own: HostsRecord[]): string {
  return [...DEFAULT_HOSTS, ...[...extra, ...own].map((r) => `${r.ip}\t${r.names}`)].join('\n') + '\n';
}

export interface ResolvConf {
  nameservers: string[];
  search: string[];
  options: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const rc: ResolvConf = { nameservers: [], search: [], options: [] };
  for (const line of text.split('\n')) {
    const [key, ...rest] = line.replace(/[#;].*$/, '').trim().split(/\s+/);
    if (key === 'nameserver' && rest[0]) rc.nameservers.push(rest[0]);
    else if (key === 'search' || key === 'domain') rc.search = rest;
    else if (key === 'options') rc.options.push(...rest);
  }
  return rc;
}

/** resolvconf.Build */
function build(rc: ResolvConf): string {
  const lines: string[] = [];
  if (rc.search.length && rc.search.join(' ').trim() !== '.') lines.push(`search ${rc.search.join(' ')}`);
  for (const ns of rc.nameservers) lines.push(`nameserver ${ns}`);
  if (rc.options.length) lines.push(`options ${rc.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

const isLocalhost = (ip: string) => /^127\./.test(ip) || ip === '::1';
const DEFAULT_DNS = ['8.8.8.8', '8.8.4.4'];

/**
 * /etc/resolv.conf. Containers on user-defined networks ask the embedded DNS at 127.0.0.11
 * (the host's or --dns servers become its upstream servers); others get the host's file with
 * localhost nameservers removed, or what --dns/--dns-search say.
 */
export function resolvConf(hostText: string, o: { dns: string[]; dnsSearch: string[]; embedded: boolean }): { text: string; upstream: string[] } {
  const host = parseResolvConf(hostText);
  let rc: ResolvConf;
  if (o.dns.length || o.dnsSearch.length) {
    rc = { nameservers: o.dns.length ? o.dns : host.nameservers, search: o.dnsSearch.length ? o.dnsSearch : host.search, options: host.options };
  } else {
    // FilterResolvDNS: drop localhost nameservers; none left means Google's
    const kept = host.nameservers.filter((ns) => !isLocalhost(ns));
    rc = { nameservers: kept.length ? kept : DEFAULT_DNS, search: host.search, options: host.options };
    if (!o.embedded) return { text: filteredHostFile(hostText, rc.nameservers), upstream: rc.nameservers };
  }
  if (!o.embedded) return { text: build(rc), upstream: rc.nameservers };
  const options = rc.options.some((x) => x.startsWith('ndots:')) ? rc.options : [...rc.options, 'ndots:0'];
  return { text: build({ nameservers: ['127.0.0.11'], search: rc.search, options }), upstream: rc.nameservers };
}

/** The host's file as it is, minus localhost nameservers (plus Google's if none is left). */
function filteredHostFile(text: string, kept: string[]): string {
  const lines = text.split('\n').filter((l) => {
    const m = /^\s*nameserver\s+(\S+)/.exec(l);
    return !m || !isLocalhost(m[1]);
  });
  let out = lines.join('\n').replace(/\n*$/, '\n');
  if (!lines.some((l) => /^\s*nameserver\s/.test(l))) out += kept.map((ns) => `nameserver ${ns}`).join('\n') + '\n';
  return out;
}

export interface LinkEnv {
  /** the linking container's name and the alias: the link's name is /<parent>/<alias> */
  parent: string;
  alias: string;
  childIp: string;
  ports: { port: number; proto: 'tcp' | 'udp' }[];
}

/** daemon/links ToEnv: ALIAS_PORT, ALIAS_PORT_<port>_<PROTO>{,_ADDR,_PORT,_PROTO}, ALIAS_NAME. */
export function linkEnv(l: LinkEnv): string[] {
  const alias = l.alias.toUpperCase().replace(/-/g, '_');
  const ports = [...l.ports].sort((a, b) => a.port - b.port || (a.proto === 'tcp' ? -1 : 1));
  const env: string[] = [];
  if (ports.length) env.push(`${alias}_PORT=${ports[0].proto}://${l.childIp}:${ports[0].port}`);
  for (const p of ports) {
    const P = p.proto.toUpperCase();
    env.push(
      `${alias}_PORT_${p.port}_${P}=${p.proto}://${l.childIp}:${p.port}`,
      `${alias}_PORT_${p.port}_${P}_ADDR=${l.childIp}`,
      `${alias}_PORT_${p.port}_${P}_PORT=${p.port}`,
      `${alias}_PORT_${p.port}_${P}_PROTO=${p.proto}`,
    );
  }
  env.push(`${alias}_NAME=/${l.parent}/${l.alias}`);
  return env;
}
