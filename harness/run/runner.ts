// Runs one scenario on one engine: lab → engine → probes → assertions → results.
// Teardown always runs, also when the build or a probe fails.
import { dirname, resolve } from 'node:path';
import type { ContainerInfo, Engine } from '../engine/types.js';
import { Lab } from '../lab/lab.js';
import { HOST, WAN, buildBase, iptables, routeWanTo } from '../lab/topology.js';
import { ProbeAgent } from '../probe/agent.js';
import { parseIptablesSave, serializeRuleset, type Ruleset } from '../rules/ruleset.js';
import { expand, type Facts } from '../rules/symbolic.js';
import { checkRules } from '../assert/rules.js';
import { CATALOGUE } from '../catalogue.js';
import type { CaseResult, ScenarioResult } from '../report/results.js';
import type { Expectation, ReachExpect, Scenario, Step } from '../scenario/types.js';
import { evaluateReach } from '../assert/reach.js';
import { Endpoints } from './endpoints.js';

export interface RunOptions {
  engineName: string;
  makeEngine: () => Engine;
  updateGolden?: boolean;
  /** kernel features missing on this machine: feature → reason */
  missing?: Map<string, string>;
  environment: Record<string, string>;
  onProgress?: (line: string) => void;
}

export async function runScenario(sc: Scenario, opts: RunOptions): Promise<ScenarioResult> {
  const t0 = performance.now();
  const result: ScenarioResult = {
    scenarioId: sc.id,
    title: sc.title,
    file: sc.file,
    engine: opts.engineName,
    engineDescription: opts.engineName,
    cases: [],
    ruleDump: '',
    transcript: [],
    timeMs: 0,
    probes: 0,
    properties: { ...opts.environment },
  };
  const missing = sc.requires.filter((f) => opts.missing?.has(f));
  if (missing.length > 0) {
    const reason = missing.map((f) => `kernel feature ${f} is missing: ${opts.missing!.get(f)}`).join('; ');
    result.cases = sc.expect.map((e, i) => caseOf(e, i, 'skipped', 0, { message: reason }));
    result.timeMs = performance.now() - t0;
    return result;
  }

  const lab = Lab.create();
  const engine = opts.makeEngine();
  const agents: ProbeAgent[] = [];
  const evaluated = new Set<Expectation>();
  lab.onDestroy(async () => {
    await Promise.all(agents.map((a) => a.stop()));
    await engine.stop();
  });
  try {
    // an engine that keeps its daemon across scenarios lends the lab its host namespace
    if (engine.provideHost) lab.adopt(HOST, await engine.provideHost(sc));
    await buildBase(lab, sc.host, sc.wan);
    await engine.start({ lab, hostNs: HOST, daemon: sc.daemon, log: (l) => opts.onProgress?.(l) });
    result.engineDescription = engine.describe();
    result.properties.engine = engine.describe();
    for (const n of sc.networks) await engine.createNetwork(n);

    const startErrors = new Map<string, string>();
    const running = new Map<string, ContainerInfo>();
    for (const c of sc.containers) {
      try {
        running.set(c.name, await engine.runContainer(c));
        result.transcript.push(`start ${c.name}: ok`);
      } catch (e) {
        const msg = (e as Error).message;
        startErrors.set(c.name, msg);
        result.transcript.push(`start ${c.name}: refused: ${msg}`);
        if (!c.expectFailure) throw new Error(`container ${c.name} (${c.loc.file}:${c.loc.line}) failed to start: ${msg}`);
      }
    }
    await engine.sync();
    if (sc.wan.routeToContainers) await routeWanTo(lab, sc.host, engine.networks().map((n) => n.subnet));

    // probe agents: one per namespace that takes part
    const hostAgent = await ProbeAgent.start({ netns: lab.nsPath(HOST), label: 'host' });
    const wanAgent = await ProbeAgent.start({ netns: lab.nsPath(WAN), label: 'wan' });
    agents.push(hostAgent, wanAgent);
    await listenAll(hostAgent, sc.host.listen);
    await listenAll(wanAgent, sc.wan.listen);
    const containerAgents = new Map<string, ProbeAgent>();
    await Promise.all(
      sc.containers
        .filter((c) => running.has(c.name))
        .map(async (c) => {
          const info = running.get(c.name)!;
          const a = await ProbeAgent.start({ netns: info.netnsPath, mntns: info.mntnsPath, label: c.name });
          agents.push(a);
          containerAgents.set(c.name, a);
          await listenAll(a, c.listen);
        }),
    );

    const endpoints = new Endpoints(sc, engine, { host: hostAgent, wan: wanAgent, containers: containerAgents });
    for (const [phase, { steps }] of sc.phases.entries()) {
      for (const step of steps) {
        await runStep(step, engine, lab);
        result.transcript.push(`step ${describeStep(step)}`);
      }
      await engine.sync();
      const expects = sc.expect.filter((e) => e.phase === phase);
      const rs = await dumpRules(lab, result, phase);
      const facts = factsOf(engine);
      (result.snapshots ??= []).push({ phase, iptables: serializeRuleset(rs), facts });
      const cases = await Promise.all(expects.map((e) => evaluate(e, sc.expect.indexOf(e), { sc, endpoints, rs, facts, startErrors, result, opts })));
      result.cases.push(...cases);
      for (const e of expects) evaluated.add(e);
    }
  } catch (e) {
    for (const [i, ex] of sc.expect.entries()) {
      if (!evaluated.has(ex)) result.cases.push(caseOf(ex, i, 'error', 0, { message: `scenario did not complete: ${(e as Error).message}` }));
    }
    result.transcript.push(`error: ${(e as Error).stack ?? String(e)}`);
  } finally {
    await lab.destroy();
  }
  result.cases.sort((a, b) => a.expectIndex - b.expectIndex);
  result.probes = result.cases.filter((c) => c.kind === 'reach').length;
  result.timeMs = performance.now() - t0;
  return result;
}

async function listenAll(agent: ProbeAgent, specs: string[]): Promise<void> {
  await Promise.all(
    specs.map((s) => {
      const [proto, port] = s.split('/');
      return agent.listen(proto as 'tcp' | 'udp', Number(port));
    }),
  );
}

async function runStep(step: Step, engine: Engine, lab: Lab): Promise<void> {
  switch (step.kind) {
    case 'connect':
      return engine.connect(step.container, step.network);
    case 'disconnect':
      return engine.disconnect(step.container, step.network);
    case 'remove':
      return engine.remove(step.container);
    case 'iptables':
      await engine.sync();
      return iptables(lab, HOST, step.args);
    case 'restart-rules':
      return engine.reloadRules();
  }
}

function describeStep(step: Step): string {
  switch (step.kind) {
    case 'connect':
    case 'disconnect':
      return `${step.kind} ${step.container} ${step.network}`;
    case 'remove':
      return `remove ${step.container}`;
    case 'iptables':
      return `iptables ${step.args}`;
    case 'restart-rules':
      return 'restart-rules';
  }
}

async function dumpRules(lab: Lab, result: ScenarioResult, phase: number): Promise<Ruleset> {
  const saved = await lab.exec(HOST, 'iptables-save', []);
  const text = saved.stdout.replace(/^#.*\n/gm, '');
  result.ruleDump += `# phase ${phase}: iptables-save of the lab host\n${text}\n`;
  return parseIptablesSave(saved.stdout);
}

function factsOf(engine: Engine): Facts {
  const facts: Facts = { addresses: {}, subnets: {}, bridges: {}, ports: {} };
  for (const n of engine.networks()) {
    facts.subnets[n.name] = n.subnet;
    facts.bridges[n.name] = n.bridge;
    facts.addresses[`gateway:${n.name}`] = n.gateway;
  }
  for (const c of engine.containers()) {
    if (c.ip) facts.addresses[c.name] = c.ip;
    for (const [net, ip] of Object.entries(c.addresses)) facts.addresses[`${c.name}@${net}`] = ip;
  }
  for (const p of engine.ports()) {
    const key = `${p.container}:${p.containerPort}/${p.proto}`;
    if (!(key in facts.ports)) facts.ports[key] = p.hostPort;
  }
  return facts;
}

interface EvalContext {
  sc: Scenario;
  endpoints: Endpoints;
  rs: Ruleset;
  facts: Facts;
  startErrors: Map<string, string>;
  result: ScenarioResult;
  opts: RunOptions;
}

export function caseName(e: Expectation): string {
  return `${e.id} ${e.name ?? CATALOGUE[e.id] ?? ''}`.trim();
}

function caseOf(e: Expectation, expectIndex: number, status: CaseResult['status'], timeMs: number, extra: Partial<CaseResult> = {}): CaseResult {
  return { id: e.id, name: caseName(e), kind: e.kind, status, loc: e.loc, timeMs, expectIndex, ...extra };
}

async function evaluate(e: Expectation, index: number, cx: EvalContext): Promise<CaseResult> {
  const t = performance.now();
  const took = () => performance.now() - t;
  try {
    switch (e.kind) {
      case 'reach': {
        const r = await evaluateReach(e as ReachExpect, cx.endpoints, cx.sc.probeTimeoutMs);
        cx.result.transcript.push(r.transcript);
        const c = caseOf(e, index, r.ok ? 'passed' : 'failed', took(), { reach: r.detail, message: r.ok ? undefined : r.message, transcript: r.transcript });
        c.name = `${c.name} [${e.from} → ${e.to} ${e.proto}${e.port ? '/' + e.port : ''}]`;
        return c;
      }
      case 'rules': {
        const golden = e.golden ? resolve(dirname(cx.sc.file), e.golden) : undefined;
        const r = checkRules(cx.rs, { table: e.table, chain: e.chain, contains: e.contains, absent: e.absent, exact: e.exact, golden, policy: e.policy }, {
          expand: (s) => expand(s, cx.facts),
          updateGolden: cx.opts.updateGolden,
        });
        return caseOf(e, index, r.ok ? 'passed' : 'failed', took(), { message: r.ok ? undefined : r.message, diff: r.diff });
      }
      case 'start': {
        const err = cx.startErrors.get(e.container);
        if (err === undefined) return caseOf(e, index, 'failed', took(), { message: `container ${e.container} started, but the engine should have refused it (/${e.fails}/)` });
        const ok = new RegExp(e.fails).test(err);
        return caseOf(e, index, ok ? 'passed' : 'failed', took(), { message: ok ? undefined : `container ${e.container} was refused, but the error does not match /${e.fails}/: ${err}` });
      }
      case 'file': {
        const agent = cx.endpoints.agentOf(e.container);
        const text = await agent.readFile(e.path);
        const problems: string[] = [];
        for (const s of e.contains ?? []) if (!text.includes(s)) problems.push(`missing ${JSON.stringify(s)}`);
        for (const s of e.absent ?? []) if (text.includes(s)) problems.push(`unexpected ${JSON.stringify(s)}`);
        if (e.equals !== undefined && text !== e.equals) problems.push('content differs');
        return caseOf(e, index, problems.length ? 'failed' : 'passed', took(), {
          message: problems.length ? `${e.container}:${e.path}: ${problems.join(', ')}\n--- content ---\n${text}` : undefined,
        });
      }
    }
  } catch (err) {
    return caseOf(e, index, 'error', took(), { message: (err as Error).message });
  }
}
