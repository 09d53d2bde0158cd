// Reachability expectations: send one real probe and compare its outcome, and the source
// address the listener saw, with what the scenario expects.
import { randomBytes } from 'node:crypto';
import type { ReachDetail } from '../report/results.js';
import type { ReachExpect } from '../scenario/types.js';
import type { Endpoints } from '../run/endpoints.js';
import type { ProbeAgent } from '../probe/agent.js';

export interface ReachEvaluation {
  ok: boolean;
  message: string;
  detail: ReachDetail;
  transcript: string;
}

/**
 * `waits.probe`: how long the probe waits for its answer; `waits.seen`: how long the listener's
 * report of the source may take once the probe got through (short only where the scenario
 * expects that no listener sees it: a port held but never served).
 */
export async function evaluateReach(e: ReachExpect, ep: Endpoints, waits: { probe: number; seen: number }): Promise<ReachEvaluation> {
  const timeoutMs = waits.probe;
  const agent = ep.agentOf(e.from);
  const dst = ep.address(e.to);
  // An outside client speaks from the outside server's address unless told otherwise.
  const source = e.source ?? (e.from === 'wan' || e.from === 'ipv6:wan' ? ep.address(e.from) : undefined);
  const token = randomBytes(6).toString('hex');
  const port = e.published ? ep.publishedPort(e.published) : e.port;
  const r =
    e.proto === 'icmp'
      ? await agent.icmp(dst, timeoutMs, { source })
      : e.proto === 'udp'
        ? await agent.udp(dst, port!, timeoutMs, { source, token })
        : await agent.tcp(dst, port!, timeoutMs, { source, token, seenWaitMs: waits.seen });

  // Who saw the probe: the reply says so when it came back; otherwise ask every listener. A
  // source that is expected is an answer to wait for (a listener may get the probe after its
  // sender stopped waiting for the reply); "none" is asked once.
  let seen = r.seen;
  if (!seen && e.seenSource !== undefined && e.proto !== 'icmp') {
    const hit = await firstSeen(ep.all(), token, e.seenSource === 'none' ? 0 : waits.seen);
    seen = hit?.replace(/:\d+$/, ''); // IP:PORT, the IP possibly IPv6
  }

  const problems: string[] = [];
  if (r.outcome !== e.result) problems.push(`expected ${e.result}, got ${r.outcome}${r.detail ? ` (${r.detail})` : ''}`);
  let expectedSeen: string | undefined;
  if (e.seenSource !== undefined) {
    expectedSeen = e.seenSource === 'none' ? 'none' : ep.address(e.seenSource);
    const actual = seen ?? 'none';
    if (actual !== expectedSeen) {
      problems.push(`the listener saw source ${actual === 'none' ? 'nothing' : `${actual} (${ep.nameOf(actual)})`}, expected ${e.seenSource === 'none' ? 'nothing' : `${expectedSeen} (${e.seenSource})`}`);
    }
  }
  const what = `${e.from} → ${e.to} (${dst}) ${e.proto}${port ? '/' + port : ''}${e.published ? ` (published ${e.published})` : ''}${source ? ` from ${source}` : ''}`;
  const seenText = seen ? ` seen ${seen} (${ep.nameOf(seen)})` : '';
  return {
    ok: problems.length === 0,
    message: problems.length ? `${what}: ${problems.join('; ')}` : '',
    detail: { from: e.from, to: e.to, address: dst, proto: e.proto, port, expected: e.result, actual: r.outcome, expectedSeen, seen, ...(r.sent ? { sent: r.sent } : {}), ...(r.detail ? { detail: r.detail } : {}) },
    transcript: `probe ${what}: ${r.outcome}${r.detail ? ` (${r.detail})` : ''}${seenText} in ${r.ms.toFixed(1)} ms${problems.length ? '  ✗ ' + problems.join('; ') : ''}`,
  };
}

/** The first listener's report of the token, or undefined once every agent said none. */
function firstSeen(agents: ProbeAgent[], token: string, waitMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let left = agents.length;
    if (left === 0) return resolve(undefined);
    for (const a of agents) {
      void a
        .seen(token, waitMs)
        .catch(() => undefined) // an agent that stopped saw nothing more
        .then((x) => (x !== undefined ? resolve(x) : --left === 0 && resolve(undefined)));
    }
  });
}
