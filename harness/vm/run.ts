// Scenarios in the microVM: one guest boot for the whole batch. The guest's results come back
// as they are, marked as microVM results (properties name the guest kernel); when the guest
// fails (boot, module, timeout, crash), every scenario it did not finish gets an error case
// carrying the guest console, never a pass.
import { parseTarget } from '../targets.js';
import type { IptablesVariant } from '../rules/iptables/tools.js';
import { GUEST_MODULES } from '../lab/capabilities.js';
import type { CaseResult, ScenarioResult } from '../report/results.js';
import { caseName } from '../run/runner.js';
import type { Scenario } from '../scenario/types.js';
import { bootGuest, consoleTail, type GuestOptions, type GuestRun } from './guest.js';
import type { GuestKernel } from './kernel.js';

export interface VmRunOptions {
  kernel: GuestKernel;
  engines: string[];
  /** the dockerd of each docker target, by label (the host's choice; the guest sees the host's files) */
  dockerds?: Record<string, string>;
  /** false: the guest traces no rule paths */
  rulePaths?: boolean;
  /** the iptables the guest's lab hosts run */
  hostIptables?: IptablesVariant;
  /** the whole guest run; default NETCONFORM_VM_TIMEOUT seconds, or 120 s + 60 s per scenario run (180 s on docker) */
  timeoutMs?: number;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  /** overrides for tests (modules, raw modules, accel, initramfs, boot timeout) */
  guest?: Partial<GuestOptions>;
}

export function defaultTimeoutMs(runs: number, env: NodeJS.ProcessEnv = process.env): number {
  const fromEnv = Number(env.NETCONFORM_VM_TIMEOUT);
  return fromEnv > 0 ? fromEnv * 1000 : 120_000 + 60_000 * runs;
}

export async function runInVm(scenarios: Scenario[], opts: VmRunOptions): Promise<{ results: ScenarioResult[]; guest: GuestRun }> {
  // a dockerd run costs several reference runs in the guest (daemon start 8-45 s under TCG): count it as three
  const runs = scenarios.length * opts.engines.reduce((n, e) => n + (parseTarget(e).engine === 'docker' ? 3 : 1), 0);
  const guest = await bootGuest(
    { kind: 'suite', scenarios, engines: opts.engines, dockerds: opts.dockerds, hostIptables: opts.hostIptables, rulePaths: opts.rulePaths, color: Boolean(process.stdout.isTTY && !process.env.NO_COLOR) },
    {
      kernel: opts.kernel,
      modules: GUEST_MODULES,
      timeoutMs: opts.timeoutMs ?? defaultTimeoutMs(runs),
      bootTimeoutMs: 60_000,
      signal: opts.signal,
      onLine: opts.onLine,
      ...opts.guest,
    },
  );
  const done = new Map((guest.results ?? []).map((r) => [`${r.scenarioId}\0${r.engine}`, r]));
  const results: ScenarioResult[] = [];
  for (const sc of scenarios) {
    for (const engine of opts.engines.map((e) => parseTarget(e).label)) {
      const r = done.get(`${sc.id}\0${engine}`) ?? failedResult(sc, engine, guest);
      results.push(markAsGuest(r, guest));
    }
  }
  return { results, guest };
}

function markAsGuest(r: ScenarioResult, g: GuestRun): ScenarioResult {
  const props = {
    runner: 'microvm',
    kernel: g.release,
    'vm.accel': g.accel,
    ...(g.timing.bootMs !== undefined ? { 'vm.boot-ms': g.timing.bootMs.toFixed(0) } : {}),
    ...(g.timing.harnessReadyMs !== undefined ? { 'vm.harness-ready-ms': g.timing.harnessReadyMs.toFixed(0) } : {}),
  };
  return {
    ...r,
    properties: { ...r.properties, ...props },
    caseProperties: { runner: 'microvm', kernel: g.release },
  };
}

function failedResult(sc: Scenario, engine: string, g: GuestRun): ScenarioResult {
  const why = g.outcome === 'ok' ? 'the guest finished without a result for this scenario' : g.detail;
  // worded as the runner words a scenario that broke off, so a comparison of two such runs is a failure, never an agreement
  const message = `scenario did not complete: microVM (${g.release}, ${g.accel}): ${why}\n--- guest console (tail) ---\n${consoleTail(g.console)}`;
  const cases: CaseResult[] = sc.expect.map((e, i) => ({ id: e.id, name: caseName(e), kind: e.kind, status: 'error', loc: e.loc, timeMs: 0, expectIndex: i, message }));
  return {
    scenarioId: sc.id,
    title: sc.title,
    file: sc.file,
    engine,
    engineDescription: engine,
    cases,
    ruleDump: '',
    transcript: [`microVM ${g.outcome}: ${why}`, '== guest console', g.console],
    timeMs: g.timing.totalMs,
    probes: 0,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: {},
    // the whole console, kept under reports/ with the failure (its tail is in the message)
    evidence: [{ name: 'guest-console.log', text: g.console }],
  };
}
