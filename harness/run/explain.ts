// `netconform explain`: one scenario's lab, one probe, its rule path. The scenario is the file
// as written with its expectations replaced by that probe (after the steps of the phases
// before it), so the probe is checked by the same loader as any expectation: a bad endpoint
// is an error before any lab is built.
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import { loadScenarioText, ScenarioError, type Diagnostic } from '../scenario/load.js';
import type { Scenario } from '../scenario/types.js';
import type { CaseResult, ScenarioResult } from '../report/results.js';
import { sideBySide } from '../trace/render.js';
import { symbolize } from '../rules/symbolic.js';

export interface ProbeSpec {
  from: string;
  to: string;
  proto: 'tcp' | 'udp' | 'icmp';
  port?: number;
  /** container:port/proto: the host port the engine published for it */
  published?: string;
  source?: string;
  /** probe after the steps of then[0..phase-1] (0: right after the build) */
  phase: number;
}

/**
 * The scenario of `file` with one reach expectation, the probe, in place of its own. Errors in
 * the probe come back with the option they concern ("--from: unknown endpoint …").
 */
export function probeScenario(file: string, valid: Scenario, probe: ProbeSpec): Scenario {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  const then = (doc.toJS()?.then ?? []) as { steps: unknown[] }[];
  if (probe.phase > then.length) {
    throw new ScenarioError([{ file, line: 1, col: 1, path: '--phase', message: `the scenario has ${then.length + 1} phase${then.length ? 's' : ''} (0${then.length ? `..${then.length}` : ''}), not ${probe.phase}` }]);
  }
  const reach: Record<string, unknown> = { from: probe.from, to: probe.to, proto: probe.proto };
  if (probe.port !== undefined) reach.port = probe.port;
  if (probe.published) reach.published = probe.published;
  if (probe.source) reach.source = probe.source;
  const expectation = { id: valid.covers[0], name: 'explain', reach, result: 'connected' };
  const phases = then.slice(0, probe.phase).map((p, i) => ({ steps: p.steps, ...(i === probe.phase - 1 ? { expect: [expectation] } : {}) }));
  doc.set('expect', probe.phase === 0 ? [expectation] : []);
  if (phases.length) doc.set('then', phases);
  else doc.delete('then');
  try {
    return loadScenarioText(String(doc), file);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    // the scenario itself is valid (it was loaded before): what is wrong is the probe
    const option = (d: Diagnostic) => /reach\.(from|to|port|proto|published|source)/.exec(d.path)?.[1] ?? 'probe';
    throw new ScenarioError(e.errors.map((d) => ({ ...d, line: 1, col: 1, path: `--${option(d)}`, message: d.message })));
  }
}

function probeCase(r: ScenarioResult): CaseResult | undefined {
  return r.cases.find((c) => c.kind === 'reach');
}

/** What `explain` prints: per engine the probe's outcome and path; two engines that differ side by side. */
export function renderExplanation(results: ScenarioResult[]): { text: string; ok: boolean } {
  const runs = results.filter((r) => !r.engine.includes('-vs-'));
  const out: string[] = [];
  let ok = true;
  for (const r of runs) {
    const c = probeCase(r);
    if (!c || !c.reach || c.status === 'error' || c.status === 'skipped') {
      ok = false;
      out.push(`${r.engine}: no probe result: ${c?.message ?? r.cases.find((x) => x.message)?.message ?? 'the scenario did not run'}`, '');
      continue;
    }
    const d = c.reach;
    out.push(`${r.engine}: ${d.from} → ${d.to} (${d.address}) ${d.proto}${d.port ? '/' + d.port : ''}: ${d.actual}${d.detail ? ` (${d.detail})` : ''}${d.seen ? `, the listener saw ${d.seen}` : ''}`);
    out.push(c.rulePath ?? 'no rule path (tracing is off)', '');
    if (c.trace?.unavailable) ok = false;
  }
  const traced = runs.map((r) => ({ r, c: probeCase(r) })).filter((x) => x.c?.trace && !x.c.trace.unavailable);
  if (traced.length === 2) {
    const [a, b] = traced;
    const facts = (r: ScenarioResult) => r.snapshots?.at(-1)?.facts;
    const normalize = (s: string, side: 'a' | 'b') => {
      const f = facts(side === 'a' ? a.r : b.r);
      return f ? symbolize(s, f) : s;
    };
    out.push(sideBySide({ label: a.r.engine, path: a.c!.trace! }, { label: b.r.engine, path: b.c!.trace! }, normalize));
  }
  return { text: out.join('\n').trimEnd(), ok };
}
