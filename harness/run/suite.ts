// Runs a set of scenarios on one or more engines, a few labs at a time, and reports as it goes.
// Scenarios the host kernel cannot run go to microVM guests of a guest kernel when one is
// configured (harness/vm; one guest per core, side by side), and are skipped with the reason
// otherwise; the guests start while the host's labs run.
import { availableParallelism, release } from 'node:os';
import type { Engine } from '../engine/types.js';
import { ReferenceEngine } from '../engine/reference/engine.js';
import { detectCapabilities, iptablesVersion, missingFeatures } from '../lab/capabilities.js';
import type { ScenarioResult } from '../report/results.js';
import type { Scenario } from '../scenario/types.js';
import { runScenario, usesNftables } from './runner.js';
import { firewallBackend, parseTarget } from '../targets.js';
import type { IptablesVariant } from '../rules/iptables/tools.js';
import { GET_KERNEL_HINT, type GuestKernel } from '../vm/kernel.js';
import { placeScenarios, skipReasons, splitForGuests } from '../vm/plan.js';
import { runInVm, type VmRunOptions } from '../vm/run.js';
import { compareRuns } from '../compare/differential.js';
import type { DockerInstall } from '../engine/docker/locate.js';
import { keepEvidence } from '../report/evidence.js';
import { daemonKey } from '../engine/docker/flags.js';

export interface SuiteOptions {
  engines: string[];
  updateGolden?: boolean;
  onResult?: (r: ScenarioResult, index: number, total: number) => void;
  onProgress?: (line: string) => void;
  /** stop early (Ctrl-C): the scenarios under way finish their teardown, no new one starts */
  signal?: AbortSignal;
  /** labs built at once (default 4). Labs are hermetic, so they can; probes mostly wait on timeouts. */
  jobs?: number;
  /** guest kernel for scenarios the host kernel cannot run; null or undefined: none */
  kernel?: GuestKernel | null;
  /** why there is no guest kernel (shown in skip reasons) */
  noKernelReason?: string;
  /** run every scenario in the microVM (`run --kernel`) */
  allInVm?: boolean;
  /** guest console lines (init and harness output) as they arrive */
  onVmLine?: (line: string) => void;
  vm?: Partial<VmRunOptions>;
  /** compare engines per scenario (default); the guest leaves it to the host */
  compare?: boolean;
  /** trace every reach probe's rule path (default: on) */
  rulePaths?: boolean;
  /**
   * where the logs of a real daemon (and a microVM guest) go when a scenario fails or its
   * comparison disagrees, named in the failure messages (`run` puts them beside the JUnit
   * file: reports/logs); without it, results carry them in memory (the guest sends them home)
   */
  evidenceDir?: string;
  /** the iptables lab hosts run unless a scenario's host says (default: the machine's own) */
  hostIptables?: IptablesVariant;
  /** microVM guests side by side for the scenarios in the microVM (default: one per core) */
  vmGuests?: number;
}

/**
 * The docker engine's modules (testcontainers, dockerode: a third of a second to import here,
 * many seconds in an emulated microVM) load only for a run that asks for that engine.
 */
let dockerModules: (typeof import('../engine/docker/engine.js') & typeof import('../engine/docker/pool.js')) | undefined;

export async function loadDockerEngine(): Promise<NonNullable<typeof dockerModules>> {
  dockerModules ??= { ...(await import('../engine/docker/engine.js')), ...(await import('../engine/docker/pool.js')) };
  return dockerModules;
}

/** An engine by name: "reference" (docker-20.10), "reference:docker-28", "docker" (after loadDockerEngine) */
export function engineFactory(name: string): () => Engine {
  const t = parseTarget(name);
  switch (t.engine) {
    case 'reference':
      return () => new ReferenceEngine(t.profile);
    case 'docker': {
      const m = dockerModules;
      if (!m) throw new Error('the docker engine is not loaded: await loadDockerEngine() first');
      // each docker target (docker, docker:docker-28, …) has its build and its daemons
      return () => new m.DockerEngine(m.dockerPool(t.label));
    }
    default:
      throw new Error(`unknown engine "${name}" (known: reference, reference:PROFILE, docker)`);
  }
}

/** The rule backend a target's engine writes. */
function firewallBackendOf(target: string) {
  const t = parseTarget(target);
  return t.profile ? firewallBackend(t.profile) : 'iptables';
}

export async function runSuite(scenarios: Scenario[], opts: SuiteOptions): Promise<ScenarioResult[]> {
  // an nftables profile needs nft and the kernel's nf_tables, whatever the scenarios require; so
  // do scenarios with nft steps or checks
  const nftTarget = opts.engines.some((e) => firewallBackendOf(e) === 'nftables') || scenarios.some(usesNftables);
  // and the iptables variants lab hosts run: the run's, and any a scenario's host names
  const variants = [...new Set([opts.hostIptables, ...scenarios.flatMap((s) => s.hosts.map((h) => h.iptables))].filter((v): v is IptablesVariant => v !== undefined))];
  const caps = await detectCapabilities([...new Set([...scenarios.flatMap((s) => s.requires), ...(scenarios.some((s) => s.hosts.some((h) => h.firewalld)) ? ['firewalld'] : []), ...(nftTarget ? ['nftables'] : []), ...variants.map((v) => `iptables-${v}`)])]);
  const environment = {
    kernel: release(),
    iptables: await iptablesVersion(),
    node: process.version,
    runner: 'host',
  };
  const missing = missingFeatures(caps);
  const kernel = opts.kernel ?? undefined;
  const noVm = opts.noKernelReason ?? `no guest kernel to run it in: ${GET_KERNEL_HINT}`;
  const plan = placeScenarios(scenarios, missing, { vmAvailable: Boolean(kernel), allInVm: opts.allInVm, noVmReason: noVm });
  const skipMissing = skipReasons(missing, noVm);
  const isDocker = (name: string) => parseTarget(name).engine === 'docker';
  const docker = opts.engines.some(isDocker) ? await loadDockerEngine() : undefined;
  // canonical names ("reference" → "reference:docker-20.10"): results and JUnit name the profile
  const factories = opts.engines.map((e) => [parseTarget(e).label, engineFactory(e)] as const);
  // fail before the first lab when a build to certify is not there, or is another release (exit 2, what to do)
  const dockers = new Map<string, DockerInstall>();
  for (const [label] of factories.filter(([l]) => isDocker(l))) dockers.set(label, await docker!.dockerPool(label).install());
  const onHost = plan.filter((x) => x.where !== 'vm').map((x) => x.scenario);
  const inVm = plan.filter((x) => x.where === 'vm').map((x) => x.scenario);
  const runs = onHost.flatMap((sc, s) => factories.map(([engineName, makeEngine], e) => ({ s, e, sc, engineName, makeEngine })));
  // A real dockerd is compared with the reference engine's profile of the same release
  // (Debian's docker.io is 20.10); profiles of one engine differ on purpose and are not.
  const pairs = factories.flatMap(([name], e) => {
    if (!isDocker(name) || opts.compare === false) return [];
    const ref = factories.findIndex(([other]) => other === `reference:${parseTarget(name).profile}`);
    return ref < 0 ? [] : [[ref, e] as const];
  });
  const total = runs.length + onHost.length * pairs.length + (kernel ? inVm.length * (factories.length + pairs.length) : 0);
  // filled, not sparse: every() skips the holes of a sparse array
  const byScenario: (ScenarioResult | undefined)[][] = onHost.map(() => Array.from({ length: factories.length }, () => undefined));
  const comparisons: ScenarioResult[][] = onHost.map(() => []);
  const vmResults: ScenarioResult[] = [];
  let done = 0;
  const compareWhenComplete = (s: number) => {
    const rs = byScenario[s];
    if (pairs.length === 0 || rs.some((r) => r === undefined)) return;
    for (const [a, b] of pairs) {
      const c = compareRuns(onHost[s], rs[a]!, rs[b]!);
      comparisons[s].push(c);
      opts.onResult?.(c, ++done, total);
    }
  };
  const lane = async (queue: typeof runs) => {
    while (queue.length && !opts.signal?.aborted) {
      const run = queue.shift()!;
      const r = await runScenario(run.sc, { engineName: run.engineName, makeEngine: run.makeEngine, updateGolden: opts.updateGolden, missing: skipMissing, environment, onProgress: opts.onProgress, rulePaths: opts.rulePaths, hostIptables: opts.hostIptables });
      byScenario[run.s][run.e] = r;
      opts.onResult?.(r, ++done, total);
      compareWhenComplete(run.s);
    }
  };
  const guest = async () => {
    if (!kernel || inVm.length === 0 || opts.signal?.aborted) return;
    // a real engine's daemons are pooled per guest: scenarios that can share them share a guest
    const daemons = (sc: Scenario) => (docker ? sc.hosts.map((h) => daemonKey(h.daemon, h)) : []);
    const groups = splitForGuests(inVm, opts.vmGuests ?? (Number(process.env.NETCONFORM_VM_GUESTS) || availableParallelism()), daemons);
    const many = groups.length > 1;
    opts.onProgress?.(`microVM: ${inVm.length} scenario${inVm.length === 1 ? '' : 's'} on kernel ${kernel.release}${many ? ` in ${groups.length} guests side by side` : ''} (${groups.map((g) => g.map((s) => s.id).join(', ')).join(' | ')})`);
    const outs = await Promise.all(
      groups.map((group, g) =>
        runInVm(group, {
          kernel,
          engines: opts.engines,
          factories: new Map(factories),
          dockers,
          jobs: opts.jobs,
          hostIptables: opts.hostIptables,
          rulePaths: opts.rulePaths,
          updateGolden: opts.updateGolden,
          signal: opts.signal,
          onLine: opts.onVmLine && many ? (l) => opts.onVmLine!(`[guest ${g + 1}] ${l}`) : opts.onVmLine,
          onProgress: opts.onProgress,
          onResult: (r) => opts.onResult?.(r, ++done, total),
          ...opts.vm,
        }),
      ),
    );
    const rs = outs.flatMap((o) => o.results);
    // the comparison is made once both engines' runs are back, as for the host's
    const ofGuest = (sc: Scenario, label: string) => rs.find((r) => r.scenarioId === sc.id && r.engine === label)!;
    for (const sc of inVm) {
      const runsOf = factories.map(([label]) => ofGuest(sc, label));
      vmResults.push(...runsOf);
      for (const [a, b] of pairs) {
        const c = compareRuns(sc, runsOf[a], runsOf[b]);
        c.caseProperties = runsOf[b].caseProperties; // names the guest kernel too
        vmResults.push(c);
        opts.onResult?.(c, ++done, total);
      }
    }
  };
  // Reference labs run several at once; a real dockerd's scenarios one after the other, in a
  // lane of their own beside them (its daemons are pooled and reused between scenarios).
  // Several real builds (docker:all) take turns, one target after the other, and each
  // target's daemons stop once its last scenario is done: two cores, and 60 MB per daemon.
  const shared = runs.filter((r) => !isDocker(r.engineName));
  const dockerLane = runs.filter((r) => isDocker(r.engineName)).sort((a, b) => a.e - b.e);
  const jobs = Math.max(1, Math.min(opts.jobs ?? 4, shared.length || 1));
  const dockerTurns = async () => {
    while (dockerLane.length && !opts.signal?.aborted) {
      const label = dockerLane[0].engineName;
      const turn = dockerLane.filter((r) => r.engineName === label);
      dockerLane.splice(0, turn.length);
      await lane(turn);
      if (dockerLane.length) await docker!.shutdownDockerPool(label);
    }
  };
  try {
    await Promise.all([guest(), dockerTurns(), ...Array.from({ length: jobs }, () => lane(shared))]);
  } finally {
    if (docker) await docker.shutdownDockerPool();
  }
  // reports list scenarios in their order, whatever order they finished in
  const ordered = onHost.flatMap((_, s) => [...byScenario[s].filter((r): r is ScenarioResult => r !== undefined), ...comparisons[s]]);
  const all = [...ordered, ...vmResults];
  if (opts.evidenceDir) keepEvidence(all, opts.evidenceDir);
  return all;
}
