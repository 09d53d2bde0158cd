// Evidence kept for failures: which runs' logs are written (a failed run's, and both runs of a
// comparison that disagreed; never a passing run's), where, and how the messages name them.
import { afterAll, describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keepEvidence } from '../harness/report/evidence.js';
import type { CaseResult, ScenarioResult, Status } from '../harness/report/results.js';

function run(scenarioId: string, engine: string, status: Status, log?: string): ScenarioResult {
  const c: CaseResult = { id: 'EG-01', name: 'EG-01 x', kind: 'reach', status, loc: { file: 'x.yaml', line: 1, col: 1 }, timeMs: 0, expectIndex: 0, message: status === 'passed' ? undefined : 'it went wrong' };
  return {
    scenarioId,
    title: 't',
    file: 'x.yaml',
    engine,
    engineDescription: engine,
    cases: [c],
    ruleDump: '',
    transcript: [],
    timeMs: 0,
    probes: 0,
    phaseMs: { build: 0, probe: 0, teardown: 0 },
    properties: {},
    ...(log ? { evidence: [{ name: 'dockerd.log', text: log }] } : {}),
  };
}

describe('evidence of failures', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'netconform-ev-'));
  let n = 0;
  const logsDir = () => join(tmp, String(++n), 'logs');
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("keeps a failed run's log and the logs a disagreeing comparison compared; nothing of passing runs", () => {
    const dir = logsDir();
    const results = [
      run('ok', 'docker:docker-28', 'passed', 'all fine'),
      run('broken', 'docker:docker-28', 'failed', 'daemon said no'),
      run('differs', 'reference:docker-28', 'passed'),
      run('differs', 'docker:docker-28', 'passed', 'daemon did it its way'),
      run('differs', 'reference:docker-28-vs-docker:docker-28', 'failed'),
    ];
    const written = keepEvidence(results, dir);
    expect(written.sort()).toEqual([join(dir, 'broken/docker_docker-28/dockerd.log'), join(dir, 'differs/docker_docker-28/dockerd.log')]);
    expect(readFileSync(join(dir, 'differs/docker_docker-28/dockerd.log'), 'utf8')).toBe('daemon did it its way');
    expect(existsSync(join(dir, 'ok'))).toBe(false);
    expect(results[1].cases[0].message).toBe(`it went wrong\nevidence (docker:docker-28): ${join(dir, 'broken/docker_docker-28/dockerd.log')}`);
    // the comparison's failure names the log of the run it compared; the passing run is not marked
    expect(results[4].cases[0].message).toContain(`evidence (docker:docker-28): ${join(dir, 'differs/docker_docker-28/dockerd.log')}`);
    expect(results[3].cases[0].message).toBeUndefined();
    expect(results.every((r) => r.evidence === undefined)).toBe(true);
  });

  it('keeps only the last run: evidence of an earlier run goes', () => {
    const dir = logsDir();
    keepEvidence([run('broken', 'docker', 'failed', 'first')], dir);
    keepEvidence([run('fine', 'docker', 'passed', 'second')], dir);
    expect(existsSync(join(dir, 'broken'))).toBe(false);
  });
});
