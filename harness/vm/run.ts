// Scenarios in the microVM: one guest for the whole batch, driven from this host. Each scenario
// runs through the same runner as on the host, with the guest as its machine (its commands,
// probe agents and daemons run in the guest; the harness stays here). Results are marked as
// microVM results (properties name the guest kernel); when the guest fails (boot, module,
// mount, timeout, a guest that stopped answering), every scenario it did not finish gets an
// error case carrying the guest console, never a pass.
import { release as hostRelease } from 'node:os';
import { parseTarget } from '../targets.js';
import type { IptablesVariant } from '../rules/iptables/tools.js';
import { GUEST_MODULES, missingFeatures } from '../lab/capabilities.js';
import { guestCapabilities } from './guest-caps.js';
import type { CaseResult, ScenarioResult } from '../report/results.js';
import { caseName, runScenario } from '../run/runner.js';
import type { Scenario } from '../scenario/types.js';
import { onMachine } from '../machine/machine.js';
import type { DockerInstall } from '../engine/docker/locate.js';
import type { Engine } from '../engine/types.js';
import { consoleTail, startGuest, type Guest, type GuestOptions } from './guest.js';
import type { GuestKernel } from './kernel.js';

export interface VmRunOptions {
  kernel: GuestKernel;
  engines: string[];
  /** engine factories by target label (the suite's; the docker one needs its modules loaded) */
  factories: Map<string, () => Engine>;
  /** the dockerd build the host located for each docker target, by label (the guest sees the same files) */
  dockers?: Map<string, DockerInstall>;
  /** a limit on the guest's whole run (--vm-timeout); none by default: see defaultTimeoutMs */
  /** false: the guest traces no rule paths */
  rulePaths?: boolean;
  /** the iptables the guest's lab hosts run */
  hostIptables?: IptablesVariant;
  timeoutMs?: number;
  /** scenarios in the guest at once (default 4) */
  jobs?: number;
  updateGolden?: boolean;
  signal?: AbortSignal;
  onLine?: (line: string) => void;
  onProgress?: (line: string) => void;
  /** each scenario run as it finishes */
  onResult?: (r: ScenarioResult) => void;
  /** overrides for tests (modules, raw modules, accel, boot timeout, snapshot) */
  guest?: Partial<GuestOptions>;
}

/**
 * The guest's overall limit: NETCONFORM_VM_TIMEOUT seconds when set, else none. Every wait in
 * the guest is on an event; a command that hangs meets its hang guard (machine.ts), and a
 * guest that stops answering is caught by its heartbeat (guest.ts).
 */
export function defaultTimeoutMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const fromEnv = Number(env.NETCONFORM_VM_TIMEOUT);
  return fromEnv > 0 ? fromEnv * 1000 : undefined;
}

export async function runInVm(scenarios: Scenario[], opts: VmRunOptions): Promise<{ results: ScenarioResult[]; guest: Guest }> {
  const guest = await startGuest({ kernel: opts.kernel, modules: GUEST_MODULES, signal: opts.signal, onLine: opts.onLine, ...opts.guest });
  const done = new Map<string, ScenarioResult>();
  const key = (id: string, engine: string) => `${id}\0${engine}`;
  if (guest.ready) {
    const m = guest.machine!;
    const sec = (ms?: number) => ((ms ?? 0) / 1000).toFixed(1);
    opts.onLine?.(
      `microVM: ready ${sec(guest.timing.readyMs)} s after qemu started (${guest.timing.restored ? 'restored from the saved guest' : 'booted'}, ${guest.accel}); a process takes ${guest.timing.processMs?.toFixed(0)} ms there (${m.speed.factor.toFixed(0)}× this host)`,
    );
    const limit = opts.timeoutMs ?? defaultTimeoutMs();
    const timer = limit
      ? setTimeout(() => guest.fail('timeout', `the guest did not finish within ${(limit / 1000).toFixed(0)} s (NETCONFORM_VM_TIMEOUT or --vm-timeout); qemu was killed`), limit)
      : undefined;
    try {
      await onMachine(m, async () => {
        const caps = await guestCapabilities(guest);
        const environment = { kernel: guest.release, iptables: caps.iptables, node: process.version, runner: 'microvm', 'host.kernel': hostRelease() };
        if (opts.dockers?.size) {
          const { configureDockerPool } = await import('../engine/docker/pool.js');
          for (const [label, install] of opts.dockers) configureDockerPool({ label, install });
        }
        const runs = scenarios.flatMap((sc) => opts.engines.map((e) => ({ sc, label: parseTarget(e).label })));
        const lane = async (queue: typeof runs) => {
          while (queue.length && guest.ready && !opts.signal?.aborted) {
            const { sc, label } = queue.shift()!;
            const r = await runScenario(sc, { engineName: label, makeEngine: opts.factories.get(label)!, updateGolden: opts.updateGolden, missing: missingFeatures(caps.capabilities), environment, onProgress: opts.onProgress, hostIptables: opts.hostIptables, rulePaths: opts.rulePaths });
            if (!guest.ready) break; // what the guest's end interrupted is reported below, with its console
            const marked = markAsGuest(r, guest);
            done.set(key(sc.id, label), marked);
            opts.onResult?.(marked);
          }
        };
        const isDocker = (r: (typeof runs)[number]) => parseTarget(r.label).engine === 'docker';
        const shared = runs.filter((r) => !isDocker(r));
        const jobs = Math.max(1, Math.min(opts.jobs ?? 4, shared.length || 1));
        // real builds take turns, one target after the other: a target's daemons stop once its
        // last scenario is done (the guest's memory holds a few daemons, not every build's)
        const dockerTurns = async () => {
          const labels = [...new Set(runs.filter(isDocker).map((r) => r.label))];
          for (const label of labels) {
            await lane(runs.filter((r) => r.label === label));
            if (labels.length > 1) await (await import('../engine/docker/pool.js')).shutdownDockerPool(label);
          }
        };
        await Promise.all([dockerTurns(), ...Array.from({ length: jobs }, () => lane(shared))]);
      });
    } catch (e) {
      guest.fail('harness-failed', `running the scenarios in the guest: ${(e as Error).stack ?? e}`);
    } finally {
      clearTimeout(timer);
    }
  }
  await guest.stop();
  // nothing to stop in there: the guest's end took its daemons along; the pool is forgotten
  if (opts.dockers?.size && guest.machine) await onMachine(guest.machine, async () => (await import('../engine/docker/pool.js')).shutdownDockerPool());
  const results: ScenarioResult[] = [];
  for (const sc of scenarios) {
    for (const engine of opts.engines.map((e) => parseTarget(e).label)) {
      const r = done.get(key(sc.id, engine));
      if (r) results.push(r);
      else {
        const f = failedResult(sc, engine, guest);
        results.push(f);
        opts.onResult?.(f);
      }
    }
  }
  return { results, guest };
}

function markAsGuest(r: ScenarioResult, g: Guest): ScenarioResult {
  const t = g.timing;
  const props = {
    runner: 'microvm',
    kernel: g.release,
    'vm.accel': g.accel,
    'vm.restored': String(Boolean(t.restored)),
    ...(t.readyMs !== undefined ? { 'vm.ready-ms': t.readyMs.toFixed(0) } : {}),
    ...(t.bootMs !== undefined ? { 'vm.boot-ms': t.bootMs.toFixed(0) } : {}),
    ...(t.processMs !== undefined ? { 'vm.process-ms': t.processMs.toFixed(0) } : {}),
  };
  return {
    ...r,
    properties: { ...r.properties, ...props },
    caseProperties: { runner: 'microvm', kernel: g.release },
  };
}

function failedResult(sc: Scenario, engine: string, g: Guest): ScenarioResult {
  const why = g.outcome === 'ok' ? 'the guest finished without a result for this scenario' : g.detail;
  // worded as the runner words a scenario that broke off, so a comparison of two such runs is a failure, never an agreement
  const message = `scenario did not complete: microVM (${g.release}, ${g.accel}): ${why}\n--- guest console (tail) ---\n${consoleTail(g.console())}`;
  const cases: CaseResult[] = sc.expect.map((e, i) => ({ id: e.id, name: caseName(e), kind: e.kind, status: 'error', loc: e.loc, timeMs: 0, expectIndex: i, message }));
  return {
    scenarioId: sc.id,
    title: sc.title,
    file: sc.file,
    engine,
    engineDescription: engine,
    cases,
    ruleDump: '',
    transcript: [`microVM ${g.outcome}: ${why}`, '== guest console', g.console()],
    timeMs: g.timing.totalMs,
    probes: 0,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: { runner: 'microvm', kernel: g.release, 'vm.accel': g.accel },
    caseProperties: { runner: 'microvm', kernel: g.release },
    // the whole console, kept under reports/ with the failure (its tail is in the message)
    evidence: [{ name: 'guest-console.log', text: g.console() }],
  };
}
