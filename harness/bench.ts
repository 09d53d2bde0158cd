// npm run bench: the speed figures the project holds itself to, measured on real labs.
// Prints numbers; never asserts them (timings belong in a report, not in a test).
// Sections: `reference` (the reference engine's own targets) and `docker-vs-reference` (the
// same scenarios on a real dockerd) and `microvm` (the guest's figures); `npm run bench -- NAME…`
// runs only the named ones. `noisy` (npm test and npm run suite beside stress-ng, 10+ minutes)
// runs only when named, last, and takes the words after its name as its options.
import { join } from 'node:path';
import { loadScenarioText, loadScenarios } from './scenario/load.js';
import { runScenario } from './run/runner.js';
import { engineFactory, runSuite } from './run/suite.js';
import { detectCapabilities, missingFeatures } from './lab/capabilities.js';
import { packageRoot } from './paths.js';
import type { ScenarioResult } from './report/results.js';
import { scenarioStatus } from './report/results.js';
import { destroyAllLabs } from './lab/lab.js';
import { dockerVsReference } from './bench/docker-vs-reference.js';
import { microvmFigures } from './bench/microvm.js';
import { noisyNeighbour } from './bench/noisy.js';

const environment = { kernel: 'bench' };

function containers(n: number): string {
  return Array.from({ length: n }, (_, i) => `  c${i}: { listen: [tcp/80] }`).join('\n');
}

/** A scenario of n containers on the default bridge; `matrix` sources probe `targets` each. */
function syntheticScenario(n: number, sources = 1, targets = 1): string {
  const names = (k: number, off = 0) => Array.from({ length: k }, (_, i) => `c${i + off}`).join(', ');
  return `id: bench-${n}
title: ${n} containers on the default bridge
covers: [BR-02]
containers:
${containers(n)}
expect:
  - id: BR-02
    matrix: { from: [${names(sources)}], to: [${names(targets, n - targets)}], proto: tcp, port: 80 }
    result: connected
`;
}

/** `hosts` Docker hosts on one lan, each with a macvlan network on eth0 and `n` containers. */
function macvlanScenario(hosts: number, n: number): string {
  const refs: string[] = [];
  const hostText = Array.from({ length: hosts }, (_, h) => {
    const cs = Array.from({ length: n }, (_, i) => {
      refs.push(`h${h}/m${i}`);
      return `      m${i}: { network: pub, listen: [tcp/80] }`;
    });
    return `  h${h}:
    networks:
      pub: { driver: macvlan, subnet: 10.99.0.0/16, gateway: 10.99.255.254, ip-range: 10.99.${h}.0/24, options: { parent: eth0 } }
    containers:
${cs.join('\n')}`;
  }).join('\n');
  return `id: bench-macvlan
title: ${hosts} hosts with ${n} macvlan containers each
covers: [MV-03]
requires: [macvlan]
hosts:
${hostText}
expect:
  - id: MV-03
    matrix: { from: [${refs.join(', ')}], to: [${refs.join(', ')}], proto: tcp, port: 80 }
    result: connected
`;
}

async function runText(text: string, missing: Map<string, string>): Promise<ScenarioResult> {
  const sc = loadScenarioText(text, 'bench');
  const r = await runScenario(sc, { engineName: 'reference', makeEngine: engineFactory('reference'), missing, environment });
  if (scenarioStatus(r) !== 'passed') {
    const bad = r.cases.find((c) => c.status !== 'passed');
    throw new Error(`bench scenario ${sc.id} did not pass: ${bad?.message}`);
  }
  return r;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const ms = (x: number) => `${x.toFixed(1)} ms`;
const verdict = (value: number, target: number) => (value <= target ? 'within target' : 'OVER TARGET');

async function referenceFigures(): Promise<void> {
  const missing = missingFeatures(await detectCapabilities());
  console.log('netconform benchmark (reference engine, real namespaces, real packets)\n');

  // 1. five containers, built, probed once and torn down
  const five: ScenarioResult[] = [];
  for (let i = 0; i < 7; i++) five.push(await runText(syntheticScenario(5), missing));
  const total = median(five.map((r) => r.timeMs));
  const buildTeardown = median(five.map((r) => r.phaseMs.build + r.phaseMs.teardown));
  console.log(`five-container scenario:   ${ms(total)} total (median of 7), build ${ms(median(five.map((r) => r.phaseMs.build)))} + teardown ${ms(median(five.map((r) => r.phaseMs.teardown)))} = ${ms(buildTeardown)}   target < 100 ms: ${verdict(buildTeardown, 100)}`);

  // 2. the whole catalogue
  const { scenarios, errors } = loadScenarios([join(packageRoot(), 'scenarios')]);
  if (errors.length) throw new Error(`scenarios do not validate: ${errors[0].message}`);
  // with and without rule paths, alternately (a busy machine's drift hits both alike)
  const walls = { on: [] as number[], off: [] as number[] };
  let results: ScenarioResult[] = [];
  for (let i = 0; i < 3; i++) {
    for (const mode of ['off', 'on'] as const) {
      const t0 = performance.now();
      results = await runSuite(scenarios, { engines: ['reference'], rulePaths: mode === 'on' });
      walls[mode].push(performance.now() - t0);
    }
  }
  const wall = median(walls.on);
  const without = median(walls.off);
  const probes = results.reduce((n, r) => n + r.probes, 0);
  const failing = results.filter((r) => ['failed', 'error'].includes(scenarioStatus(r))).length;
  const secs = (xs: number[]) => xs.map((x) => (x / 1000).toFixed(2)).join(', ');
  console.log(`whole catalogue:           ${(wall / 1000).toFixed(2)} s for ${results.length} scenarios, ${probes} probes${failing ? ` (${failing} not passing!)` : ''}   target < 15 s: ${verdict(wall, 15_000)}`);
  const extra = (wall / without - 1) * 100;
  console.log(
    `  rule paths:              ${(wall / 1000).toFixed(2)} s with, ${(without / 1000).toFixed(2)} s without (medians of 3 alternate runs: ${secs(walls.on)} / ${secs(walls.off)}): ${extra >= 0 ? '+' : ''}${extra.toFixed(0)} %   target ≤ +20 %: ${extra <= 20 ? 'within target' : 'OVER TARGET'}`,
  );

  // 3. a 1,000-pair reachability matrix: 40 sources × 25 targets on one bridge. Every probed
  // pair costs two entries in the kernel's neighbour table (1,024 for the whole machine), so
  // the runner probes in waves and frees the lab's entries between them (run/waves.ts).
  const matrix = await runText(syntheticScenario(65, 40, 25), missing);
  console.log(`1,000-pair TCP matrix:     ${ms(matrix.phaseMs.probe)} probing (${matrix.probes} probes; lab build ${ms(matrix.phaseMs.build)}, teardown ${ms(matrix.phaseMs.teardown)})   target < 2 s: ${verdict(matrix.phaseMs.probe, 2000)}`);

  // 3b. two hosts with 50 macvlan containers each on one lan, probed as a full matrix
  if (!missing.has('macvlan')) {
    const mv = await runText(macvlanScenario(2, 50), missing);
    console.log(`2 hosts × 50 macvlan:      build ${ms(mv.phaseMs.build)}, ${mv.probes}-probe full matrix ${ms(mv.phaseMs.probe)}, teardown ${ms(mv.phaseMs.teardown)}`);
  } else {
    console.log(`2 hosts × 50 macvlan:      skipped: ${missing.get('macvlan')}`);
  }

  // 4. cost per container as labs grow
  console.log('\ncontainers   build      teardown   per container (build+teardown)');
  const perContainer: number[] = [];
  for (const n of [25, 50, 100, 200]) {
    const r = await runText(syntheticScenario(n), missing);
    const each = (r.phaseMs.build + r.phaseMs.teardown) / n;
    perContainer.push(each);
    console.log(`${String(n).padStart(10)}   ${ms(r.phaseMs.build).padStart(9)}  ${ms(r.phaseMs.teardown).padStart(9)}  ${ms(each)}`);
  }
  const growth = perContainer[perContainer.length - 1] / perContainer[0];
  console.log(`per-container cost at 200 is ${growth.toFixed(2)}× the cost at 25 (linear: ≈ 1×)`);
}

const SECTIONS: Record<string, () => Promise<unknown>> = {
  reference: referenceFigures,
  'docker-vs-reference': () => dockerVsReference(),
  microvm: microvmFigures,
};

/** Sections run only when named; the words after the name are the section's arguments. */
const WITH_ARGS: Record<string, (args: string[]) => Promise<unknown>> = {
  noisy: noisyNeighbour,
};

async function main(argv: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmark builds real labs: run it as root');
  const at = argv.findIndex((a) => Object.hasOwn(WITH_ARGS, a));
  const names = at < 0 ? argv : argv.slice(0, at);
  for (const n of names.length || at >= 0 ? names : Object.keys(SECTIONS)) {
    const run = SECTIONS[n];
    if (!run) throw new Error(`unknown section ${n} (known: ${[...Object.keys(SECTIONS), ...Object.keys(WITH_ARGS)].join(', ')})`);
    await run();
    console.log('');
  }
  if (at >= 0) await WITH_ARGS[argv[at]](argv.slice(at + 1));
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void destroyAllLabs().finally(() => process.exit(130)));
main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${(e as Error).message}`);
    void destroyAllLabs().finally(() => process.exit(1));
  },
);
