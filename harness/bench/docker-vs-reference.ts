// Benchmark section: what a scenario costs on a real dockerd compared with the reference
// engine, in one run (wall time per scenario; for docker also the daemon start, the image
// import and each container's `docker run`). Daemons are pooled as in a real run, so a
// scenario that reuses one shows no start cost.
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { loadScenarios } from '../scenario/load.js';
import { runScenario } from '../run/runner.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { DockerEngine, type DockerTimings } from '../engine/docker/engine.js';
import { dockerPool, shutdownDockerPool } from '../engine/docker/pool.js';
import { detectCapabilities, missingFeatures } from '../lab/capabilities.js';
import { scenarioStatus } from '../report/results.js';

export interface Row {
  scenario: string;
  referenceMs: number;
  dockerMs: number;
  docker: DockerTimings;
  ok: boolean;
}

const ms = (n: number | undefined) => (n === undefined ? '-' : n.toFixed(0));

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
      let engine: DockerEngine | undefined;
      const dock = await runScenario(sc, { engineName: 'docker', makeEngine: () => (engine = new DockerEngine()), missing, environment });
      rows.push({ scenario: sc.id, referenceMs: ref.timeMs, dockerMs: dock.timeMs, docker: engine!.timings, ok: [ref, dock].every((r) => scenarioStatus(r) === 'passed') });
    }
  } finally {
    await shutdownDockerPool();
  }
  const lines = [
    `## docker vs reference (${install.version}; per scenario, one run, daemons pooled)`,
    '',
    '| scenario | reference ms | docker ms | ratio | daemon start ms | image import ms | containers | ms per container |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    const cs = Object.values(r.docker.containerMs);
    const per = cs.length ? cs.reduce((a, b) => a + b, 0) / cs.length : undefined;
    const start = r.docker.freshDaemon ? ms(r.docker.daemonStartMs) : 'reused';
    const image = r.docker.freshDaemon ? ms(r.docker.imageMs) : 'reused';
    lines.push(`| ${r.scenario}${r.ok ? '' : ' (not passing)'} | ${ms(r.referenceMs)} | ${ms(r.dockerMs)} | ${(r.dockerMs / r.referenceMs).toFixed(1)}x | ${start} | ${image} | ${cs.length} | ${ms(per)} |`);
  }
  const sum = (f: (r: Row) => number) => rows.reduce((a, r) => a + f(r), 0);
  const all = rows.flatMap((r) => Object.values(r.docker.containerMs));
  const starts = rows.filter((r) => r.docker.freshDaemon);
  lines.push(
    `| **total** | ${ms(sum((r) => r.referenceMs))} | ${ms(sum((r) => r.dockerMs))} | ${(sum((r) => r.dockerMs) / sum((r) => r.referenceMs)).toFixed(1)}x | ${starts.length} starts, avg ${ms(starts.reduce((a, r) => a + (r.docker.daemonStartMs ?? 0), 0) / (starts.length || 1))} | avg ${ms(starts.reduce((a, r) => a + (r.docker.imageMs ?? 0), 0) / (starts.length || 1))} | ${all.length} | ${ms(all.reduce((a, b) => a + b, 0) / (all.length || 1))} |`,
  );
  console.log(lines.join('\n'));
  return rows;
}
