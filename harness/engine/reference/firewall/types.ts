// The firewall layer of the reference engine, apart from the network drivers (as netavark
// keeps src/firewall apart from src/network, and moby its firewaller beside the bridge
// driver). A driver is the rule layout of one engine release: its methods take plain data
// (a network, an endpoint, a port binding, a link), never a rule editor; it owns its rule
// backends (rules/iptables, rules/nft) and gets their editors from the engine's plan. A new
// layout is a new file; a new backend a new folder under rules/.
import type { RuleAccess, RuleBackend } from '../../../rules/backend.js';
import type { IptablesVariant } from '../../../rules/iptables/tools.js';

export interface BridgeNet {
  name: string;
  bridge: string;
  subnet: string; // network CIDR, e.g. 172.17.0.0/16
  icc: boolean;
  masquerade: boolean;
  internal: boolean;
  /** SNAT source instead of MASQUERADE (com.docker.network.host_ipv4; host_binding_ipv4 is for ports) */
  hostIp?: string;
}

export interface PortForward {
  net: BridgeNet;
  containerIp: string;
  hostIp: string; // 0.0.0.0 = all
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface LinkRule {
  net: BridgeNet;
  fromIp: string; // the linking container
  toIp: string; // the linked (target) container
  ports: { port: number; proto: 'tcp' | 'udp' }[];
  alias: string;
  target: string; // the linked container's name
  /** the variables the link gives the linking container's processes */
  env: string[];
}

/** A container's address on a bridge network (moby's firewaller AddEndpoint/DelEndpoint). */
export interface EndpointRule {
  net: BridgeNet;
  ip: string;
}

/** What the host the driver writes on runs. */
export interface FirewallHost {
  /** the host's iptables (iptables-nft or iptables-legacy): a driver's iptables backends use it */
  iptables: IptablesVariant;
}

export interface FirewallOptions {
  /** userland-proxy off: the engine routes local traffic to published ports through NAT */
  hairpin: boolean;
  /** a daemon restart: the engine's own rules are emptied first and rebuilt */
  restart?: boolean;
  /** the engine turned IPv4 forwarding on itself at this start (iptables layouts then close FORWARD) */
  enabledForwarding?: boolean;
}

export interface FirewallDriver {
  readonly profile: string;
  /**
   * The rule backends it writes, known before the daemon starts so that the engine reads
   * them together with the host's state (one process).
   */
  readonly backends: RuleBackend<unknown>[];
  /**
   * Whether the engine turns IP forwarding on when it is off (the iptables layouts, which
   * then drop forwarding they do not know), or leaves it to the administrator and refuses to
   * start without it (Docker 29's nftables backend).
   */
  readonly enablesForwarding: boolean;
  /** daemon start: the engine's tables, chains and jumps; `rules` hands out the backends' editors */
  init(rules: RuleAccess, opts: FirewallOptions): Promise<void>;
  /**
   * daemon start, in ip6tables (27+ enable ip6tables by default, a flag of its own: also with
   * --iptables=false); absent: nothing is written there
   */
  init6?(rules: RuleAccess, opts: FirewallOptions): Promise<void>;
  setupNetwork(net: BridgeNet): Promise<void>;
  /** a network restored at a daemon restart (set up again, without a new network's extras) */
  restoreNetwork?(net: BridgeNet): Promise<void>;
  teardownNetwork(net: BridgeNet): Promise<void>;
  addPortForward(pf: PortForward): Promise<void>;
  removePortForward(pf: PortForward): Promise<void>;
  addLink(link: LinkRule): Promise<void>;
  removeLink(link: LinkRule): Promise<void>;
  /** a container joins a network (28.0.2+ drop packets routed to its address from elsewhere) */
  addEndpoint?(ep: EndpointRule): Promise<void>;
  removeEndpoint?(ep: EndpointRule): Promise<void>;
}
