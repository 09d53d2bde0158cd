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

/**
 * What a scenario costs in a guest, roughly in emulated process starts (80-600 ms each there):
 * every phase dumps rules on every host, each step runs a tool, each container an agent, and an
 * Open vSwitch segment starts two daemons and answers every ovs-vsctl slowly.
 */
function guestWeight(sc: Scenario): number {
  const steps = sc.phases.reduce((n, p) => n + p.steps.length, 0);
  const containers = sc.hosts.reduce((n, h) => n + h.containers.length, 0);
  return sc.hosts.length * sc.phases.length + containers + steps + 8 * sc.ovsSegments.length;
}

/**
 * The scenarios of one kernel split over `guests` guests side by side (each guest runs on one
 * emulated CPU, so a 2-core machine runs two at once): heaviest first, each to the lightest
 * guest so far. Scenarios that share a key (`shared`: the daemons a real engine pools, whose
 * start in a guest costs tens of seconds) stay in one guest. Groups keep the scenarios' order;
 * none is empty.
 */
export function splitForGuests(scenarios: Scenario[], guests: number, shared: (sc: Scenario) => string[] = () => []): Scenario[][] {
  // clusters of scenarios linked by a shared key
  const clusterOf = new Map<Scenario, Scenario[]>();
  const byKey = new Map<string, Scenario[]>();
  for (const sc of scenarios) {
    let cluster = [sc];
    for (const k of shared(sc)) {
      const other = byKey.get(k);
      if (other && other !== cluster) {
        other.push(...cluster);
        for (const x of cluster) clusterOf.set(x, other);
        for (const [key, c] of byKey) if (c === cluster) byKey.set(key, other);
        cluster = other;
      }
      byKey.set(k, cluster);
    }
    clusterOf.set(sc, cluster);
  }
  const clusters = [...new Set(clusterOf.values())];
  const weight = (c: Scenario[]) => c.reduce((n, sc) => n + guestWeight(sc), 0);
  const n = Math.max(1, Math.min(guests, clusters.length));
  const load = new Array<number>(n).fill(0);
  const member = new Map<Scenario, number>();
  for (const c of clusters.sort((a, b) => weight(b) - weight(a))) {
    const g = load.indexOf(Math.min(...load));
    for (const sc of c) member.set(sc, g);
    load[g] += weight(c);
  }
  return Array.from({ length: n }, (_, g) => scenarios.filter((sc) => member.get(sc) === g));
}
