// Where each scenario runs: on the host kernel, in the microVM (the host kernel lacks a feature
// the scenario requires and a guest kernel is configured, or `run --kernel` asked for every
// scenario), or nowhere (skipped, naming the missing feature and how to get a kernel).
import type { Scenario } from '../scenario/types.js';
import { GET_KERNEL_HINT } from './kernel.js';

export type Where = 'host' | 'vm' | 'skip';

export interface Placement {
  scenario: Scenario;
  where: Where;
  /** required features the host kernel lacks */
  missing: string[];
  reason: string;
}

export interface PlanOptions {
  /** a guest kernel is configured and valid */
  vmAvailable: boolean;
  /** run every scenario in the microVM (`run --kernel`) */
  allInVm?: boolean;
  /** why there is no guest kernel (a configured one that is unusable names its problem) */
  noVmReason?: string;
}

export function placeScenarios(scenarios: Scenario[], hostMissing: Map<string, string>, opts: PlanOptions): Placement[] {
  return scenarios.map((scenario) => {
    const missing = scenario.requires.filter((f) => hostMissing.has(f));
    if (opts.allInVm && opts.vmAvailable) return { scenario, where: 'vm', missing, reason: 'run --kernel: every scenario runs in the microVM' };
    if (missing.length === 0) return { scenario, where: 'host', missing, reason: scenario.requires.length ? `host kernel has ${scenario.requires.join(', ')}` : 'runs on any kernel' };
    if (opts.vmAvailable) return { scenario, where: 'vm', missing, reason: `host kernel lacks ${missing.join(', ')}` };
    return { scenario, where: 'skip', missing, reason: `host kernel lacks ${missing.join(', ')}; ${opts.noVmReason ?? `no guest kernel: ${GET_KERNEL_HINT}`}` };
  });
}

/** The host's missing-feature reasons, extended with why the microVM cannot step in. */
export function skipReasons(hostMissing: Map<string, string>, noVmReason: string): Map<string, string> {
  return new Map([...hostMissing].map(([f, detail]) => [f, `${detail}; ${noVmReason}`]));
}
