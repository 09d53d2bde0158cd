// The resolved shape of a scenario: what the loader hands to the rest of the harness.
// The YAML format is defined by schema.json; this file is its typed, defaults-applied form.
import type { IptablesVariant } from '../rules/iptables/tools.js';
import type { FirewallBackend } from '../targets.js';

export type Proto = 'tcp' | 'udp' | 'icmp';
export type Outcome = 'connected' | 'refused' | 'timeout' | 'unreachable';

/** A place in a YAML file, 1-based. */
export interface Loc {
  file: string;
  line: number;
  col: number;
}

/** Daemon options as `dockerd` spells them (daemon.json keys). */
export interface DaemonOptions {
  bridge?: string; // -b: use this existing/named bridge instead of docker0
  bip?: string; // gateway address with prefix, e.g. 172.17.0.1/16
  'fixed-cidr'?: string; // allocate container addresses from this sub-range only
  ip?: string; // default host address for published ports (--ip)
  icc: boolean;
  'ip-masq': boolean;
  'ip-forward': boolean;
  iptables: boolean;
  'userland-proxy': boolean;
  /** --ipv6 for the default bridge, with its IPv6 subnet (fixed-cidr-v6) */
  ipv6?: boolean;
  'fixed-cidr-v6'?: string;
  /** --ip6tables: unset means the release's default (on from 27, off before) */
  ip6tables?: boolean;
  /** --experimental: 20.10 and 26 write ip6tables rules only with it */
  experimental?: boolean;
  /** Docker 29+'s --firewall-backend: set from the target's profile (`<release>-nftables`), not by scenarios */
  'firewall-backend'?: 'iptables' | 'nftables';
}

/**
 * One Docker host of the lab: its outside leg (eth0) on the `lan` segment, its daemon, and the
 * networks and containers its engine runs. Single-host scenarios have one, named "host".
 */
export interface HostSpec {
  name: string;
  address: string; // CIDR on the lan, default 203.0.113.1/24 (then .2, .3 … for further hosts)
  /** in a dual-stack lab: its IPv6 address on the lan (2001:db8:1::1/64, ::2 …) */
  address6?: string;
  gateway: string; // the router on the lan, default 203.0.113.254
  /** sysctls set in the lab host namespace before the engine starts (the starting ns is never touched) */
  sysctls: Record<string, string>;
  /** ports the probe agent in the host namespace listens on, e.g. "tcp/7000" */
  listen: string[];
  /** iptables commands (without the leading `iptables`) run in the lab host before the engine starts */
  rules: string[];
  /** nft commands (without the leading `nft`) run in the lab host before the engine starts */
  nft: string[];
  /** a real firewalld runs in the host namespace (lab/firewalld.ts), started before the engine */
  firewalld: boolean;
  /** the host's iptables (iptables-nft or iptables-legacy); unset: the run's choice */
  iptables?: IptablesVariant;
  /** extra addresses for the host's outside interface (CIDR) */
  extraAddresses: string[];
  /** further NICs: interface name → segment it is plugged into (e.g. eth1 → trunk) */
  nics: Record<string, string>;
  daemon: DaemonOptions;
  /** variables in dockerd's own environment (`daemon-env:`), e.g. DOCKER_KEEP_DEPRECATED_LEGACY_LINKS_ENV_VARS */
  daemonEnv: Record<string, string>;
  networks: NetworkSpec[];
  containers: ContainerSpec[];
  loc: Loc;
}

/** A machine on the hosts' LAN (a neighbour), outside every Docker host. */
export interface PeerSpec {
  name: string;
  /** the segment it is plugged into: "lan" (default) or one of the scenario's segments */
  segment: string;
  address: string; // CIDR on its segment
  /** in a dual-stack lab: its IPv6 address on the lan */
  address6?: string;
  /** routes "DEST via TARGET": TARGET is a host name, `router` or an address */
  routes: { dest: string; via: string }[];
  sysctls: Record<string, string>;
  listen: string[];
  loc: Loc;
}

/** The L2 segment the hosts' eth0, the router and the peers are plugged into. */
export interface LanSpec {
  subnet: string; // CIDR, from the first host's address
  router: string; // the wan router's address on the lan (the hosts' default gateway)
  /** in a dual-stack lab: the lan's IPv6 prefix and the router's IPv6 address */
  subnet6?: string;
  router6?: string;
  peers: PeerSpec[];
}

/** The outside world: an upstream router and outside servers, with no route anywhere else. */
export interface WanSpec {
  /** addresses of outside servers (/32 on the wan namespace), the first one is `wan` */
  servers: string[];
  /** in a dual-stack lab: the outside servers' IPv6 addresses (the first one is ipv6:wan) */
  servers6: string[];
  /** what the outside servers listen on, e.g. "tcp/9000", "udp/9000" */
  listen: string[];
  /** whether wan has a route back to container subnets via their host (off: Docker's real-world case) */
  routeToContainers: boolean;
}

export interface NetworkSpec {
  name: string;
  driver: 'bridge' | 'macvlan';
  subnet?: string;
  gateway?: string;
  /** allocate container addresses from this sub-range only (--ip-range) */
  ipRange?: string;
  internal: boolean;
  /** --ipv6, with its IPv6 subnet (subnet6) */
  ipv6: boolean;
  subnet6?: string;
  /** driver options as Docker names them: com.docker.network.bridge.name, parent, macvlan_mode … */
  options: Record<string, string>;
  loc: Loc;
}

export interface PublishSpec {
  raw: string; // as written: "127.0.0.1:8080:80/udp"
  hostIp?: string; // undefined = all addresses (0.0.0.0)
  hostPort?: number; // undefined = ephemeral
  hostPortEnd?: number; // ranges "8000-8001:80-81" are expanded by the loader; kept for messages
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface ContainerSpec {
  name: string; // on its host
  /** how scenarios refer to it: the name, or host/name in a scenario with several hosts */
  ref: string;
  /** primary network: "bridge" (default), "host", "none", "container:<name>" or a user network */
  network: string;
  /** further user networks to attach at start, in order */
  networks: string[];
  ip?: string; // fixed address on the primary network
  publish: PublishSpec[];
  publishAll: boolean; // -P: publish every exposed port on an ephemeral host port
  expose: { port: number; proto: 'tcp' | 'udp' }[];
  /** ports the probe agent in this container listens on, e.g. "tcp/80" */
  listen: string[];
  /** legacy links "target:alias" (alias defaults to the target name) */
  links: { target: string; alias: string }[];
  hostname?: string;
  addHosts: { host: string; ip: string }[];
  dns: string[];
  dnsSearch: string[];
  aliases: string[]; // network aliases on user-defined networks
  /** the engine must refuse to start this container with an error matching this regex */
  expectFailure?: string;
  loc: Loc;
}

/** Steps run after the initial build and before the expectations that follow them. */
/**
 * Steps run after the initial build and before the expectations that follow them. Container
 * names are qualified references ("web", or "hostB/web" in multi-host scenarios); `host`
 * names the Docker host a step acts on.
 */
export type Step =
  | { kind: 'connect'; container: string; network: string; loc: Loc }
  | { kind: 'disconnect'; container: string; network: string; loc: Loc }
  | { kind: 'remove'; container: string; loc: Loc }
  | { kind: 'unlink'; container: string; alias: string; loc: Loc } // docker rm --link /container/alias
  | { kind: 'ip6tables'; host: string; args: string; loc: Loc } // administrator ip6tables command
  | { kind: 'iptables'; host: string; args: string; loc: Loc } // administrator rule, e.g. "-I DOCKER-USER -s 1.2.3.4 -j DROP"
  | { kind: 'nft'; host: string; args: string; loc: Loc } // administrator nft command, e.g. "add table inet admin"
  | { kind: 'ip'; host: string; args: string; loc: Loc } // administrator `ip` command on a host (or "lan": the switch), e.g. "link set eth1 master docker0"
  | { kind: 'bridge'; host: string; args: string; loc: Loc } // administrator `bridge` command, e.g. "vlan add dev h0n0 vid 10" on a VLAN-aware switch
  | { kind: 'ovs-vsctl'; host: 'lan'; args: string; loc: Loc } // on the lab's Open vSwitch, e.g. "set port h0n0 tag=100"
  | { kind: 'restart-rules'; host: string; loc: Loc } // the engine reprograms its rules (as a daemon restart does)
  | { kind: 'restart-daemon'; host: string; loc: Loc } // the daemon restarts (a real dockerd is restarted)
  | { kind: 'flush-rules'; host: string; loc: Loc } // an administrator flushes every iptables/ip6tables table; the engine is not told
  | { kind: 'reload-firewall'; host: string; loc: Loc }; // the host firewall reloads (firewalld) and the engine reacts to its signal

interface ExpectBase {
  /** catalogue ID this expectation proves */
  id: string;
  /** human name; defaults to the catalogue's title of the ID */
  name?: string;
  /** index into Scenario.phases: 0 = right after the build, n = after the steps of then[n-1] */
  phase: number;
  loc: Loc;
  /** reference-engine profiles this expectation applies to (all when absent) */
  profiles?: string[];
  /** a passing case is a compliance finding (an exposure confirmed): why; resolved per target */
  finding?: string;
  findingBy?: Record<string, string>;
  /** advisories (CVE, GHSA) a finding or failure of this expectation demonstrates (a failure
   * of an ID with catalogue advisories names those when the expectation names none) */
  advisories?: string[];
  /** set when resolved for one run's target: why it cannot be checked there (a skip) */
  skipReason?: string;
  /** set when resolved for one run's target: it is stated for other profiles, so the run leaves
   * it out (not a skip: nothing this target should do went unchecked) */
  notFor?: string;
}

export interface ReachExpect extends ExpectBase {
  kind: 'reach';
  from: string; // endpoint: container ("web", "hostB/web"), host name, peer, "wan"
  to: string; // endpoint or literal address
  proto: Proto;
  port?: number; // required for tcp/udp unless `published` is given
  /** the host port the engine published for "container:port/proto" (ephemeral ports) */
  published?: string;
  source?: string; // bind this source address in the `from` namespace
  result: Outcome;
  /** who the listener saw as the source: an endpoint, an address, or "none" */
  seenSource?: string;
  /** per profile or engine (`result: { docker-20.10: connected, default: timeout }`); picked per run */
  resultBy?: Record<string, Outcome>;
  seenSourceBy?: Record<string, string>;
  /** which rule must have decided the packet's fate (its traced path says) */
  decidedBy?: DecidedBy;
  decidedByBy?: Record<string, DecidedBy>;
}

/**
 * The step of a probe's rule path that decided it: a chain and verdict (the chain's policy
 * when `policy` is true), and/or the deciding rule's text (iptables-save form, ${…} allowed);
 * or `none`: no rule decided (nothing filtered the packet, or only an ACCEPT policy let it by).
 */
export interface DecidedBy {
  none?: boolean;
  host?: string;
  table?: string;
  chain?: string;
  verdict?: 'ACCEPT' | 'DROP' | 'REJECT';
  policy?: boolean;
  rule?: string;
}

export interface RulesExpect extends ExpectBase {
  kind: 'rules';
  /** the Docker host whose rule set is checked */
  host: string;
  /** read ip6tables-save instead of iptables-save */
  ipv6?: boolean;
  /** nftables family (ip, ip6, inet…): the check reads the nft rule set, not iptables-save */
  family?: string;
  table: string;
  /** the chain; with family, absent for a set or a whole table */
  chain?: string;
  /** an nftables set or map whose elements are checked */
  set?: string;
  contains?: string[]; // ordered subsequence
  absent?: string[];
  exact?: string[]; // the chain's rules, exactly
  golden?: string; // path (relative to the scenario file) of a golden chain dump
  policy?: string; // built-in chain policy, e.g. DROP
  exists?: boolean; // false: the chain must not exist at all
}

export interface StartExpect extends ExpectBase {
  kind: 'start';
  container: string;
  fails: string; // regex on the engine's error
}

export interface FileExpect extends ExpectBase {
  kind: 'file';
  /** a container reference, or a host or peer name (files as a process there reads them) */
  container: string;
  path: string; // as a process in the container reads it
  contains?: string[];
  absent?: string[];
  /** regular expressions, each of which some line must match */
  matches?: string[];
  equals?: string;
}

/** A name looked up as the container's processes would (/etc/hosts, then its nameserver). */
export interface ResolveExpect extends ExpectBase {
  kind: 'resolve';
  from: string; // container reference
  name: string;
  /** the endpoint (or address) the answer must be, or "none" when the name must not resolve */
  answer: string;
}

/** A variable in the environment of the container's processes. */
export interface EnvExpect extends ExpectBase {
  kind: 'env';
  container: string;
  variable: string;
  /** the value, with ${…} placeholders; omitted with `absent` */
  equals?: string;
  absent: boolean;
}

/**
 * The frames one probe puts on an interface (a switch port `on: lan`, or a host's NIC): there
 * must be some, in either direction between the two endpoints, and every one must carry this
 * 802.1Q tag ("none": untagged).
 */
export interface FramesExpect extends ExpectBase {
  kind: 'frames';
  /** "lan" (the switch: ports h<i>, h<i>n<k>, p<j>, seg-<name>) or a Docker host */
  on: string;
  dev: string;
  from: string;
  to: string;
  proto: Proto;
  port?: number;
  vlan: number | 'none';
}

export type Expectation = ReachExpect | RulesExpect | StartExpect | FileExpect | ResolveExpect | EnvExpect | FramesExpect;

export interface Scenario {
  file: string;
  id: string;
  title: string;
  covers: string[];
  description?: string;
  /** names a run selects or leaves out (run --tags / --skip-tags), e.g. firewalld (slow) */
  tags: string[];
  /** kernel features the scenario needs ("macvlan", "vxlan", "8021q", "bridge-vlan-filtering", "openvswitch") */
  requires: string[];
  /** the Docker hosts; one named "host" unless the scenario declares `hosts:` */
  hosts: HostSpec[];
  lan: LanSpec;
  /** further L2 segments (besides the lan) that host NICs can be plugged into */
  segments: string[];
  /** those of the segments that are Open vSwitch bridges (`switch: ovs`), not Linux bridges */
  ovsSegments: string[];
  wan: WanSpec;
  /** phases[0] is the state right after the build (no steps); each `then` entry adds one */
  phases: { steps: Step[]; loc: Loc }[];
  /** every expectation, each tagged with its phase */
  expect: Expectation[];
  probeTimeoutMs: number;
  /** a dual-stack lab (hosts, router, peers and outside servers have IPv6 addresses too) */
  ipv6: boolean;
  /** reference-engine profiles the scenario runs under (all when absent) */
  profiles?: string[];
  /** the firewall backends (iptables, nftables) it runs under (all when absent) */
  firewallBackends?: FirewallBackend[];
  loc: Loc;
}
