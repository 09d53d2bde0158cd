// The macvlan network driver: every endpoint is a macvlan device on the network's parent NIC,
// made directly inside the container's namespace, with the container's own address and MAC on
// the parent's segment. No bridge, no NAT, no rules. A parent named like eth0.10 is an 802.1Q
// sub-interface, which Docker creates when it does not exist (and removes with the network).
import type { KernelPlan } from '../plan.js';
import type { EndpointPlan, NetworkDriver, NetworkPlan } from './types.js';

export type MacvlanMode = 'bridge' | 'private' | 'vepa' | 'passthru';

export class MacvlanDriver implements NetworkDriver {
  constructor(
    private readonly hostNs: string,
    readonly parent: string,
    readonly mode: MacvlanMode,
    /** whether the engine makes the 802.1Q parent (it did not exist) and so removes it again */
    private readonly makesParent: boolean,
  ) {}

  /** "eth0.10" → { link: "eth0", vlan: 10 } */
  static vlanOf(parent: string): { link: string; vlan: number } | undefined {
    const m = /^(.+)\.(\d+)$/.exec(parent);
    return m ? { link: m[1], vlan: Number(m[2]) } : undefined;
  }

  create(plan: KernelPlan): void {
    const v = MacvlanDriver.vlanOf(this.parent);
    if (this.makesParent && v) plan.ip(this.hostNs, `link add link ${v.link} name ${this.parent} type vlan id ${v.vlan}`, `link set ${this.parent} up`);
  }

  remove(plan: KernelPlan): void {
    if (this.makesParent) plan.ip(this.hostNs, `link del ${this.parent}`);
  }

  attach(plan: KernelPlan, _net: NetworkPlan, ep: EndpointPlan): void {
    plan.ip(this.hostNs, `link add link ${this.parent} name ${ep.ifname} netns ${ep.containerNsFull} type macvlan mode ${this.mode}`);
  }

  detach(plan: KernelPlan, _net: NetworkPlan, ep: EndpointPlan): void {
    plan.ip(ep.containerNs, `link del ${ep.ifname}`);
  }
}
