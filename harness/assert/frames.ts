// Frame expectations: capture on an interface (a switch port, or a host's NIC) while one probe
// runs between two endpoints, and check the 802.1Q tag of every IPv4 frame of that pair. A
// capture that saw no frame fails: an untested tag is no proof.
import type { FramesExpect } from '../scenario/types.js';
import type { Endpoints } from '../run/endpoints.js';

export interface FramesEvaluation {
  ok: boolean;
  message: string;
  transcript: string;
}

/**
 * Frames still on their way when the probe's verdict is in (a retransmission). Not a verdict:
 * the frames that made the answer crossed before it, and the capture reads what is queued when
 * it stops; a frame later than this goes uncounted, which can only hide a wrongly tagged one.
 */
const SETTLE_MS = 30;

export async function evaluateFrames(e: FramesExpect, ep: Endpoints, timeoutMs: number): Promise<FramesEvaluation> {
  const at = ep.agentOf(e.on === 'lan' ? 'wan' : e.on); // the wan namespace holds the switches
  const a = ep.address(e.from);
  const b = ep.address(e.to);
  const handle = await at.capture(e.dev, a, b, e.proto);
  const sender = ep.agentOf(e.from);
  const r = e.proto === 'icmp' ? await sender.icmp(b, timeoutMs) : e.proto === 'udp' ? await sender.udp(b, e.port!, timeoutMs) : await sender.tcp(b, e.port!, timeoutMs);
  await new Promise((res) => setTimeout(res, SETTLE_MS));
  const tags = await at.captured(handle);
  const want = e.vlan === 'none' ? 'none' : String(e.vlan);
  const seen = [...tags].map(([t, n]) => `${n} ${t === 'none' ? 'untagged' : `tagged ${t}`}`).join(', ') || 'no frames';
  const total = [...tags.values()].reduce((x, y) => x + y, 0);
  const wrong = [...tags.keys()].filter((t) => t !== want);
  const what = `${e.from} ↔ ${e.to} (${a} ↔ ${b}) ${e.proto}${e.port ? '/' + e.port : ''} on ${e.on === 'lan' ? 'the switch' : e.on}'s ${e.dev}`;
  const expected = want === 'none' ? 'untagged' : `tagged ${want}`;
  const problems = total === 0 ? [`no frame of the pair crossed ${e.dev} (the probe: ${r.outcome})`] : wrong.length ? [`expected every frame ${expected}, saw ${seen}`] : [];
  return {
    ok: problems.length === 0,
    message: problems.length ? `${what}: ${problems.join('; ')}` : '',
    transcript: `capture ${what}: ${seen} (probe ${r.outcome})${problems.length ? '  ✗ ' + problems.join('; ') : ''}`,
  };
}
