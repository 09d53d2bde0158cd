// Runs one scenario on one engine: lab → engines (one per Docker host) → probe agents →
// phases of steps and expectations → results. Teardown always runs, also when the build or a
// probe fails.
import { ADVISORIES } from '../catalogue.js';
import type { ContainerInfo, Engine } from '../engine/types.js';
import { Lab } from '../lab/lab.js';
import { WAN, buildTopology, hostNs, peerNs, routeWanTo } from '../lab/topology.js';
import { neighbourStats } from '../lab/neighbours.js';
import { ProbeAgent } from '../probe/agent.js';
import { machineIptablesVariant, type IptablesVariant } from '../rules/iptables/tools.js';
import { readHostRules } from '../rules/snapshot.js';
import type { ScenarioResult } from '../report/results.js';
import type { Expectation, HostSpec, Scenario } from '../scenario/types.js';
import { Endpoints, containerIndex, type LabAgents } from './endpoints.js';
import { caseOf, distrustDropsOnNeighbourOverflow, evaluate, factsOf, type EvalContext } from './evaluate.js';
import { StepNotSupported, describeStep, runSteps } from './steps.js';
import { inNeighbourWaves } from './waves.js';
import { firewallBackend, parseTarget } from '../targets.js';
import { resolveForTarget } from '../scenario/per-target.js';
import { traced } from '../util/trace.js';
import { EngineClock } from './engine-clock.js';
import { LabTracer } from '../trace/tracer.js';
import { attachRulePaths } from './rule-paths.js';

export { caseName } from './evaluate.js';

export interface RunOptions {
  engineName: string;
  makeEngine: () => Engine;
  updateGolden?: boolean;
  /** kernel features missing on this machine: feature → reason */
  missing?: Map<string, string>;
  environment: Record<string, string>;
  onProgress?: (line: string) => void;
  /** trace every reach probe's rule path (default: on) */
  rulePaths?: boolean;
  /** the iptables lab hosts run unless a scenario's host says (default: the machine's own) */
  hostIptables?: IptablesVariant;
}

export async function runScenario(scenario: Scenario, opts: RunOptions): Promise<ScenarioResult> {
  const t0 = performance.now();
  // per-profile expectations resolved for this run's engine and profile
  const target = parseTarget(opts.engineName);
  const sc = withHostIptables(resolveForTarget(scenario, target), opts.hostIptables ?? (await machineIptablesVariant()));
  const nft = readsNft(sc, target);
  const result: ScenarioResult = {
    scenarioId: sc.id,
    title: sc.title,
    file: sc.file,
    engine: target.label, // "reference:docker-28": JUnit classnames name the profile
    engineDescription: opts.engineName,
    cases: [],
    ruleDump: '',
    transcript: [],
    timeMs: 0,
    probes: 0,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: { ...opts.environment, ...(target.profile ? { profile: target.profile } : {}), 'host-iptables': [...new Set(sc.hosts.map((h) => h.iptables))].join(',') },
    snapshots: [],
  };
  // the nftables rule set needs nft and the kernel's nf_tables, whatever the scenario requires
  // so does the iptables variant of each host
  const needs = new Set([...sc.requires, ...(nft ? ['nftables'] : []), ...(sc.hosts.some((h) => h.firewalld) ? ['firewalld'] : []), ...sc.hosts.map((h) => `iptables-${h.iptables}`)]);
  const missing = [...needs].filter((f) => opts.missing?.has(f));
  if (missing.length > 0) {
    const reason = missing.map((f) => `kernel feature ${f} is missing: ${opts.missing!.get(f)}`).join('; ');
    result.cases = sc.expect.map((e, i) => caseOf(e, i, 'skipped', 0, { message: reason }));
    result.timeMs = performance.now() - t0;
    return result;
  }
  if (sc.expect.every((e) => e.skipReason || e.notFor)) {
    result.cases = sc.expect.map((e, i) => caseOf(e, i, 'skipped', 0, { message: e.skipReason ?? e.notFor }));
    leaveOutOtherProfiles(sc, result);
    result.timeMs = performance.now() - t0;
    return result;
  }

  let tBuilt = 0;
  let tProbed = 0;
  const lab = Lab.create();
  const clock = new EngineClock();
  const engines = new Map<string, Engine>(sc.hosts.map((h) => [h.name, clock.watch(opts.makeEngine())]));
  const agents: ProbeAgent[] = [];
  const evaluated = new Set<Expectation>();
  lab.onDestroy(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all([...engines.values()].map((e) => e.stop()));
  });
  const startAgent = async (o: Parameters<typeof ProbeAgent.start>[0]) => {
    const a = await ProbeAgent.start(o);
    agents.push(a);
    return a;
  };
  try {
    // an engine that keeps its daemon across scenarios lends the lab its host namespace
    for (const h of sc.hosts) {
      const e = engines.get(h.name)!;
      if (e.provideHost) lab.adopt(hostNs(h), await e.provideHost(sc, h));
    }
    await traced('topology', buildTopology(lab, sc));
    // one trace monitor per Docker host, listening while the engines build
    const tracing = opts.rulePaths === false ? undefined : LabTracer.start(lab, sc.hosts.map((h) => ({ name: h.name, ns: hostNs(h) })));
    if (tracing) lab.onDestroy(async () => (await tracing).stop());
    // The agents outside the engines start while the engines build: they do not depend on them.
    const outside = startOutsideAgents(lab, sc, startAgent);
    outside.catch(() => {}); // awaited below; a failure here must not go unhandled meanwhile

    const startErrors = new Map<string, string>();
    const running = new Map<string, ContainerInfo>(); // by container reference
    await traced('engines', Promise.all(sc.hosts.map((h) => buildHost(h, engines.get(h.name)!, { lab, result, startErrors, running, log: opts.onProgress }))));
    const first = engines.get(sc.hosts[0].name)!;
    result.engineDescription = first.describe();
    result.properties.engine = first.describe();
    if (sc.wan.routeToContainers) {
      await routeWanTo(
        lab,
        sc.hosts.flatMap((h) =>
          engines
            .get(h.name)!
            .networks()
            .flatMap((n) => [{ subnet: n.subnet, via: h.address.split('/')[0] }, ...(n.subnet6 && h.address6 ? [{ subnet: n.subnet6, via: h.address6.split('/')[0] }] : [])]),
        ),
      );
    }

    // probe agents in the containers, and every listener
    const labAgents = await outside;
    await Promise.all(
      sc.hosts.flatMap((h) =>
        h.containers
          .filter((c) => running.has(c.ref))
          .map(async (c) => {
            const info = running.get(c.ref)!;
            const a = await startAgent({ netns: info.netnsPath, mntns: info.mntnsPath, env: info.env, label: c.ref });
            labAgents.containers.set(c.ref, a);
            await listenAll(a, c.listen);
          }),
      ),
    );

    const endpoints = new Endpoints(sc, engines, labAgents);
    const index = containerIndex(sc);
    tBuilt = performance.now();
    for (const [phase, { steps }] of sc.phases.entries()) {
      await runSteps(steps, lab, engines, index, sc, (step) => result.transcript.push(`step ${describeStep(step, sc.hosts.length > 1)}`), (line) => opts.onProgress?.(`${sc.id}: ${line}`));
      await Promise.all([...engines.values()].map((e) => e.sync()));
      const expects = sc.expect.filter((e) => e.phase === phase);
      const cx: EvalContext = { sc, endpoints, rules: await dumpRules(lab, sc, engines, result, phase, nft, labAgents), startErrors, result, updateGolden: opts.updateGolden };
      // packets first (what a probe leaves behind, a neighbour entry, may be observed next)
      const forgetArp = async () => {
        await Promise.all(endpoints.all().map((a) => a.forgetArp()));
      };
      // A probe that failed in the previous phase leaves an unresolved ARP entry, whose next
      // retry may come after this phase's probe gave up: every phase starts with fresh caches.
      if (phase > 0) await forgetArp();
      const neighboursBefore = await neighbourStats();
      const probes = expects.filter((e) => e.kind === 'reach');
      const tracer = await traced('trace monitors ready', tracing ?? Promise.resolve(undefined));
      const probed = await inNeighbourWaves(probes, (e) => evaluate(e, sc.expect.indexOf(e), cx), forgetArp);
      distrustDropsOnNeighbourOverflow(probed, neighboursBefore, await neighbourStats());
      if (probes.length > 0) {
        const rulesets = new Map([...cx.rules].map(([host, snap]) => [host, snap.rules.iptables]));
        attachRulePaths(probed, cx, tracer ? await traced('rule paths', tracer.collect(rulesets)) : undefined);
      }
      const observed = await Promise.all(expects.filter((e) => e.kind !== 'reach').map((e) => evaluate(e, sc.expect.indexOf(e), cx)));
      const cases = [...probed, ...observed];
      result.cases.push(...cases);
      for (const e of expects) evaluated.add(e);
    }
  } catch (e) {
    const skip = e instanceof StepNotSupported;
    // the comparison of engines leaves out what one of them could not take (it says so)
    if (skip) result.properties['step.unsupported'] = (e as Error).message;
    for (const [i, ex] of sc.expect.entries()) {
      if (!evaluated.has(ex)) result.cases.push(caseOf(ex, i, skip ? 'skipped' : 'error', 0, { message: skip ? (e as Error).message : `scenario did not complete: ${(e as Error).message}` }));
    }
    result.transcript.push(`error: ${(e as Error).stack ?? String(e)}`);
  } finally {
    tProbed = performance.now();
    // what the engines logged, read before they stop (a pooled daemon's log goes on)
    const logs = await Promise.all(sc.hosts.map(async (h) => ({ h, logs: (await engines.get(h.name)!.evidence?.().catch(() => [])) ?? [] })));
    const evidence = logs.flatMap(({ h, logs: es }) => es.map((e) => ({ name: sc.hosts.length > 1 ? `${h.name}.${e.name}` : e.name, text: e.text })));
    if (evidence.length) result.evidence = evidence;
    await lab.destroy();
  }
  const tEnd = performance.now();
  result.phaseMs = tBuilt ? { build: tBuilt - t0, probe: tProbed - tBuilt, teardown: tEnd - tProbed } : { build: tProbed - t0, probe: 0, teardown: tEnd - tProbed };
  result.phaseMs.engine = clock.ms;
  result.cases.sort((a, b) => a.expectIndex - b.expectIndex);
  leaveOutOtherProfiles(sc, result);
  markFindings(sc, result);
  result.probes = result.cases.filter((c) => c.kind === 'reach' && c.status !== 'skipped').length;
  result.timeMs = performance.now() - t0;
  return result;
}

/** A passed case of an expectation that is a finding for this target confirms the exposure. */
function markFindings(sc: Scenario, result: ScenarioResult): void {
  for (const c of result.cases) {
    const finding = sc.expect[c.expectIndex]?.finding;
    if (finding && c.status === 'passed') c.finding = finding;
    const advisories = sc.expect[c.expectIndex]?.advisories;
    if (advisories && (c.finding || c.status === 'failed')) c.advisories = advisories;
    else if (c.status === 'failed' && ADVISORIES[c.id]) c.advisories = ADVISORIES[c.id];
  }
}

/** Expectations stated for other profiles are no cases of this run (they are not skips either). */
function leaveOutOtherProfiles(sc: Scenario, result: ScenarioResult): void {
  const left = result.cases.filter((c) => sc.expect[c.expectIndex]?.notFor);
  if (left.length === 0) return;
  result.cases = result.cases.filter((c) => !sc.expect[c.expectIndex]?.notFor);
  result.transcript.push(`left out ${left.length} expectation${left.length === 1 ? '' : 's'} stated for other profiles (lines ${left.map((c) => c.loc.line).join(', ')})`);
}

/** One Docker host: its engine starts, creates the networks and runs the containers. */
async function buildHost(
  h: HostSpec,
  engine: Engine,
  cx: { lab: Lab; result: ScenarioResult; startErrors: Map<string, string>; running: Map<string, ContainerInfo>; log?: (l: string) => void },
): Promise<void> {
  await engine.start({ lab: cx.lab, hostNs: hostNs(h), daemon: h.daemon, daemonEnv: h.daemonEnv, iptables: h.iptables!, log: (l) => cx.log?.(l) });
  for (const n of h.networks) await engine.createNetwork(n);
  for (const c of h.containers) {
    try {
      cx.running.set(c.ref, await engine.runContainer(c));
      cx.result.transcript.push(`start ${c.ref}: ok`);
    } catch (e) {
      const msg = (e as Error).message;
      cx.startErrors.set(c.ref, msg);
      cx.result.transcript.push(`start ${c.ref}: refused: ${msg}`);
      if (!c.expectFailure) throw new Error(`container ${c.ref} (${c.loc.file}:${c.loc.line}) failed to start: ${msg}`);
    }
  }
  await engine.sync();
}

async function startOutsideAgents(lab: Lab, sc: Scenario, startAgent: (o: Parameters<typeof ProbeAgent.start>[0]) => Promise<ProbeAgent>): Promise<LabAgents> {
  const agents: LabAgents = { wan: undefined as unknown as ProbeAgent, hosts: new Map(), peers: new Map(), containers: new Map() };
  await Promise.all([
    startAgent({ netns: lab.nsPath(WAN), label: 'wan' }).then((a) => {
      agents.wan = a;
      return listenAll(a, sc.wan.listen);
    }),
    ...sc.hosts.map((h) =>
      startAgent({ netns: lab.nsPath(hostNs(h)), label: h.name }).then((a) => {
        agents.hosts.set(h.name, a);
        return listenAll(a, h.listen);
      }),
    ),
    ...sc.lan.peers.map((p) =>
      startAgent({ netns: lab.nsPath(peerNs(p)), label: p.name }).then((a) => {
        agents.peers.set(p.name, a);
        return listenAll(a, p.listen);
      }),
    ),
  ]);
  return agents;
}

async function listenAll(agent: ProbeAgent, specs: string[]): Promise<void> {
  await Promise.all(
    specs.map((s) => {
      const [proto, port] = s.split('/');
      return agent.listen(proto as 'tcp' | 'udp', Number(port));
    }),
  );
}

/** The files of a container that its engine writes: what the comparison holds two engines to. */
export const CONTAINER_FILES = ['/etc/hosts', '/etc/resolv.conf', '/etc/hostname'];

/** Every host gets an iptables variant: its own, else the run's. */
function withHostIptables(sc: Scenario, variant: IptablesVariant): Scenario {
  return { ...sc, hosts: sc.hosts.map((h) => (h.iptables ? h : { ...h, iptables: variant })) };
}

/** Whether a scenario's administrator or checks use nftables (whatever the engine writes). */
export function usesNftables(sc: Scenario): boolean {
  return (
    sc.hosts.some((h) => h.nft.length > 0) ||
    sc.phases.some((p) => p.steps.some((s) => s.kind === 'nft')) ||
    sc.expect.some((e) => e.kind === 'rules' && e.family !== undefined && !e.notFor && !e.skipReason)
  );
}

/** Whether the nftables rule set matters: the engine writes it, or the scenario's administrator or checks do. */
function readsNft(sc: Scenario, t: ReturnType<typeof parseTarget>): boolean {
  return usesNftables(sc) || sc.hosts.some((h) => h.daemon['firewall-backend'] === 'nftables') || (t.profile !== undefined && firewallBackend(t.profile) === 'nftables');
}

/**
 * The rule sets of every Docker host (iptables-save and ip6tables-save, and nft where it
 * matters), for rule checks and the report and, with each running container's files, for
 * comparing engines.
 */
async function dumpRules(lab: Lab, sc: Scenario, engines: Map<string, Engine>, result: ScenarioResult, phase: number, nft: boolean, agents: LabAgents): Promise<EvalContext['rules']> {
  const [read, files] = await Promise.all([
    Promise.all(sc.hosts.map((h) => readHostRules(lab, hostNs(h), { iptables: h.iptables!, nft }))),
    Promise.all(sc.hosts.map((h) => containerFiles(sc, h, engines.get(h.name)!, agents))),
  ]);
  const out: EvalContext['rules'] = new Map();
  sc.hosts.forEach((h, i) => {
    const r = read[i];
    const snap = { rules: { iptables: r.iptables, ip6tables: r.ip6tables, ...(r.nft ? { nft: r.nft } : {}) }, facts: factsOf(sc, h, engines) };
    out.set(h.name, snap);
    (result.snapshots ??= []).push({ phase, host: h.name, rules: r.iptables, rules6: r.ip6tables, ...(r.nft ? { nft: r.nft } : {}), facts: snap.facts, files: files[i], env: containerEnv(sc, h, engines.get(h.name)!) });
    const where = sc.hosts.length > 1 ? `host ${h.name}` : 'the lab host';
    result.ruleDump += `# phase ${phase}: iptables-save of ${where}\n${r.text}\n`;
  });
  return out;
}

/** The environment each running container of a host got from its engine. */
function containerEnv(sc: Scenario, h: HostSpec, engine: Engine): Record<string, string[]> {
  const ref = (name: string) => (sc.hosts.length > 1 ? `${h.name}/${name}` : name);
  return Object.fromEntries(engine.containers().filter((c) => c.mntnsPath).map((c) => [ref(c.name), c.env]));
}

/** CONTAINER_FILES of each running container of a host that has a mount namespace of its own. */
async function containerFiles(sc: Scenario, h: HostSpec, engine: Engine, agents: LabAgents): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  const running = new Set(engine.containers().filter((c) => c.mntnsPath).map((c) => c.name));
  await Promise.all(
    h.containers
      .filter((c) => running.has(c.name) && agents.containers.has(c.ref))
      .map(async (c) => {
        const agent = agents.containers.get(c.ref)!;
        const entries = await Promise.all(CONTAINER_FILES.map(async (p) => [p, await agent.readFile(p).catch((e: Error) => `(unreadable: ${e.message})`)] as const));
        out[sc.hosts.length > 1 ? c.ref : c.name] = Object.fromEntries(entries);
      }),
  );
  return out;
}
