// Runs a set of scenarios on one or more engines, a few labs at a time, and reports as it goes.
// Scenarios the host kernel cannot run go, all together, to one microVM boot of a guest
// kernel when one is configured (harness/vm), and are skipped with the reason otherwise; the
// guest boots while the host's labs run.
import { release } from 'node:os';
import type { Engine } from '../engine/types.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { detectCapabilities, iptablesVersion, missingFeatures } from '../lab/capabilities.js';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { runScenario } from './runner.js';
import { parseTarget } from '../targets.js';
import { GET_KERNEL_HINT, type GuestKernel } from '../vm/kernel.js';
import { placeScenarios, skipReasons } from '../vm/plan.js';
import { runInVm, type VmRunOptions } from '../vm/run.js';

export interface SuiteOptions {
  engines: string[];
  updateGolden?: boolean;
  onResult?: (r: ScenarioResult, index: number, total: number) => void;
  onProgress?: (line: string) => void;
  /** stop early (Ctrl-C): the scenarios under way finish their teardown, no new one starts */
  signal?: AbortSignal;
  /** labs built at once (default 4). Labs are hermetic, so they can; probes mostly wait on timeouts. */
  jobs?: number;
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

/** An engine by name: "reference" (docker-20.10), "reference:docker-28", … */
export function engineFactory(name: string): () => Engine {
  const t = parseTarget(name);
  switch (t.engine) {
    case 'reference':
      return () => new ReferenceEngine(t.profile);
    default:
      throw new Error(`unknown engine "${name}" (known: reference, reference:PROFILE)`);
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
  // canonical names ("reference" → "reference:docker-20.10"): results and JUnit name the profile
  const factories = opts.engines.map((e) => [parseTarget(e).label, engineFactory(e)] as const);
  const onHost = plan.filter((x) => x.where !== 'vm').map((x) => x.scenario);
  const inVm = plan.filter((x) => x.where === 'vm').map((x) => x.scenario);
  const runs = onHost.flatMap((sc) => factories.map(([engineName, makeEngine]) => ({ sc, engineName, makeEngine })));
  const total = runs.length + (kernel ? inVm.length * factories.length : 0);
  const results: (ScenarioResult | undefined)[] = new Array(runs.length);
  const vmResults: ScenarioResult[] = [];
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < runs.length && !opts.signal?.aborted) {
      const i = next++;
      const { sc, engineName, makeEngine } = runs[i];
      const r = await runScenario(sc, { engineName, makeEngine, updateGolden: opts.updateGolden, missing: skipMissing, environment, onProgress: opts.onProgress });
      results[i] = r;
      opts.onResult?.(r, ++done, total);
    }
  };
  const guest = async () => {
    if (!kernel || inVm.length === 0 || opts.signal?.aborted) return;
    if (opts.updateGolden) opts.onProgress?.('microVM: golden files are compared, not written, in the guest (its root is read-only)');
    opts.onProgress?.(`microVM: ${inVm.length} scenario${inVm.length === 1 ? '' : 's'} on kernel ${kernel.release} (${inVm.map((s) => s.id).join(', ')})`);
    const { results: rs } = await runInVm(inVm, { kernel, engines: opts.engines, signal: opts.signal, onLine: opts.onVmLine, ...opts.vm });
    for (const r of rs) {
      vmResults.push(r);
      opts.onResult?.(r, ++done, total);
    }
  };
  const jobs = Math.max(1, Math.min(opts.jobs ?? 4, runs.length || 1));
  await Promise.all([guest(), ...Array.from({ length: jobs }, worker)]);
  // reports list scenarios in their order, whatever order they finished in
  return [...results.filter((r): r is ScenarioResult => r !== undefined), ...vmResults];
}
