// Runs a set of scenarios on one or more engines, one lab at a time, and reports as it goes.
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
  /** stop early (Ctrl-C): the scenario under way finishes its teardown, no new one starts */
  signal?: AbortSignal;
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
  const total = scenarios.length * factories.length;
  const results: ScenarioResult[] = [];
  for (const sc of scenarios) {
    for (const [engineName, makeEngine] of factories) {
      if (opts.signal?.aborted) return results;
      const r = await runScenario(sc, { engineName, makeEngine, updateGolden: opts.updateGolden, missing, environment, onProgress: opts.onProgress });
      results.push(r);
      opts.onResult?.(r, results.length, total);
    }
  }
  return results;
}
