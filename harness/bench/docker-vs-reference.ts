// Benchmark section: what a scenario costs on a real dockerd compared with the reference
// engine, in one run. Per scenario: wall time on each engine and their ratio (the project's
// target: the reference engine at least 20× faster), and the same for the engine's own part
// (lab build + teardown; the probe phase waits out the same timeouts on both engines), and the
// time inside the engines' own calls (EngineClock). For
// docker also the daemon start, the image import and each container's `docker run`. Daemons
// are pooled as in a real run, so a scenario that reuses one shows no start cost.
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { loadScenarios } from '../scenario/load.js';
import { runScenario } from '../run/runner.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { DockerEngine, type DockerTimings } from '../engine/docker/engine.js';
import { dockerPool, shutdownDockerPool } from '../engine/docker/pool.js';
import { detectCapabilities, missingFeatures } from '../lab/capabilities.js';
import { scenarioStatus, type ScenarioResult } from '../report/results.js';

export const TARGET_RATIO = 20;

export interface Row {
  scenario: string;
  referenceMs: number;
  dockerMs: number;
  /** build + teardown */
  referenceEngineMs: number;
  dockerEngineMs: number;
  /** inside the engine's own calls only (no lab, agents or probes) */
  referenceOwnMs: number;
  dockerOwnMs: number;
  /** one per Docker host of the scenario */
  docker: DockerTimings[];
  ok: boolean;
  skipped: boolean;
}

const ms = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(0));
const ratio = (d: number, r: number) => (r > 0 ? d / r : 0);
const engineMs = (r: ScenarioResult) => r.phaseMs.build + r.phaseMs.teardown;

export async function dockerVsReference(paths = [join(packageRoot(), 'scenarios')]): Promise<Row[]> {
  const { scenarios, errors } = loadScenarios(paths);
  if (errors.length) throw new Error(`invalid scenarios: ${errors.length} errors (netconform validate)`);
  const install = await dockerPool().install();
  const missing = missingFeatures(await detectCapabilities());
  const environment = {};
  const rows: Row[] = [];
  try {
    for (const sc of scenarios) {
      const ref = await runScenario(sc, { engineName: 'reference', makeEngine: () => new ReferenceEngine(), missing, environment });
      const engines: DockerEngine[] = [];
      const makeEngine = () => {
        const e = new DockerEngine();
        engines.push(e);
        return e;
      };
      const dock = await runScenario(sc, { engineName: 'docker', makeEngine, missing, environment });
      rows.push({
        scenario: sc.id,
        referenceMs: ref.timeMs,
        dockerMs: dock.timeMs,
        referenceEngineMs: engineMs(ref),
        dockerEngineMs: engineMs(dock),
        referenceOwnMs: ref.phaseMs.engine ?? 0,
        dockerOwnMs: dock.phaseMs.engine ?? 0,
        docker: engines.map((e) => e.timings),
        ok: [ref, dock].every((r) => scenarioStatus(r) === 'passed'),
        skipped: [ref, dock].every((r) => scenarioStatus(r) === 'skipped'),
      });
    }
  } finally {
    await shutdownDockerPool();
  }
  console.log(formatRows(rows, install.version));
  return rows;
}

export function formatRows(rows: Row[], version: string): string {
  const lines = [
    `## docker vs reference (${version}; per scenario, one run, daemons pooled; target: reference ≥ ${TARGET_RATIO}× faster)`,
    '',
    '| scenario | reference ms | docker ms | ratio | build+teardown: reference ms | docker ms | ratio | engine calls: reference ms | docker ms | ratio | daemon starts (ms) | image import ms | containers | ms per container |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  const measured = rows.filter((r) => !r.skipped);
  for (const r of rows) {
    if (r.skipped) {
      lines.push(`| ${r.scenario} (skipped: kernel feature missing) | - | - | - | - | - | - | - | - | - | - | - | - | - |`);
      continue;
    }
    const cs = r.docker.flatMap((t) => Object.values(t.containerMs));
    const per = cs.length ? cs.reduce((a, b) => a + b, 0) / cs.length : undefined;
    const fresh = r.docker.filter((t) => t.freshDaemon);
    const start = fresh.length ? fresh.map((t) => ms(t.daemonStartMs)).join(' + ') : 'reused';
    const image = fresh.length ? fresh.map((t) => ms(t.imageMs)).join(' + ') : 'reused';
    lines.push(
      `| ${r.scenario}${r.ok ? '' : ' (not passing)'} | ${ms(r.referenceMs)} | ${ms(r.dockerMs)} | ${ratio(r.dockerMs, r.referenceMs).toFixed(1)}× | ${ms(r.referenceEngineMs)} | ${ms(r.dockerEngineMs)} | ${ratio(r.dockerEngineMs, r.referenceEngineMs).toFixed(1)}× | ${ms(r.referenceOwnMs)} | ${ms(r.dockerOwnMs)} | ${ratio(r.dockerOwnMs, r.referenceOwnMs).toFixed(1)}× | ${start} | ${image} | ${cs.length} | ${ms(per)} |`,
    );
  }
  const sum = (f: (r: Row) => number) => measured.reduce((a, r) => a + f(r), 0);
  const all = measured.flatMap((r) => r.docker.flatMap((t) => Object.values(t.containerMs)));
  const starts = measured.flatMap((r) => r.docker.filter((t) => t.freshDaemon));
  const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / (xs.length || 1);
  lines.push(
    `| **total** | ${ms(sum((r) => r.referenceMs))} | ${ms(sum((r) => r.dockerMs))} | ${ratio(sum((r) => r.dockerMs), sum((r) => r.referenceMs)).toFixed(1)}× | ${ms(sum((r) => r.referenceEngineMs))} | ${ms(sum((r) => r.dockerEngineMs))} | ${ratio(sum((r) => r.dockerEngineMs), sum((r) => r.referenceEngineMs)).toFixed(1)}× | ${ms(sum((r) => r.referenceOwnMs))} | ${ms(sum((r) => r.dockerOwnMs))} | ${ratio(sum((r) => r.dockerOwnMs), sum((r) => r.referenceOwnMs)).toFixed(1)}× | ${starts.length} starts, avg ${ms(avg(starts.map((t) => t.daemonStartMs ?? 0)))} | avg ${ms(avg(starts.map((t) => t.imageMs ?? 0)))} | ${all.length} | ${ms(avg(all))} |`,
  );
  const meets = measured.filter((r) => ratio(r.dockerMs, r.referenceMs) >= TARGET_RATIO).length;
  const meetsEngine = measured.filter((r) => ratio(r.dockerEngineMs, r.referenceEngineMs) >= TARGET_RATIO).length;
  const meetsOwn = measured.filter((r) => ratio(r.dockerOwnMs, r.referenceOwnMs) >= TARGET_RATIO).length;
  lines.push(
    '',
    `target reference ≥ ${TARGET_RATIO}× faster per scenario: ${meets}/${measured.length} scenarios on wall time, ${meetsEngine}/${measured.length} on build+teardown, ${meetsOwn}/${measured.length} on the engines' own calls${meets === measured.length ? '' : ' — OVER TARGET on wall time'}`,
    'wall time and build+teardown include what the harness adds for both engines alike (the lab, probe agents, probes waiting out their timeouts); the engines\' own calls are start, networks, containers, sync, steps and stop.',
  );
  return lines.join('\n');
}
