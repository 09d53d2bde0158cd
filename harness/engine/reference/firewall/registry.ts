// Profiles of the reference engine: the rule layout of one Docker release each, by name.
import { DEFAULT_PROFILE, type Profile } from '../../../targets.js';
import { Docker2010Firewall } from './docker-20.10.js';
import { Docker26Firewall } from './docker-26.js';
import { Docker28Firewall } from './docker-28.js';
import { Docker29Firewall } from './docker-29.js';
import type { FirewallDriver } from './types.js';

const DRIVERS: Record<Profile, () => FirewallDriver> = {
  'docker-20.10': () => new Docker2010Firewall(),
  'docker-26': () => new Docker26Firewall(),
  'docker-28': () => new Docker28Firewall(),
  'docker-29': () => new Docker29Firewall(),
};

export function createFirewall(profile: Profile = DEFAULT_PROFILE): FirewallDriver {
  return DRIVERS[profile]();
}
