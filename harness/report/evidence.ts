// Evidence of a failure, kept: what a real daemon logged during a scenario that failed or whose
// comparison disagreed (and a microVM guest's console when the guest did), written under
// reports/ (reports/logs/<scenario>/<target>/dockerd.log …) and named in the failure messages,
// so a pipeline's artifact holds what the engine said. Runs that passed keep nothing.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { scenarioStatus, type ScenarioResult } from './results.js';

const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_');

/**
 * Write the evidence of every run that did not pass, or that a disagreeing comparison
 * compared, into `dir`; add the paths to the messages of its failed cases (and the
 * comparison's); drop the texts from all results (JUnit and the guest's JSON stay small).
 */
export function keepEvidence(results: ScenarioResult[], dir: string, cwd = process.cwd()): string[] {
  const bad = (r: ScenarioResult) => ['failed', 'error'].includes(scenarioStatus(r));
  const runOf = (scenarioId: string, engine: string) => results.find((r) => r.scenarioId === scenarioId && r.engine === engine && r.evidence?.length);
  const keep = new Map<ScenarioResult, ScenarioResult[]>(); // a run whose evidence is kept → the results to name it in
  const mark = (run: ScenarioResult | undefined, why: ScenarioResult) => {
    if (run?.evidence?.length) keep.set(run, [...(keep.get(run) ?? []), why]);
  };
  for (const r of results) {
    if (!bad(r)) continue;
    if (r.evidence?.length) mark(r, r);
    // a comparison "a-vs-b" names its two runs
    const m = /^(.*)-vs-(.*)$/.exec(r.engine);
    if (m) for (const e of [m[1], m[2]]) mark(runOf(r.scenarioId, e), r);
  }
  const written: string[] = [];
  // the evidence of the last run only, as the JUnit file it sits beside
  rmSync(dir, { recursive: true, force: true });
  for (const [run, cite] of keep) {
    const folder = join(dir, safe(run.scenarioId), safe(run.engine));
    mkdirSync(folder, { recursive: true });
    const paths = run.evidence!.map((e) => {
      const p = join(folder, safe(e.name));
      writeFileSync(p, e.text);
      const rel = relative(cwd, p);
      return rel.startsWith('..') ? p : rel;
    });
    written.push(...paths);
    const line = `evidence (${run.engine}): ${paths.join(', ')}`;
    for (const r of new Set(cite)) for (const c of r.cases) if (c.status === 'failed' || c.status === 'error') c.message = c.message ? `${c.message}\n${line}` : line;
  }
  for (const r of results) delete r.evidence;
  return written;
}
