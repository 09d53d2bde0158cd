// The network-driver layer of the reference engine (bridge, macvlan, …): how a network and
// an endpoint become links and addresses. Drivers only plan kernel work; the engine applies it.
import type { KernelPlan } from '../plan.js';

export interface NetworkPlan {
  name: string;
  /** the network's interface on the host: the bridge, or the macvlan parent */
  bridge: string;
  subnet: string;
  gateway: string;
}

export interface EndpointPlan {
  /** interface name inside the container (eth0, eth1, …) */
  ifname: string;
  /** the host-side interface a driver creates for it (veth…), if any */
  hostIf: string;
  /** lab namespace of the container, and its full name for `netns` arguments of ip */
  containerNs: string;
  containerNsFull: string;
  ip: string;
  mac: string;
}

export interface NetworkDriver {
  create(plan: KernelPlan, net: NetworkPlan): void;
  remove(plan: KernelPlan, net: NetworkPlan): void;
  attach(plan: KernelPlan, net: NetworkPlan, ep: EndpointPlan): void;
  detach(plan: KernelPlan, net: NetworkPlan, ep: EndpointPlan): void;
}
