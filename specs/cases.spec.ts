// A failure explains itself: from real runs on the reference engine, one with a wrong
// expectation and one whose step fails (the scenario does not complete), the spec helper's
// failure and the JUnit system-out both start with the cases that did not pass, their YAML
// place and their message.
import { beforeAll, describe, expect, it } from 'vitest';
import { buildJunit } from '../harness/report/junit.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { expectAllPassed } from './support/cases.js';
import { scenario } from './support/engines.js';

const isRoot = process.getuid?.() === 0;

// line 8: the wrong expectation (web answers on 80: connected, not refused)
const WRONG = `id: explained-failure
title: one right and one wrong expectation
covers: [BR-02]
containers:
  web: { listen: [tcp/80] }
  client: {}
expect:
  - id: BR-02
    reach: { from: client, to: web, proto: tcp, port: 80 }
    result: refused
  - id: BR-02
    reach: { from: client, to: web, proto: tcp, port: 80 }
    result: connected
`;

// the step's iptables command is refused: the scenario does not complete
const INCOMPLETE = `id: incomplete-run
title: a step that fails
covers: [BR-02]
containers:
  web: { listen: [tcp/80] }
expect:
  - id: BR-02
    reach: { from: host, to: web, proto: tcp, port: 80 }
    result: connected
then:
  - steps:
      - iptables: -A NO-SUCH-CHAIN -j DROP
    expect:
      - id: BR-02
        reach: { from: host, to: web, proto: tcp, port: 80 }
        result: connected
`;

/** The message of the failure `fn` raises. */
function failureOf(fn: () => void): string {
  try {
    fn();
  } catch (e) {
    return (e as Error).message;
  }
  return '(it did not fail)';
}

describe.skipIf(!isRoot)('failures that explain themselves', () => {
  let wrong: ScenarioResult;
  let incomplete: ScenarioResult;

  beforeAll(async () => {
    const run = (yaml: string, file: string) => runScenario(scenario(yaml, file), { engineName: 'reference', makeEngine: engineFactory('reference'), environment: {} });
    [wrong, incomplete] = await Promise.all([run(WRONG, 'explained-failure.yaml'), run(INCOMPLETE, 'incomplete-run.yaml')]);
  });

  it("the spec helper's first lines name the case, its YAML line and why", () => {
    const lines = failureOf(() => expectAllPassed(wrong)).split('\n');
    expect(lines[0]).toBe('explained-failure [reference:docker-20.10]: 1 of 2 cases did not pass');
    expect(lines[1]).toMatch(/^ {2}failed BR-02 .*\[client → web tcp\/80\] {2}at specs\/explained-failure\.yaml:8:5$/);
    expect(lines[2]).toMatch(/^ {6}client → web \(172\.17\.0\.\d+\) tcp\/80: expected refused, got connected$/);
    expect(lines.slice(3).join('\n')).toMatch(/--- transcript/);
  });

  it('a run that passed does not fail the helper', () => {
    expect(() => expectAllPassed({ ...wrong, cases: wrong.cases.filter((c) => c.status === 'passed') })).not.toThrow();
  });

  it("JUnit's system-out of a scenario that did not complete starts with what did not run, and why", () => {
    expect(incomplete.cases.map((c) => c.status)).toEqual(['passed', 'error']);
    const xml = buildJunit([incomplete]);
    const out = /<system-out><!\[CDATA\[([\s\S]*?)\]\]><\/system-out>/.exec(xml.slice(xml.indexOf('<error')))?.[1] ?? '';
    const lines = out.split('\n');
    expect(lines[0]).toBe('incomplete-run [reference:docker-20.10]: 1 of 2 cases did not pass');
    expect(lines[1]).toMatch(/^ {2}error BR-02 .* {2}at specs\/incomplete-run\.yaml:14:9$/);
    expect(lines[2]).toMatch(/^ {6}scenario did not complete: .*NO-SUCH-CHAIN/);
  });
});
