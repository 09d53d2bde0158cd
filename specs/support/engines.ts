// Running one scenario on the reference engine and on a real dockerd, and comparing them.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { expect } from 'vitest';
import { compareRuns } from '../../harness/compare/differential.js';
import { runScenario } from '../../harness/run/runner.js';
import { engineFactory, loadDockerEngine } from '../../harness/run/suite.js';
import type { ScenarioResult } from '../../harness/report/results.js';
import { loadScenarioText } from '../../harness/scenario/load.js';
import type { Scenario } from '../../harness/scenario/types.js';
import { stateBase } from '../../harness/engine/docker/paths.js';
import { shutdownDockerPool } from '../../harness/engine/docker/pool.js';
import { buildFor } from '../../harness/engine/docker/builds.js';
import { parseTarget } from '../../harness/targets.js';
import { fingerprintStartingNamespace, labNamespaces } from './fingerprint.js';

const environment = { kernel: 'test' };

let labels: Promise<{ reference: string; docker: string }> | undefined;

/**
 * The targets `docker` and `reference` stand for in these specs: Debian's dockerd (docker,
 * reference:docker-20.10), or the build NETCONFORM_DOCKERD names, under its own release's
 * profile (`NETCONFORM_DOCKERD=/var/cache/netconform/engines/28/dockerd npm test` certifies 28.5.2
 * as docker:docker-28 against reference:docker-28).
 */
export function specTargets(): Promise<{ reference: string; docker: string }> {
  labels ??= process.env.NETCONFORM_DOCKERD
    ? buildFor(parseTarget('docker')).then((b) => ({ reference: `reference:${b.profile}`, docker: b.label }))
    : Promise.resolve({ reference: 'reference', docker: 'docker' });
  return labels;
}

export async function runOn(engine: 'reference' | 'docker', sc: Scenario, missing = new Map<string, string>()): Promise<ScenarioResult> {
  if (engine === 'docker') await loadDockerEngine();
  const name = (await specTargets())[engine];
  return runScenario(sc, { engineName: name, makeEngine: engineFactory(name), missing, environment });
}

export interface Differential {
  reference: ScenarioResult;
  docker: ScenarioResult;
  comparison: ScenarioResult;
}

/** Both engines at once (their labs are apart), then the comparison. */
export async function runBoth(sc: Scenario, missing = new Map<string, string>()): Promise<Differential> {
  const [reference, docker] = await Promise.all([runOn('reference', sc, missing), runOn('docker', sc, missing)]);
  return { reference, docker, comparison: compareRuns(sc, reference, docker) };
}

/** A scenario written inline in a spec. */
export function scenario(yaml: string, name = 'inline.yaml'): Scenario {
  return loadScenarioText(yaml, `specs/${name}`);
}


/** Processes of ours that belong to a Docker daemon: dockerd, containerd, shims, proxies. */
export function daemonProcesses(pid = process.pid): string[] {
  const marker = `docker-${pid}-`;
  const out: string[] = [];
  for (const p of readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    try {
      const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8').replace(/\0/g, ' ');
      // dockerd and containerd name their state folder; containers sit in the daemon's cgroup
      if (cmd.includes(marker) || readFileSync(`/proc/${p}/cgroup`, 'utf8').includes(`netconform-${marker}`)) out.push(`${p} ${cmd}`);
    } catch {
      /* gone */
    }
  }
  return out;
}

/** State folders this process's daemons left. */
export function daemonStateDirs(pid = process.pid): string[] {
  const base = stateBase();
  return existsSync(base) ? readdirSync(base).filter((n) => n.startsWith(`docker-${pid}-`)) : [];
}

/** Mounts in the starting mount namespace that a daemon could have left. */
export function daemonMounts(): string[] {
  return readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .filter((l) => l.includes(stateBase()) || l.includes('/run/netconform'));
}

/** After a file's docker runs: daemons stopped, nothing of them left, the starting namespace as it was. */
export async function expectMachineClean(before: string): Promise<void> {
  await shutdownDockerPool();
  expect(daemonProcesses()).toEqual([]);
  expect(daemonStateDirs()).toEqual([]);
  expect(daemonMounts()).toEqual([]);
  expect(await labNamespaces()).toEqual([]);
  expect(await fingerprintStartingNamespace()).toBe(before);
}
