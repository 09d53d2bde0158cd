// Runs a set of scenarios on one or more engines, one lab at a time, and reports as it goes.
import { release } from 'node:os';
import type { Engine } from '../engine/types.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { DockerEngine } from '../engine/docker/engine.js';
import { dockerPool, shutdownDockerPool } from '../engine/docker/pool.js';
import { detectCapabilities, iptablesVersion, missingFeatures } from '../lab/capabilities.js';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { runScenario } from './runner.js';
import { compareRuns } from '../compare/differential.js';

export interface SuiteOptions {
  engines: string[];
  updateGolden?: boolean;
  onResult?: (r: ScenarioResult, index: number, total: number) => void;
  onProgress?: (line: string) => void;
  /** stop early (Ctrl-C): the scenario under way finishes its teardown, no new one starts */
  signal?: AbortSignal;
}

export function engineFactory(name: string): () => Engine {
  switch (name) {
    case 'reference':
      return () => new ReferenceEngine();
    case 'docker':
      return () => new DockerEngine();
    default:
      throw new Error(`unknown engine "${name}" (known: reference, docker)`);
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
  const factories = opts.engines.map((e) => [e, engineFactory(e)] as const);
  // fail before the first lab when the engine to certify is not there (exit 2, what to install)
  if (opts.engines.includes('docker')) await dockerPool().install();
  // with several engines, each scenario also gets a comparison of every engine with the first
  const total = scenarios.length * (2 * factories.length - 1);
  const results: ScenarioResult[] = [];
  try {
    for (const sc of scenarios) {
      const runs: ScenarioResult[] = [];
      for (const [engineName, makeEngine] of factories) {
        if (opts.signal?.aborted) return results;
        const r = await runScenario(sc, { engineName, makeEngine, updateGolden: opts.updateGolden, missing, environment, onProgress: opts.onProgress });
        runs.push(r);
        results.push(r);
        opts.onResult?.(r, results.length, total);
      }
      for (const other of runs.slice(1)) {
        const c = compareRuns(sc, runs[0], other);
        results.push(c);
        opts.onResult?.(c, results.length, total);
      }
    }
  } finally {
    await shutdownDockerPool();
  }
  return results;
}
