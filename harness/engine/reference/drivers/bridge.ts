// The bridge network driver: a Linux bridge per network with the gateway address on it, and
// a veth pair per endpoint (host end enslaved to the bridge, the other end as ethN in the
// container). Rules are the firewall driver's business, not this one's.
import { parseCidr } from '../ipam.js';
import type { KernelPlan } from '../plan.js';
import type { EndpointPlan, NetworkDriver, NetworkPlan } from './types.js';

export class BridgeDriver implements NetworkDriver {
  constructor(
    private readonly hostNs: string,
    /** userland-proxy off: hairpin on bridge ports and route_localnet on the bridge */
    private readonly natOnly: boolean,
  ) {}

  create(plan: KernelPlan, net: NetworkPlan): void {
    const { bridge, gateway, subnet } = net;
    plan.ip(this.hostNs, `link add ${bridge} type bridge`, `addr add ${gateway}/${parseCidr(subnet).prefix} dev ${bridge}`, `link set ${bridge} up`);
    // Without the proxy, 127.0.0.1 traffic is DNATed out of the bridge: the kernel must route it.
    if (this.natOnly) plan.sysctl(this.hostNs, `net.ipv4.conf.${bridge}.route_localnet`, '1');
  }

  remove(plan: KernelPlan, net: NetworkPlan): void {
    plan.ip(this.hostNs, `link del ${net.bridge}`);
  }

  attach(plan: KernelPlan, net: NetworkPlan, ep: EndpointPlan): void {
    plan.ip(this.hostNs, `link add ${ep.hostIf} type veth peer name ${ep.ifname} netns ${ep.containerNsFull}`, `link set ${ep.hostIf} master ${net.bridge} up`);
    // A container reaches its own published port back through the bridge only in hairpin mode.
    if (this.natOnly) plan.ip(this.hostNs, `link set ${ep.hostIf} type bridge_slave hairpin on`);
  }

  detach(plan: KernelPlan, _net: NetworkPlan, ep: EndpointPlan): void {
    plan.ip(this.hostNs, `link del ${ep.hostIf}`);
  }
}
