// The rule layout of Docker 29: Docker 28's, with inter-network isolation dropped.
//
// Where it comes from (moby/moby): the 29.x documents in
// integration/network/bridge/iptablesdoc/generated/ (new-daemon, usernet-portmap,
// usernet-portmap-lo, usernet-internal) and the iptabler of the 29 line
// (daemon/libnetwork/drivers/bridge/internal/iptabler: network.go, endpoint.go, port.go,
// link.go). Release notes 29.0.0, moby#49981 "Drop DOCKER-ISOLATION rules":
// - no DOCKER-ISOLATION-STAGE-1/2: DOCKER-FORWARD jumps to DOCKER-INTERNAL instead, which
//   holds only the --internal networks' DROP rules;
// - no "skip DNAT" `-i <bridge> -j RETURN` in nat DOCKER (the DNAT rules carry `! -i <bridge>`
//   themselves), so containers in other networks reach ports published on host addresses.
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import { Docker28Firewall, BRIDGE, CT, FORWARD } from './docker-28.js';
import type { BridgeNet } from './types.js';

const INTERNAL = 'DOCKER-INTERNAL';

export class Docker29Firewall extends Docker28Firewall {
  override readonly profile: string = 'docker-29';

  protected override filterChains(): string[] {
    return ['DOCKER', FORWARD, BRIDGE, CT, INTERNAL];
  }

  protected override middleChain(): string {
    return INTERNAL;
  }

  protected override internalChain(): string {
    return INTERNAL;
  }

  protected override skipDnat(_ed: RuleEditor, _net: BridgeNet): void {
    /* removed in 29.0.0 */
  }

  protected override isolate(_ed: RuleEditor, _net: BridgeNet): void {
    /* removed in 29.0.0 */
  }
}
