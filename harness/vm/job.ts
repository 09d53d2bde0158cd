// What the host hands the guest (job.json in the job share) and what comes back. Scenarios
// travel as the loader's resolved data, so specs can send scenarios built in memory too.
import type { IptablesVariant } from '../rules/iptables/tools.js';
import type { Capability } from '../lab/capabilities.js';
import type { Scenario } from '../scenario/types.js';

export type GuestJob =
  | {
      kind: 'suite';
      scenarios: Scenario[];
      engines: string[];
      color: boolean;
      /** the dockerd the host certifies, per docker target (label → path) */
      dockerds?: Record<string, string>;
      /** the iptables the guest's lab hosts run (the host run's --host-iptables) */
      hostIptables?: IptablesVariant;
      /** false: no rule paths (run --no-rule-paths) */
      rulePaths?: boolean;
    }
  | { kind: 'capabilities'; color: boolean };

/** Files the guest writes into the job share. */
export const RESULTS_FILE = 'results.json';
export const CAPABILITIES_FILE = 'capabilities.json';
export const MODULES_FILE = 'modules.txt';

export interface GuestCapabilities {
  release: string;
  capabilities: Capability[];
}
