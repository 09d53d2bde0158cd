// The firewall layer of the reference engine, apart from the network drivers (as netavark
// keeps src/firewall apart from src/network, and Moby its iptabler beside the bridge driver).
// A rule layout of one engine release is one driver; a new layout is a new file.
import type { RuleEditor } from '../../../rules/editor.js';

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

export interface FirewallOptions {
  /** userland-proxy off: the engine routes local traffic to published ports through NAT */
  hairpin: boolean;
  /** a daemon restart: the engine's own chains are emptied first and rebuilt */
  restart?: boolean;
}

export interface FirewallDriver {
  readonly profile: string;
  /** daemon start: create the engine's chains and jumps */
  init(ed: RuleEditor, opts: FirewallOptions): void;
  /** daemon start, in ip6tables (27+ enable ip6tables by default; absent: nothing is written there) */
  init6?(ed: RuleEditor, opts: FirewallOptions): void;
  setupNetwork(ed: RuleEditor, net: BridgeNet): void;
  /** a network restored at a daemon restart (set up again, without a new network's extras) */
  restoreNetwork?(ed: RuleEditor, net: BridgeNet): void;
  teardownNetwork(ed: RuleEditor, net: BridgeNet): void;
  addPortForward(ed: RuleEditor, pf: PortForward): void;
  removePortForward(ed: RuleEditor, pf: PortForward): void;
  addLink(ed: RuleEditor, link: LinkRule): void;
  removeLink(ed: RuleEditor, link: LinkRule): void;
  /** a container joins a network (28.0.2+ drop packets routed to its address from elsewhere) */
  addEndpoint?(ed: RuleEditor, ep: EndpointRule): void;
  removeEndpoint?(ed: RuleEditor, ep: EndpointRule): void;
}
