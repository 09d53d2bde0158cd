// `run --repeat N`: a case whose verdict changes between rounds is reported as flaky (JUnit
// property, summary line, the HTML and Markdown reports) with its worst round kept. The real
// check breaks the lab in one round only (an administrator DROP in FORWARD before the probes)
// and watches the merge call that case flaky and failed; two clean rounds call nothing flaky.
import { describe, expect, it } from 'vitest';
import { mergeRounds, roundList } from '../harness/report/flaky.js';
import { buildJunit } from '../harness/report/junit.js';
import { renderMarkdown } from '../harness/report/markdown.js';
import { renderHtml } from '../harness/report/html.js';
import { buildView } from '../harness/report/view.js';
import { RECORD_FORMAT } from '../harness/report/record.js';
import { summaryLine } from '../harness/report/terminal.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { runSuite } from '../harness/run/suite.js';
import type { Scenario } from '../harness/scenario/types.js';
import { scenario } from './support/engines.js';

const isRoot = process.getuid?.() === 0;

const YAML = `id: flaky-probe
title: one published port, probed from outside
covers: [IN-01]
containers:
  web: { publish: ["8080:80"], listen: [tcp/80] }
expect:
  - id: IN-01
    name: the published port answers from outside
    reach: { from: wan, to: host, proto: tcp, port: 8080 }
    result: connected
  - id: IN-01
    name: a port nobody published is closed
    reach: { from: wan, to: host, proto: tcp, port: 8081 }
    result: refused
`;

/** The same scenario with the host's forwarding dropped before the probes: the break of one round. */
function broken(sc: Scenario): Scenario {
  const loc = sc.phases[0].loc;
  return { ...sc, phases: [{ ...sc.phases[0], steps: [{ kind: 'iptables', host: sc.hosts[0].name, args: '-I FORWARD -j DROP', loc }] }, ...sc.phases.slice(1)] };
}

function record(results: ScenarioResult[], rounds: number) {
  return { format: RECORD_FORMAT, startedAt: new Date().toISOString(), wallMs: 1, targets: ['reference'], scenarios: ['flaky-probe'], rounds, results };
}

describe('round lists', () => {
  it('folds consecutive rounds', () => {
    expect(roundList([1, 2, 3, 5, 7, 8])).toBe('1-3, 5, 7-8');
    expect(roundList([4])).toBe('4');
  });
});

describe.skipIf(!isRoot)('run --repeat: flaky cases from real rounds (needs root)', () => {
  const sc = scenario(YAML, 'flaky-probe.yaml');
  const round = (s: Scenario) => runSuite([s], { engines: ['reference'], kernel: null });

  it('two clean rounds: nothing is flaky, every case passes', async () => {
    const { results, flaky } = mergeRounds([await round(sc), await round(sc)]);
    expect(flaky).toEqual([]);
    expect(results[0].cases.map((c) => c.status)).toEqual(['passed', 'passed']);
    expect(buildJunit(results)).not.toContain('name="flaky"');
    expect(summaryLine(results, 1)).not.toContain('flaky');
  });

  it('a round whose lab drops the forwarded packets makes that case flaky and failed, with its worst round kept and reported everywhere', async () => {
    const rounds = [await round(sc), await round(broken(sc)), await round(sc)];
    // the break is real: round 2 alone fails the published port
    expect(rounds[1][0].cases[0].status).toBe('failed');
    const { results, flaky } = mergeRounds(rounds);
    expect(flaky.map((f) => f.name)).toEqual(['IN-01 the published port answers from outside [wan → host tcp/8080]']);
    expect(flaky[0].failed).toBe(true);
    const c = results[0].cases[0];
    expect(c.status).toBe('failed');
    expect(c.flaky).toMatch(/^passed \(connected\) in rounds 1, 3; failed \(\w+\) in round 2$/);
    expect(c.message).toContain('(round 2 of 3; flaky:');
    // the closed port is refused in every round (the DROP is in FORWARD, the refusal comes from the host's stack or the lab's default): not flaky
    expect(results[0].cases[1].flaky).toBeUndefined();
    expect(buildJunit(results)).toMatch(/<property name="flaky" value="passed \(connected\) in rounds 1, 3; failed/);
    expect(summaryLine(results, 1)).toContain(', 1 flaky');
    const view = buildView(record(results, 3));
    expect(renderMarkdown(view)).toContain('### Flaky cases (1)');
    expect(renderHtml(view)).toContain('<section id="flaky">');
  });
});
