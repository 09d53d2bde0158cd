// Benchmark section `microvm`: what the microVM lane costs, beside the host figures. qemu start
// → guest ready (restored from the saved guest, and a cold boot), each VLAN scenario alone in a
// guest on the reference engine, dockerd's start alone in a guest, the VLAN scenarios on both
// engines as a run places them (several daemons per guest), and `npm run suite` (the CLI's whole
// default run, host and guest, as a user starts it). The host's load is printed with them:
// under software emulation every figure moves with it. Printed, never asserted.
import { spawnSync } from 'node:child_process';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { loadScenarios } from '../scenario/load.js';
import { GUEST_MODULES } from '../lab/capabilities.js';
import { runSuite } from '../run/suite.js';
import { isComparison } from '../report/timings.js';
import { scenarioStatus, type ScenarioResult } from '../report/results.js';
import { chooseKernel } from '../vm/kernel.js';
import { startGuest } from '../vm/guest.js';

/** The issue's targets on a 2-core machine (never asserted). */
const TARGETS = { readyMs: 3_000, vlanReferenceMs: 3_000, dockerdMs: 5_000, suiteMs: 15_000 };

const s = (ms: number | undefined) => (ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);
const vs = (ms: number | undefined, target: number) => (ms === undefined ? '' : ms <= target ? `   target ≤ ${s(target)}: within` : `   target ≤ ${s(target)}: OVER`);
const load = () => `load ${loadavg()[0].toFixed(1)} on ${cpus().length} cores`;

/** "" for a run that passed, else its status and first failure */
function status(r: ScenarioResult): string {
  if (scenarioStatus(r) === 'passed') return '';
  const first = r.cases.find((c) => c.status === 'failed' || c.status === 'error');
  return `  (${scenarioStatus(r)}${first ? `: ${first.name}: ${(first.message ?? '').split('\n')[0]}` : ''})`;
}

/** A pool's "dockerd started …" progress line as a figure against the target. */
function dockerdLine(l: string, how: string): void {
  const m = /in (\S+) in (\d+) ms, (?:image imported in (\d+) ms|image from the (seeded data root))/.exec(l);
  if (m) console.log(`  dockerd ready in the guest, ${how}: ${s(Number(m[2]))} (${m[1]}), image ${m[4] ? 'from the seeded data root' : `imported in ${s(Number(m[3]))}`}${vs(Number(m[2]), TARGETS.dockerdMs)}`);
}

export async function microvmFigures(): Promise<void> {
  const choice = chooseKernel(undefined);
  if (!choice.kernel) {
    console.log(`microVM: skipped: no guest kernel (${choice.error ?? choice.source}); scripts/get-kernel.sh fetches one`);
    return;
  }
  const kernel = choice.kernel;
  console.log(`microVM figures (kernel ${kernel.release}, TCG, one emulated CPU; ${load()} at the start)\n`);

  // 1. qemu start → ready: restored from the saved guest (what a run does), then a cold boot
  for (const snapshot of [true, false]) {
    const g = await startGuest({ kernel, modules: GUEST_MODULES, snapshot });
    try {
      if (!g.ready) throw new Error(`the guest did not start (${g.outcome}): ${g.detail}`);
      const t = g.timing;
      const how = t.restored ? 'restored from the saved guest' : `cold boot (kernel init ${s(t.bootMs)}, modules ${s(t.modulesMs)})`;
      console.log(`qemu start → guest ready:  ${s(t.readyMs)} ${how}; a process there ${t.processMs?.toFixed(0)} ms, here ${t.hostProcessMs?.toFixed(1)} ms${t.restored ? vs(t.readyMs, TARGETS.readyMs) : ''}`);
    } finally {
      await g.stop();
    }
  }

  // 2. the VLAN scenarios in the microVM: on the reference engine alone, one guest each (the
  // target's figure), then on both engines as a run places them (guests side by side)
  const { scenarios } = loadScenarios([join(packageRoot(), 'scenarios', 'vlan')]);
  for (const sc of scenarios) {
    const [r] = await runSuite([sc], { engines: ['reference'], kernel, allInVm: true });
    console.log(`a VLAN scenario alone in a guest, reference engine: ${sc.id.padEnd(24)} ${s(r.timeMs).padStart(7)}${status(r)}${vs(r.timeMs, TARGETS.vlanReferenceMs)}   (${load()})`);
  }
  // 3. one dockerd alone in a guest (a one-host scenario), then several at once
  const { scenarios: single } = loadScenarios([join(packageRoot(), 'scenarios', 'egress', 'masquerade.yaml')]);
  const alone: string[] = [];
  await runSuite(single, { engines: ['docker'], kernel, allInVm: true, onProgress: (l) => alone.push(l) });
  for (const l of alone) dockerdLine(l, 'alone');
  const engines = ['reference', 'docker'];
  const lines: string[] = [];
  const t0 = performance.now();
  const all = await runSuite(scenarios, { engines, kernel, allInVm: true, onProgress: (l) => lines.push(l), onVmLine: (l) => lines.push(l) });
  const results = all.filter((r) => !isComparison(r));
  const wall = performance.now() - t0;
  const ready = lines.filter((l) => l.includes('microVM: ready')).map((l) => /ready (\S+ s)/.exec(l)?.[1]);
  console.log(`VLAN scenarios in the microVM: ${s(wall)} for ${scenarios.length} scenarios × ${engines.length} engines (${lines.find((l) => l.startsWith('microVM:'))?.replace(/^microVM: /, '') ?? ''}; guests ready in ${ready.join(', ')}; ${load()})`);
  for (const r of results) console.log(`  ${r.scenarioId.padEnd(24)} ${r.engine.padEnd(24)} ${s(r.timeMs).padStart(8)}${status(r)}`);
  const started = lines.filter((x) => x.startsWith('dockerd started'));
  for (const l of started) dockerdLine(l, `${started.length} at once in ${ready.length} guests`);

  // 4. npm run suite: the CLI's default run as a user starts it (a new process, the guest included)
  const t1 = performance.now();
  const cli = spawnSync(process.execPath, [join(packageRoot(), 'dist', 'harness', 'cli.js'), 'run', join(packageRoot(), 'scenarios'), '--skip-tags', 'firewalld', '--junit', '/dev/null'], { stdio: 'ignore' });
  const suiteMs = performance.now() - t1;
  console.log(`npm run suite (run scenarios, reference engine): ${s(suiteMs)}, exit ${cli.status}${vs(suiteMs, TARGETS.suiteMs)}   (${load()} at the end)`);
}
