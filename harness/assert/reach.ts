// Reachability expectations: send one real probe and compare its outcome, and the source
// address the listener saw, with what the scenario expects.
import { randomBytes } from 'node:crypto';
import type { ReachDetail } from '../report/results.js';
import type { ReachExpect } from '../scenario/types.js';
import type { Endpoints } from '../run/endpoints.js';

export interface ReachEvaluation {
  ok: boolean;
  message: string;
  detail: ReachDetail;
  transcript: string;
}

export async function evaluateReach(e: ReachExpect, ep: Endpoints, timeoutMs: number): Promise<ReachEvaluation> {
  const agent = ep.agentOf(e.from);
  const dst = ep.address(e.to);
  // An outside client speaks from the outside server's address unless told otherwise.
  const source = e.source ?? (e.from === 'wan' ? ep.address('wan') : undefined);
  const token = randomBytes(6).toString('hex');
  const port = e.published ? ep.publishedPort(e.published) : e.port;
  const r =
    e.proto === 'icmp'
      ? await agent.icmp(dst, timeoutMs, { source })
      : e.proto === 'udp'
        ? await agent.udp(dst, port!, timeoutMs, { source, token })
        : await agent.tcp(dst, port!, timeoutMs, { source, token });

  // Who saw the probe: the reply says so when it came back; otherwise ask every listener.
  let seen = r.seen;
  if (!seen && e.seenSource !== undefined && e.proto !== 'icmp') {
    const answers = await Promise.all(ep.all().map((a) => a.seen(token)));
    const hit = answers.find((x) => x !== undefined);
    seen = hit?.split(':')[0];
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
