// The files a run leaves for pipelines and people, from a real run of a scenario whose two
// wrong expectations fail (specs/fixtures/reports/wrong-expectations.yaml) beside one that
// passes: JUnit against Jenkins' JUnit schema, SARIF against OASIS's 2.1.0 schema, the
// Markdown step summary within GitHub's limit, a self-contained HTML report, and the engines'
// disagreements of two real runs that differ.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { XmlDocument, type XmlElement } from 'libxml2-wasm';
import { CATALOGUE } from '../harness/catalogue.js';
import { compareRuns } from '../harness/compare/differential.js';
import { renderHtml } from '../harness/report/html.js';
import { appendStepSummary, renderMarkdown, STEP_SUMMARY_LIMIT } from '../harness/report/markdown.js';
import { RECORD_FORMAT, readRecord, type RunRecord } from '../harness/report/record.js';
import { buildSarif } from '../harness/report/sarif.js';
import { buildView } from '../harness/report/view.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { loadScenarios } from '../harness/scenario/load.js';
import { FIXTURE, JUNIT_EXTENSIONS, ROOT, junitProblems, lineOf, runCli, sarifValidator, type CliRun } from './support/reports.js';

const isRoot = process.getuid?.() === 0;
const PASSING = 'scenarios/egress/masquerade.yaml';

describe.skipIf(!isRoot)('reports of a run with failures', () => {
  let run: CliRun;
  let summaryFile: string;
  const wrongReach = lineOf(FIXTURE, '# WRONG-REACH');
  const wrongRule = lineOf(FIXTURE, '# WRONG-RULE');
  const findingLine = lineOf(FIXTURE, 'finding:') - 2; // the expectation starts at its `- id:` line

  beforeAll(async () => {
    run = await runCli(['run', FIXTURE, PASSING, '--junit', '{dir}/junit.xml', '--sarif', '{dir}/findings.sarif']);
    summaryFile = join(run.dir, 'step-summary.md');
    // the same run again, as GitHub Actions runs it: the step summary is a file named in the environment
    writeFileSync(summaryFile, '');
    await runCli(['run', FIXTURE, '--junit', '{dir}/gh/junit.xml'], { GITHUB_STEP_SUMMARY: summaryFile }, run.dir);
  });

  afterAll(() => rmSync(run.dir, { recursive: true, force: true }));

  it('exits 1 and writes every report beside the JUnit', () => {
    expect(run.exitCode, run.stderr).toBe(1);
    for (const f of ['junit.xml', 'report.html', 'report.md', 'run.json', 'findings.sarif']) expect(existsSync(join(run.dir, f)), f).toBe(true);
    expect(run.stdout).toContain(`report: ${join(run.dir, 'report.html')}`);
  });

  describe('JUnit', () => {
    it("is valid against Jenkins' JUnit schema, but for what GitLab and action-junit-report read", () => {
      const { unexpected, extensions } = junitProblems(run.read('junit.xml'));
      expect(unexpected).toEqual([]);
      // the extensions are there, and they are the ones named (file and line on every case)
      expect(extensions.filter((p) => p.message.includes("'file'")).length).toBeGreaterThanOrEqual(11);
      expect(new Set(extensions.map((p) => JUNIT_EXTENSIONS.findIndex((x) => x.pattern.test(p.message)))).size).toBe(JUNIT_EXTENSIONS.length);
    });

    it('the schema check fails on what the schema forbids (a suite without its test count, a time with an exponent)', () => {
      const xml = run.read('junit.xml');
      const noCount = xml.replace(/(<testsuite [^>]*?) tests="\d+"/, '$1');
      expect(junitProblems(noCount).unexpected.map((p) => p.message)).toContainEqual(expect.stringContaining("The attribute 'tests' is required"));
      const exponent = xml.replace(/(<testsuite [^>]*? time=")[^"]*"/, '$11e-7"');
      expect(junitProblems(exponent).unexpected.map((p) => p.message)).toContainEqual(expect.stringContaining("attribute 'time'"));
    });

    it('a failing case carries its message, the YAML location of its expectation and its diff', () => {
      const doc = XmlDocument.fromString(run.read('junit.xml'));
      try {
        const failing = doc.find('//testcase[failure]') as XmlElement[];
        expect(failing.map((t) => Number(t.attr('line')?.value)).sort()).toEqual([wrongReach, wrongRule].sort());
        for (const tc of failing) {
          const failure = tc.get('failure') as XmlElement;
          const line = Number(tc.attr('line')!.value);
          expect(tc.attr('file')?.value).toBe(FIXTURE);
          expect(failure.attr('message')?.value.length).toBeGreaterThan(10);
          expect(failure.content).toMatch(new RegExp(`^at ${FIXTURE.replace(/\./g, '\\.')}:${line}:\\d+\\n`));
          if (line === wrongRule) {
            expect(failure.attr('message')?.value).toBe('rule missing from nat/DOCKER: ! -i docker0 -p tcp -m tcp --dport 9999 -j DNAT --to-destination 172.17.0.2:80');
            expect(failure.content).toContain('--- expected\n+++ actual (nat/DOCKER)');
            expect(failure.content).toContain('+-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80');
          } else {
            expect(failure.attr('message')?.value).toMatch(/^wan → web \(172\.17\.0\.2\) tcp\/81 from 198\.51\.100\.7: expected connected, got (timeout|unreachable)/);
          }
        }
      } finally {
        doc.dispose();
      }
    });
  });

  describe('SARIF', () => {
    it("is valid against OASIS's SARIF 2.1.0 schema", () => {
      const validate = sarifValidator();
      const ok = validate(JSON.parse(run.read('findings.sarif')));
      expect(validate.errors ?? [], JSON.stringify(validate.errors, null, 1)).toEqual([]);
      expect(ok).toBe(true);
    });

    it('the schema check fails on a log the schema forbids (an unknown level, no version)', () => {
      const validate = sarifValidator();
      const log = JSON.parse(run.read('findings.sarif'));
      log.runs[0].results[0].level = 'fatal';
      expect(validate(log)).toBe(false);
      const { version: _version, ...noVersion } = JSON.parse(run.read('findings.sarif'));
      expect(validate(noVersion)).toBe(false);
    });

    it('failed cases are errors and findings warnings, with catalogue rules and the YAML line', () => {
      const log = JSON.parse(run.read('findings.sarif'));
      const { rules } = log.runs[0].tool.driver;
      const results = log.runs[0].results as { ruleId: string; ruleIndex: number; level: string; message: { text: string }; locations: { physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } } }[] }[];
      const brief = results.map((r) => [r.level, r.ruleId, r.locations[0].physicalLocation.region.startLine]).sort();
      expect(brief).toEqual(
        [
          ['error', 'IN-08', wrongReach],
          ['error', 'IN-01', wrongRule],
          ['warning', 'EG-01', findingLine],
        ].sort(),
      );
      for (const r of results) {
        expect(rules[r.ruleIndex].id).toBe(r.ruleId);
        expect(rules[r.ruleIndex].shortDescription.text).toBe(CATALOGUE[r.ruleId]);
        expect(r.locations[0].physicalLocation.artifactLocation.uri).toBe(FIXTURE);
        expect(existsSync(join(ROOT, r.locations[0].physicalLocation.artifactLocation.uri))).toBe(true);
      }
      expect(results.find((r) => r.level === 'warning')!.message.text).toContain('the container reaches the outside world');
      expect(results.find((r) => r.ruleId === 'IN-01')!.message.text).toContain('+-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080');
    });
  });

  describe('Markdown', () => {
    it("goes to GitHub's step summary when GITHUB_STEP_SUMMARY is set, and to report.md", () => {
      const md = readFileSync(summaryFile, 'utf8');
      expect(md).toContain('## netconform report: ✗ 2 cases did not pass');
      expect(md).toContain(`\`${FIXTURE}:${wrongRule}\``);
      expect(md).toContain('```diff\n--- expected\n+++ actual (nat/DOCKER)');
      expect(md).toMatch(/\| \*\*wan\*\* \| ✓ tcp\/8080 connected \| ✗ tcp\/81 \*\*(timeout|unreachable)\*\* \(expected connected\) \|/);
      expect(readFileSync(join(run.dir, 'gh', 'report.md'), 'utf8')).toBe(md);
    });

    it("stays within GitHub's 1 MiB, also for thousands of failures, and says what it left out", () => {
      const record = readRecord(join(run.dir, 'run.json'));
      const many: RunRecord = { ...record, results: Array.from({ length: 2500 }, (_, i) => record.results.map((r) => ({ ...r, scenarioId: `${r.scenarioId}-${i}` }))).flat() };
      const md = renderMarkdown(buildView(many));
      expect(Buffer.byteLength(md)).toBeLessThanOrEqual(STEP_SUMMARY_LIMIT);
      expect(Buffer.byteLength(md)).toBeGreaterThan(STEP_SUMMARY_LIMIT - 64 * 1024); // it uses the room it has
      expect(md).toMatch(/_… \d+ more failures did not fit in the step summary: see report\.html\._/);
      // a summary already near the limit (an earlier step wrote to it) gets only what is left
      const full = join(run.dir, 'full-summary.md');
      writeFileSync(full, 'x'.repeat(STEP_SUMMARY_LIMIT - 8 * 1024));
      appendStepSummary(full, buildView(many));
      expect(readFileSync(full).length).toBeLessThanOrEqual(STEP_SUMMARY_LIMIT);
    });
  });

  describe('HTML', () => {
    it('is one file that needs nothing from elsewhere', () => {
      const html = run.read('report.html');
      expect(html.match(/\b(src|href)\s*=\s*["']?(?!#)[^"'\s>]+/gi) ?? []).toEqual([]);
      expect(html).not.toMatch(/<link\b|@import|url\(|<iframe|<img\b/i);
    });

    it('shows the failing cell, the rule diff, the finding with its YAML line, and the timings', () => {
      const html = run.read('report.html');
      expect(html).toMatch(/<td class="cell failed" data-from="wan" data-to="web"><div class="probe failed"[^>]*><span class="mark">✗<\/span> <span class="proto">tcp\/81<\/span> <span class="verdict">(timeout|unreachable) <span class="exp">expected connected<\/span>/);
      expect(html).toContain('<span class="dd">--A DOCKER ! -i docker0 -p tcp -m tcp --dport 9999 -j DNAT --to-destination 172.17.0.2:80</span>');
      expect(html).toContain(`${FIXTURE}:${findingLine}`);
      // failures come before the scenarios, and the failing scenario before the passing one
      expect(html.indexOf('id="failures"')).toBeLessThan(html.indexOf('id="scenarios"'));
      expect(html.indexOf('id="report-wrong-expectations"')).toBeLessThan(html.indexOf('id="egress-masquerade"'));
      expect(html.match(/<tr data-filter data-status="[a-z]+" data-text="[^"]*"><td><a href="#[^"]+">[^<]+<\/a><\/td><td><code>reference:docker-20.10<\/code><\/td>/g)).toHaveLength(2);
    });
  });

  it("shows a case's rule path where the tracing (issue 14) filled one, in the failure and in its cell", () => {
    const record = readRecord(join(run.dir, 'run.json'));
    const path = 'host: raw:PREROUTING → nat:PREROUTING:rule 1 DOCKER\nhost: filter:FORWARD:policy DROP';
    const failing = record.results[0].cases.find((c) => c.loc.line === wrongReach)!;
    Object.assign(failing, { rulePath: path });
    const html = renderHtml(buildView(record));
    const shown = `<summary>rule path</summary><pre>${path.replace(/>/g, '&gt;')}</pre>`;
    expect(html.split(shown).length - 1).toBe(2); // the failures list and the truth-table cell
    expect(renderMarkdown(buildView(record))).toContain(`rule path:\n\n\`\`\`\n${path}\n\`\`\``);
  });

  it('shows where two engines disagree (two real runs under profiles that differ)', async () => {
    const { scenarios } = loadScenarios([join(ROOT, FIXTURE)]);
    const sc = scenarios[0];
    const runOn = (t: string) => runScenario(sc, { engineName: t, makeEngine: engineFactory(t), environment: { kernel: 'test' } });
    const a = await runOn('reference:docker-20.10');
    const b = await runOn('reference:docker-28');
    const cmp = compareRuns(sc, a, b);
    const record: RunRecord = { format: RECORD_FORMAT, startedAt: new Date().toISOString(), wallMs: 1, targets: [a.engine, b.engine], scenarios: [sc.id], results: [a, b, cmp] };
    const html = renderHtml(buildView(record));
    expect(html).toContain('<section id="disagreements"><h2>Engine disagreements');
    // docker-28 moves FORWARD's rules into DOCKER-FORWARD: the rule-set comparison names the chain and shows it
    expect(html).toMatch(/reference:docker-20\.10 and reference:docker-28 disagree in [^<]*filter\/FORWARD/);
    expect(html).toContain('<span class="da">+-A FORWARD -j DOCKER-FORWARD</span>');
    const sarif = buildSarif(record) as { runs: { results: { ruleId: string; level: string }[] }[] };
    expect(sarif.runs[0].results.filter((r) => r.ruleId === 'DIFF').map((r) => r.level)).toContain('error');
    const validate = sarifValidator();
    expect(validate(sarif), JSON.stringify(validate.errors)).toBe(true);
  });
});
