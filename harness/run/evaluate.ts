// Turns one expectation into a test case against the running lab: a probe, a capture of its
// frames, a rule check, an engine refusal or a file a container's processes read.
import { dirname, resolve } from 'node:path';
import type { Engine } from '../engine/types.js';
import type { HostRules } from '../rules/snapshot.js';
import { expand, type Facts } from '../rules/symbolic.js';
import { checkRules } from '../assert/rules.js';
import { evaluateReach } from '../assert/reach.js';
import { evaluateFrames } from '../assert/frames.js';
import { CATALOGUE } from '../catalogue.js';
import type { CaseResult, ScenarioResult } from '../report/results.js';
import type { Expectation, HostSpec, Scenario } from '../scenario/types.js';
import type { Endpoints } from './endpoints.js';
import type { NeighbourStats } from '../lab/neighbours.js';
import { answerWait, silenceWait } from './probe-wait.js';

export interface EvalContext {
  sc: Scenario;
  endpoints: Endpoints;
  /** rule sets and placeholder facts per Docker host */
  rules: Map<string, { rules: HostRules; facts: Facts }>;
  /** container reference → the engine's refusal */
  startErrors: Map<string, string>;
  result: ScenarioResult;
  updateGolden?: boolean;
}

export function caseName(e: Expectation): string {
  return `${e.id} ${e.name ?? CATALOGUE[e.id] ?? ''}`.trim();
}

export function caseOf(e: Expectation, expectIndex: number, status: CaseResult['status'], timeMs: number, extra: Partial<CaseResult> = {}): CaseResult {
  return { id: e.id, name: caseName(e), kind: e.kind, status, loc: e.loc, timeMs, expectIndex, ...extra };
}

/**
 * What `${…}` placeholders in a host's rule texts stand for: that host's networks, and every
 * container's addresses by reference (plus by plain name for the host's own containers).
 * The loader knows the same names from the scenario (scenario/placeholders.ts): change both.
 */
export function factsOf(sc: Scenario, host: HostSpec, engines: Map<string, Engine>): Facts {
  const facts: Facts = { addresses: {}, subnets: {}, bridges: {}, ports: {}, hostnames: {}, macs: {} };
  const engine = engines.get(host.name)!;
  for (const n of engine.networks()) {
    facts.subnets[n.name] = n.subnet;
    facts.bridges[n.name] = n.bridge;
    facts.addresses[`gateway:${n.name}`] = n.gateway;
    // IPv6: ${subnet6:NET}, ${gateway6:NET} (looked up among the addresses by their whole key)
    if (n.subnet6) facts.addresses[`subnet6:${n.name}`] = n.subnet6;
    if (n.gateway6) facts.addresses[`gateway6:${n.name}`] = n.gateway6;
  }
  const multi = sc.hosts.length > 1;
  for (const h of sc.hosts) {
    for (const c of engines.get(h.name)!.containers()) {
      const refs = multi ? [`${h.name}/${c.name}`, ...(h === host ? [c.name] : [])] : [c.name];
      for (const ref of refs) {
        if (c.hostname) facts.hostnames![ref] = c.hostname;
        for (const [net, mac] of Object.entries(c.macs ?? {})) {
          facts.macs![`${ref}@${net}`] = mac;
          facts.macs![ref] ??= mac;
        }
        if (c.ip && !(ref in facts.addresses)) facts.addresses[ref] = c.ip;
        for (const [net, ip] of Object.entries(c.addresses)) facts.addresses[`${ref}@${net}`] = ip;
        // IPv6: ${ipv6:web}, ${ipv6:web@net}
        for (const [i, [net, ip]] of Object.entries(c.addresses6 ?? {}).entries()) {
          facts.addresses[`ipv6:${ref}@${net}`] = ip;
          if (i === 0) facts.addresses[`ipv6:${ref}`] ??= ip;
        }
      }
    }
  }
  for (const p of engine.ports()) {
    const key = `${p.container}:${p.containerPort}/${p.proto}`;
    if (!(key in facts.ports)) facts.ports[key] = p.hostPort;
  }
  return facts;
}

export async function evaluate(e: Expectation, index: number, cx: EvalContext): Promise<CaseResult> {
  if (e.skipReason || e.notFor) return caseOf(e, index, 'skipped', 0, { message: e.skipReason ?? e.notFor });
  const t = performance.now();
  const took = () => performance.now() - t;
  try {
    switch (e.kind) {
      case 'reach': {
        const limit = e.result === 'timeout' ? silenceWait(cx.sc.probeTimeoutMs) : answerWait();
        const seen = e.seenSource === 'none' ? silenceWait(cx.sc.probeTimeoutMs) : answerWait();
        const r = await evaluateReach(e, cx.endpoints, { probe: limit.ms, seen: seen.ms });
        cx.result.transcript.push(r.transcript);
        // a probe that timed out where it should not have says how long it waited, and why that long
        const message = r.ok ? undefined : r.detail.actual === 'timeout' ? `${r.message} (probe timeout ${limit.explain})` : r.message;
        const c = caseOf(e, index, r.ok ? 'passed' : 'failed', took(), { reach: r.detail, message, transcript: r.transcript });
        c.name = `${c.name} [${e.from} → ${e.to} ${e.proto}${e.port ? '/' + e.port : ''}]`;
        return c;
      }
      case 'frames': {
        // every frames probe crosses to a listener: its frames are there once it is answered
        const r = await evaluateFrames(e, cx.endpoints, answerWait().ms);
        cx.result.transcript.push(r.transcript);
        const c = caseOf(e, index, r.ok ? 'passed' : 'failed', took(), { message: r.ok ? undefined : r.message, transcript: r.transcript });
        c.name = `${c.name} [${e.from} ↔ ${e.to} on ${e.dev}: ${e.vlan === 'none' ? 'untagged' : `tag ${e.vlan}`}]`;
        return c;
      }
      case 'rules': {
        const { rules, facts } = cx.rules.get(e.host)!;
        const golden = e.golden ? resolve(dirname(cx.sc.file), e.golden) : undefined;
        // nftables chain names carry the bridge's: filter-forward-in__${bridge:back}
        const chain = e.chain === undefined ? undefined : expand(e.chain, facts);
        const r = checkRules(rules, { ipv6: e.ipv6, family: e.family, table: e.table, chain, set: e.set, contains: e.contains, absent: e.absent, exact: e.exact, golden, policy: e.policy, exists: e.exists }, {
          expand: (s) => expand(s, facts),
          updateGolden: cx.updateGolden,
        });
        const where = cx.sc.hosts.length > 1 ? `${e.host}: ` : '';
        return caseOf(e, index, r.ok ? 'passed' : 'failed', took(), { message: r.ok ? undefined : where + r.message, diff: r.diff });
      }
      case 'start': {
        const err = cx.startErrors.get(e.container);
        if (err === undefined) return caseOf(e, index, 'failed', took(), { message: `container ${e.container} started, but the engine should have refused it (/${e.fails}/)` });
        const ok = new RegExp(e.fails).test(err);
        return caseOf(e, index, ok ? 'passed' : 'failed', took(), { message: ok ? undefined : `container ${e.container} was refused, but the error does not match /${e.fails}/: ${err}` });
      }
      case 'file': {
        const text = await cx.endpoints.agentOf(e.container).readFile(e.path);
        const facts = cx.rules.get(cx.endpoints.hostOf(e.container))!.facts;
        const x = (t: string) => expand(t, facts);
        const problems: string[] = [];
        for (const s of e.contains ?? []) if (!text.includes(x(s))) problems.push(`missing ${JSON.stringify(x(s))}`);
        for (const s of e.absent ?? []) if (text.includes(x(s))) problems.push(`unexpected ${JSON.stringify(x(s))}`);
        for (const s of e.matches ?? []) if (!new RegExp(x(s), 'm').test(text)) problems.push(`no line matches /${x(s)}/`);
        if (e.equals !== undefined && text !== x(e.equals)) problems.push(`content differs from ${JSON.stringify(x(e.equals))}`);
        return caseOf(e, index, problems.length ? 'failed' : 'passed', took(), {
          message: problems.length ? `${e.container}:${e.path}: ${problems.join(', ')}\n--- content ---\n${text}` : undefined,
        });
      }
      case 'resolve': {
        const r = await cx.endpoints.agentOf(e.from).resolve(e.name, (e.answer === 'none' ? silenceWait(cx.sc.probeTimeoutMs, false) : answerWait()).ms);
        const want = e.answer === 'none' ? 'none' : cx.endpoints.address(e.answer);
        const got = r.address ?? 'none';
        const what = `${e.from} resolves ${e.name}: ${r.address ? `${r.address} (${cx.endpoints.nameOf(r.address)}, from ${r.via})` : `no address (${r.failure})`}`;
        cx.result.transcript.push(`resolve ${what}`);
        const ok = got === want;
        return caseOf(e, index, ok ? 'passed' : 'failed', took(), {
          transcript: what,
          message: ok ? undefined : `${what}; expected ${want === 'none' ? 'no address' : `${want} (${e.answer})`}`,
        });
      }
      case 'env': {
        const value = await cx.endpoints.agentOf(e.container).getenv(e.variable);
        const facts = cx.rules.get(cx.endpoints.hostOf(e.container))!.facts;
        const want = e.absent ? undefined : expand(e.equals!, facts);
        const ok = value === want;
        const show = (v?: string) => (v === undefined ? 'unset' : JSON.stringify(v));
        return caseOf(e, index, ok ? 'passed' : 'failed', took(), { message: ok ? undefined : `${e.container}: ${e.variable} is ${show(value)}, expected ${show(want)}` });
      }
    }
  } catch (err) {
    return caseOf(e, index, 'error', took(), { message: (err as Error).message });
  }
}

/**
 * A full kernel neighbour table drops packets that need a new ARP entry: a timeout seen then
 * says nothing about the behaviour under test (and an expected timeout would pass falsely).
 */
export function distrustDropsOnNeighbourOverflow(cases: CaseResult[], before?: NeighbourStats, after?: NeighbourStats): void {
  if (!before || !after || after.tableFulls === before.tableFulls) return;
  for (const c of cases) {
    if (!c.reach || !['timeout', 'unreachable'].includes(c.reach.actual)) continue;
    c.status = 'error';
    c.message =
      `${c.reach.from} → ${c.reach.to}: got ${c.reach.actual} while the kernel's neighbour table was full ` +
      `(${after.tableFulls - before.tableFulls} ARP entries refused; the table holds ${after.threshold} entries for the whole machine, ` +
      'gc_thresh3, and entries younger than 5 s cannot be reclaimed): this verdict cannot be trusted. ' +
      'Probe fewer distinct pairs per phase, or split the matrix into phases.';
  }
}
