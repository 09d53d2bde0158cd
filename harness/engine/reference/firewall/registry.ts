// Profiles of the reference engine: the rule layout of one Docker release each, by name.
import { DEFAULT_PROFILE, type Profile } from '../../../targets.js';
import { Docker2010Firewall } from './docker-20.10.js';
import { Docker26Firewall } from './docker-26.js';
import { Docker28Firewall } from './docker-28.js';
import { Docker29Firewall } from './docker-29.js';
import { Docker29NftablesFirewall } from './docker-29-nftables.js';
import type { FirewallDriver, FirewallHost } from './types.js';

const DRIVERS: Record<Profile, (host: FirewallHost) => FirewallDriver> = {
  'docker-20.10': (h) => new Docker2010Firewall(h),
  'docker-26': (h) => new Docker26Firewall(h),
  'docker-28': (h) => new Docker28Firewall(h),
  'docker-29': (h) => new Docker29Firewall(h),
  'docker-29-nftables': (h) => new Docker29NftablesFirewall(h),
};

export function createFirewall(profile: Profile | undefined, host: FirewallHost): FirewallDriver {
  return DRIVERS[profile ?? DEFAULT_PROFILE](host);
}
