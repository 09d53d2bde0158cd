// The kernel matrix run: the same scenarios in a microVM guest of each kernel, guests side by
// side (each runs on one emulated CPU, so two cores run two at once), each run labelled with its
// kernel so every report tells the columns apart and shows the scenario × kernel matrix.
import { availableParallelism } from 'node:os';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { onKernel } from '../report/kernel-matrix.js';
import { runSuite, type SuiteOptions } from '../run/suite.js';
import type { NamedKernel } from './kernels.js';

/** A result as one column of the matrix: a copy, for runSuite still finds its runs by their engine. */
function labelled(r: ScenarioResult, k: NamedKernel): ScenarioResult {
  return { ...r, kernel: k.label, engine: onKernel(r.engine, k.label) };
}

export interface MatrixOptions extends SuiteOptions {
  /** guests at once (default: the machine's cores, at most the kernels' number) */
  guests?: number;
  /** a line at each kernel's start and end */
  onKernel?: (line: string) => void;
}

/** Runs every scenario on every kernel; results in the kernels' order, each labelled. */
export async function runOnKernels(scenarios: Scenario[], kernels: NamedKernel[], opts: MatrixOptions): Promise<ScenarioResult[]> {
  const perKernel: ScenarioResult[][] = kernels.map(() => []);
  const width = Math.max(1, Math.min(kernels.length, opts.guests ?? availableParallelism()));
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < kernels.length && !opts.signal?.aborted) {
      const i = next++;
      const k = kernels[i];
      const t0 = performance.now();
      opts.onKernel?.(`kernel ${k.label} (${k.kernel.release}): ${scenarios.length} scenarios in its microVM`);
      const results = await runSuite(scenarios, {
        ...opts,
        kernel: k.kernel,
        allInVm: true,
        // the kernels' guests already share the cores
        vmGuests: opts.vmGuests ?? Math.max(1, Math.floor(availableParallelism() / width)),
        onResult: (r, _i, n) => opts.onResult?.(labelled(r, k), ++done, n * kernels.length),
        onVmLine: opts.onVmLine ? (l) => opts.onVmLine!(`[${k.label}] ${l}`) : undefined,
      });
      perKernel[i] = results.map((r) => labelled(r, k));
      opts.onKernel?.(`kernel ${k.label}: done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
  };
  await Promise.all(Array.from({ length: width }, worker));
  return perKernel.flat();
}
