// Runs a set of scenarios on one or more engines, one lab at a time, and reports as it goes.
// Scenarios the host kernel cannot run go, all together, to one microVM boot of a guest
// kernel when one is configured (harness/vm), and are skipped with the reason otherwise.
import { release } from 'node:os';
import type { Engine } from '../engine/types.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { detectCapabilities, iptablesVersion, missingFeatures } from '../lab/capabilities.js';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { runScenario } from './runner.js';
import { GET_KERNEL_HINT, type GuestKernel } from '../vm/kernel.js';
import { placeScenarios, skipReasons } from '../vm/plan.js';
import { runInVm, type VmRunOptions } from '../vm/run.js';

export interface SuiteOptions {
  engines: string[];
  updateGolden?: boolean;
  onResult?: (r: ScenarioResult, index: number, total: number) => void;
  onProgress?: (line: string) => void;
  /** stop early (Ctrl-C): the scenario under way finishes its teardown, no new one starts */
  signal?: AbortSignal;
  /** guest kernel for scenarios the host kernel cannot run; null or undefined: none */
  kernel?: GuestKernel | null;
  /** why there is no guest kernel (shown in skip reasons) */
  noKernelReason?: string;
  /** run every scenario in the microVM (`run --kernel`) */
  allInVm?: boolean;
  /** guest console lines (init and harness output) as they arrive */
  onVmLine?: (line: string) => void;
  vm?: Partial<VmRunOptions>;
}

export function engineFactory(name: string): () => Engine {
  switch (name) {
    case 'reference':
      return () => new ReferenceEngine();
    default:
      throw new Error(`unknown engine "${name}" (known: reference)`);
  }
}

export async function runSuite(scenarios: Scenario[], opts: SuiteOptions): Promise<ScenarioResult[]> {
  const caps = await detectCapabilities([...new Set(scenarios.flatMap((s) => s.requires))]);
  const environment = {
    kernel: release(),
    iptables: await iptablesVersion(),
    node: process.version,
    runner: 'host',
  };
  const missing = missingFeatures(caps);
  const kernel = opts.kernel ?? undefined;
  const noVm = opts.noKernelReason ?? `no guest kernel to run it in: ${GET_KERNEL_HINT}`;
  const plan = placeScenarios(scenarios, missing, { vmAvailable: Boolean(kernel), allInVm: opts.allInVm, noVmReason: noVm });
  const skipMissing = skipReasons(missing, noVm);
  const factories = opts.engines.map((e) => [e, engineFactory(e)] as const);
  const total = scenarios.length * factories.length;
  const results: ScenarioResult[] = [];
  for (const p of plan.filter((x) => x.where !== 'vm')) {
    for (const [engineName, makeEngine] of factories) {
      if (opts.signal?.aborted) return results;
      const r = await runScenario(p.scenario, { engineName, makeEngine, updateGolden: opts.updateGolden, missing: skipMissing, environment, onProgress: opts.onProgress });
      results.push(r);
      opts.onResult?.(r, results.length, total);
    }
  }
  const inVm = plan.filter((x) => x.where === 'vm').map((x) => x.scenario);
  if (kernel && inVm.length && !opts.signal?.aborted) {
    if (opts.updateGolden) opts.onProgress?.('microVM: golden files are compared, not written, in the guest (its root is read-only)');
    opts.onProgress?.(`microVM: ${inVm.length} scenario${inVm.length === 1 ? '' : 's'} on kernel ${kernel.release} (${inVm.map((s) => s.id).join(', ')})`);
    const { results: vmResults } = await runInVm(inVm, { kernel, engines: opts.engines, signal: opts.signal, onLine: opts.onVmLine, ...opts.vm });
    for (const r of vmResults) {
      results.push(r);
      opts.onResult?.(r, results.length, total);
    }
  }
  return results;
}
