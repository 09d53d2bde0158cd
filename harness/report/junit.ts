// JUnit XML for pipelines: a suite per scenario (and engine), a case per expectation named
// with its catalogue ID, failures with their diff, skips with their reason, the rule dump and
// probe transcript in system-out, and the environment as properties.
import { mkdirSync } from 'node:fs';
import { dirname, relative } from 'node:path';
import { writeFileSync } from 'node:fs';
import junitModule from 'junit-report-builder';
import type { Builder, TestCase } from 'junit-report-builder';

// The package is CommonJS: under NodeNext its types describe the default import as the
// module object, while at run time it is the builder itself.
const junit = ((junitModule as unknown as { newBuilder?: unknown }).newBuilder ? junitModule : (junitModule as unknown as { default: Builder }).default) as Builder;
import type { ScenarioResult } from './results.js';
import { describeNotPassing } from './not-passing.js';

/** junit-report-builder has no setter for `line` (read by action-junit-report) nor a skip message. */
function setAttribute(tc: TestCase, name: string, value: string | number): void {
  (tc as unknown as { _attributes: Record<string, unknown> })._attributes[name] = value;
}

export function buildJunit(results: ScenarioResult[], cwd = process.cwd()): string {
  const builder = junit.newBuilder();
  builder.name('netconform');
  const skipReasons: string[] = [];
  for (const r of results) {
    // a run that did not pass (or did not complete) says which cases and why, first
    const summary = describeNotPassing(r, { cwd });
    const suite = builder.testSuite().name(`${r.scenarioId} [${r.engine}]`).time(seconds(r.timeMs));
    suite.timestamp(new Date());
    for (const [k, v] of Object.entries(r.properties)) suite.property(k, v);
    suite.property('scenario.file', relative(cwd, r.file));
    suite.property('probes', String(r.probes));
    for (const [idx, c] of r.cases.entries()) {
      const tc = suite
        .testCase()
        .className(`${r.engine}.${r.scenarioId}`)
        .name(c.name)
        .file(relative(cwd, c.loc.file))
        .time(seconds(c.timeMs));
      setAttribute(tc, 'line', c.loc.line);
      for (const [k, v] of Object.entries(r.caseProperties ?? {})) tc.property(k, v);
      if (c.finding) tc.property('finding', c.finding);
      if (c.flaky) tc.property('flaky', c.flaky);
      if (c.advisories) tc.property('advisory', c.advisories.join(' '));
      // The whole lab story goes with the first case and with every case that did not pass;
      // a reach case's rule path with every reach case.
      const full = idx === 0 || c.status === 'failed' || c.status === 'error';
      tc.standardOutput([full ? summary : '', c.transcript ?? '', c.rulePath ?? '', full ? transcriptOf(r) : ''].filter(Boolean).join('\n\n'));
      // the YAML location leads the text too: Jenkins shows the text, not the file/line attributes
      const body = [`at ${relative(cwd, c.loc.file)}:${c.loc.line}:${c.loc.col}`, c.message ?? '', c.diff ?? '', c.rulePath ?? ''].filter(Boolean).join('\n\n');
      // the failure message says where the packet ended; its body holds the whole path
      const ended = c.trace ? ` — ${c.trace.end}` : '';
      if (c.status === 'failed') tc.failure(firstLine(c.message) + ended, 'AssertionFailure').stacktrace(body);
      else if (c.status === 'error') tc.error(firstLine(c.message), 'ScenarioError', body);
      else if (c.status === 'skipped') {
        tc.skipped();
        skipReasons.push(c.message ?? 'skipped');
      }
    }
  }
  // Fill in the skip reasons, in document order.
  let i = 0;
  return builder.build().replace(/<skipped\/>/g, () => `<skipped message="${escapeAttr(skipReasons[i++] ?? '')}"/>`);
}

function transcriptOf(r: ScenarioResult): string {
  return `engine: ${r.engineDescription}\n\n== probe transcript\n${r.transcript.join('\n')}\n\n== rules\n${r.ruleDump}`;
}

/** Milliseconds as seconds with three decimals: never an exponent ("1e-7"), which JUnit's time type rejects. */
function seconds(ms: number): number {
  return Number((ms / 1000).toFixed(3));
}

function firstLine(s?: string): string {
  return (s ?? '').split('\n')[0].slice(0, 500);
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function writeJunit(path: string, results: ScenarioResult[]): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, buildJunit(results));
}
