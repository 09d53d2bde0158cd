// A probe that expects an answer waits for it; only a probe that expects silence has a bounded
// wait. Late answers are made on purpose, not hoped for from load: a listener stopped (SIGSTOP)
// for a second, and a SYN the lab drops once so that the kernel retries it a second later.
// Each case also shows the old, short wait failing the same way the gate did under load.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Lab } from '../harness/lab/lab.js';
import { run } from '../harness/lab/exec.js';
import { ProbeAgent } from '../harness/probe/agent.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { ANSWER_WAIT_MS } from '../harness/run/probe-wait.js';
import { expectAllPassed } from './support/cases.js';
import { scenario } from './support/engines.js';

const isRoot = process.getuid?.() === 0;
const LATE_MS = 1_000;
const SHORT_MS = 300; // the scenarios' default probe-timeout: what a probe used to wait

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stops the process (SIGSTOP), and resolves once it is stopped (a signal is delivered when the
 * process next runs: until then it may still serve what arrives). What it would answer comes
 * only once `resume()` is called.
 */
async function stop(pid: number): Promise<{ resume: () => void }> {
  process.kill(pid, 'SIGSTOP');
  while (readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'T') await sleep(1);
  return { resume: () => process.kill(pid, 'SIGCONT') };
}


describe.skipIf(!isRoot)('probe agents wait for answers that come late', () => {
  const lab = Lab.create();
  let client: ProbeAgent;
  let listener: ProbeAgent;

  beforeAll(async () => {
    await lab.addNamespaces(['a']);
    await run('ip', ['-n', lab.ns('a'), 'link', 'set', 'lo', 'up']);
    [client, listener] = await Promise.all(['client', 'listener'].map((label) => ProbeAgent.start({ netns: lab.nsPath('a'), label })));
    await listener.listen('tcp', 8080);
    await listener.listen('udp', 8081);
  });

  afterAll(async () => {
    await Promise.all([client?.stop(), listener?.stop()]);
    await lab.destroy();
  });

  it("a connected TCP probe waits for the listener's late report of its source", async () => {
    let l = await stop(listener.pid);
    const late = client.tcp('127.0.0.1', 8080, SHORT_MS, { token: 'late-seen', seenWaitMs: ANSWER_WAIT_MS });
    await sleep(LATE_MS);
    l.resume();
    const r = await late;
    expect([r.outcome, r.seen]).toEqual(['connected', '127.0.0.1']);
    expect(r.ms).toBeGreaterThanOrEqual(LATE_MS * 0.9);
    // the old wait, with the listener stopped until the probe ended: connected, but "the
    // listener saw source nothing" (FW-01 in a loaded guest)
    l = await stop(listener.pid);
    const old = await client.tcp('127.0.0.1', 8080, SHORT_MS, { token: 'cut-short' }).finally(() => l.resume());
    expect([old.outcome, old.seen]).toEqual(['connected', undefined]);
  });

  it('asking a listener for a token waits for the datagram that brings it', async () => {
    // the probe expected to go unanswered ends first; the stopped listener gets it later. Its
    // question is in its input before it resumes, and it reads its input first.
    let l = await stop(listener.pid);
    expect((await client.udp('127.0.0.1', 8081, SHORT_MS, { token: 'late-datagram' })).outcome).toBe('timeout');
    const waited = listener.seen('late-datagram', ANSWER_WAIT_MS);
    await sleep(100);
    l.resume();
    expect(await waited).toMatch(/^127\.0\.0\.1:\d+$/);
    // asked once, without waiting: none, though the datagram is in the listener's socket
    l = await stop(listener.pid);
    await client.udp('127.0.0.1', 8081, SHORT_MS, { token: 'asked-once' });
    const once = listener.seen('asked-once');
    await sleep(100);
    l.resume();
    expect(await once).toBeUndefined();
  });
});

describe.skipIf(!isRoot)('a scenario whose first SYN is lost', () => {
  // DOCKER-USER drops every other SYN that crosses FORWARD: the first of each probe; the kernel
  // sends it again a second later, past the scenario's 300 ms probe-timeout
  const LOST_SYN = `id: lost-syn
title: the first SYN of a probe is dropped
covers: [EG-01]
containers:
  web: {}
then:
  - steps:
      - iptables: -I DOCKER-USER -p tcp --syn -m statistic --mode nth --every 2 --packet 0 -j DROP
    expect:
      - id: EG-01
        reach: { from: web, to: wan, proto: tcp, port: 9000 }
        result: connected
`;
  // (the same probe expecting silence would be a race between its bounded wait and the retry)

  it('a probe that expects to connect waits for the retried SYN and connects', async () => {
    const r = await runScenario(scenario(LOST_SYN, 'lost-syn.yaml'), { engineName: 'reference', makeEngine: engineFactory('reference'), environment: {} });
    expectAllPassed(r, { skippedFail: true });
    expect(r.transcript.join('\n')).toMatch(/probe web → wan .* tcp\/9000: connected .* in \d{4,}\.\d ms/);
  });
});
