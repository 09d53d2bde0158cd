// What a Docker release does besides its rule layout (the firewall driver of its profile):
// the order in which it binds a container's ports, how its port allocator treats overlapping
// addresses, whether an internal network's containers get a default route, and how it writes
// the container's files. Each entry was measured on the real build (Debian's 20.10.24,
// 26.1.5 and 28.5.2) with `netconform run --engine reference:PROFILE,docker:RELEASE`; where
// moby's documents said otherwise, the real build won.
import type { Profile } from '../../targets.js';

export interface ReleaseBehaviour {
  /**
   * The order of a container's port bindings, which is also the order of their rules:
   * 'sort-port-map' — go-connections' nat.SortPortMap (20.10, 26.1: larger host port first);
   * 'exact-first' — 28's cmpPortBinding: exact host ports before ephemeral ones, then
   * container port, protocol and host port ascending (libnetwork/drivers/bridge/port_mapping_linux.go).
   */
  bindingOrder: 'sort-port-map' | 'exact-first';
  /**
   * 28's port allocator reserves a port for 0.0.0.0 and for every address at once: 0.0.0.0:9090
   * beside 127.0.0.1:9090 is refused before any proxy starts ("Bind for 127.0.0.1:9090 failed:
   * port is already allocated"), and an ephemeral port must be free on both. Before 28 each
   * address had its own pool, and the proxy's bind failed instead.
   */
  overlappingAllocator: boolean;
  /** 26+: a container on an --internal network has no default route (egress is ENETUNREACH). */
  internalNoDefaultRoute: boolean;
  /** 26+: resolv.conf generated with a header and a summary (26 and 28 word the summary differently) */
  generatedResolvConf?: 26 | 28;
  /** 28: /etc/hosts defaults as Go's netip prints them (fe00:: rather than fe00::0) */
  netipHosts: boolean;
  /**
   * Up to 26: leaving a network deletes every /etc/hosts line that ends with the container's
   * hostname (etchosts.Delete matches the names only), so its records on the networks it is
   * still on go too (seen with 20.10.24 and 26.1.5; 28 deletes only the record of the address).
   */
  hostsDeleteByName: boolean;
  /**
   * 29: a published port without the userland proxy stays bound with a drop-all socket filter
   * (portallocator's setSocketFilter, detached only for docker-proxy): a SYN that reaches it
   * goes unanswered. Up to 28 the dummy proxy listened and the handshake completed.
   */
  heldPortDrops: boolean;
  /**
   * 29: legacy links write no environment variables (ALIAS_PORT…, ALIAS_NAME) unless dockerd's
   * own environment has DOCKER_KEEP_DEPRECATED_LEGACY_LINKS_ENV_VARS (daemon/container_operations_unix.go).
   */
  linkEnvOptIn: boolean;
}

export const RELEASES: Record<Profile, ReleaseBehaviour> = {
  'docker-20.10': { bindingOrder: 'sort-port-map', overlappingAllocator: false, internalNoDefaultRoute: false, netipHosts: false, hostsDeleteByName: true, heldPortDrops: false, linkEnvOptIn: false },
  'docker-26': { bindingOrder: 'sort-port-map', overlappingAllocator: false, internalNoDefaultRoute: true, generatedResolvConf: 26, netipHosts: false, hostsDeleteByName: true, heldPortDrops: false, linkEnvOptIn: false },
  'docker-28': { bindingOrder: 'exact-first', overlappingAllocator: true, internalNoDefaultRoute: true, generatedResolvConf: 28, netipHosts: true, hostsDeleteByName: false, heldPortDrops: false, linkEnvOptIn: false },
  // measured on 29.7.2 built from moby's docker-v29.7.2 (scripts/build-engine.sh)
  'docker-29': { bindingOrder: 'exact-first', overlappingAllocator: true, internalNoDefaultRoute: true, generatedResolvConf: 28, netipHosts: true, hostsDeleteByName: false, heldPortDrops: true, linkEnvOptIn: true },
  // the firewall backend changes the rules only
  'docker-29-nftables': { bindingOrder: 'exact-first', overlappingAllocator: true, internalNoDefaultRoute: true, generatedResolvConf: 28, netipHosts: true, hostsDeleteByName: false, heldPortDrops: true, linkEnvOptIn: true },
};
