// Runs a set of scenarios on one or more engines, a few labs at a time, and reports as it goes.
import { release } from 'node:os';
import type { Engine } from '../engine/types.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { detectCapabilities, iptablesVersion, missingFeatures } from '../lab/capabilities.js';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { runScenario } from './runner.js';
import { parseTarget } from '../targets.js';

export interface SuiteOptions {
  engines: string[];
  updateGolden?: boolean;
  onResult?: (r: ScenarioResult, index: number, total: number) => void;
  onProgress?: (line: string) => void;
  /** stop early (Ctrl-C): the scenarios under way finish their teardown, no new one starts */
  signal?: AbortSignal;
  /** labs built at once (default 4). Labs are hermetic, so they can; probes mostly wait on timeouts. */
  jobs?: number;
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
  const caps = await detectCapabilities();
  const environment = {
    kernel: release(),
    iptables: await iptablesVersion(),
    node: process.version,
  };
  const missing = missingFeatures(caps);
  // canonical names ("reference" → "reference:docker-20.10"): results and JUnit name the profile
  const factories = opts.engines.map((e) => [parseTarget(e).label, engineFactory(e)] as const);
  const runs = scenarios.flatMap((sc) => factories.map(([engineName, makeEngine]) => ({ sc, engineName, makeEngine })));
  const results: (ScenarioResult | undefined)[] = new Array(runs.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < runs.length && !opts.signal?.aborted) {
      const i = next++;
      const { sc, engineName, makeEngine } = runs[i];
      const r = await runScenario(sc, { engineName, makeEngine, updateGolden: opts.updateGolden, missing, environment, onProgress: opts.onProgress });
      results[i] = r;
      opts.onResult?.(r, ++done, runs.length);
    }
  };
  const jobs = Math.max(1, Math.min(opts.jobs ?? 4, runs.length));
  await Promise.all(Array.from({ length: jobs }, worker));
  // reports list scenarios in their order, whatever order they finished in
  return results.filter((r): r is ScenarioResult => r !== undefined);
}
