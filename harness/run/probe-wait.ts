// How long a probe waits for its answer. Two kinds of wait, because a busy machine can only
// make an answer late, never make one up:
// - a probe that expects an answer (connected, refused, unreachable, a name that resolves)
//   waits for it: the answer is an event, and it ends the wait. Only a drop — the failure —
//   lasts the whole ANSWER_WAIT_MS, so no load turns a late answer into a "timeout";
// - a probe that expects silence (timeout) must stop somewhere: its bounded wait is the
//   scenario's probe-timeout, longer while this host is busy, the most allowed in an emulated
//   guest, and held below the moment the kernel gives up on a neighbour (or a probe into another
//   VLAN ends "unreachable" here and "timeout" there). A late answer there makes a false pass,
//   never a red gate.
import { currentMachine, hostLoad } from '../machine/machine.js';

export interface ProbeWait {
  ms: number;
  /** for the message of a case that timed out: the limit and the figures it came from */
  explain: string;
}

/**
 * The wait of a probe that expects an answer. A TCP SYN is retried by the kernel at 1, 3, 7 and
 * 15 s, so a lost packet still connects inside it. The fixed 0.3-0.6 s this replaced turned
 * answers into timeouts in an emulated guest at load 5-13; 20 s is 30× those.
 */
export const ANSWER_WAIT_MS = 20_000;

/**
 * When the kernel gives up resolving a neighbour that does not answer (mcast_solicit 3 ×
 * retrans_time 1 s, its defaults) and turns a waiting probe into "unreachable" (icmp-3/1).
 */
const NEIGHBOUR_GIVES_UP_MS = 3_000;

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function answerWait(): ProbeWait {
  return { ms: ANSWER_WAIT_MS, explain: `${sec(ANSWER_WAIT_MS)}: a probe that expects an answer waits that long for it, whatever the load (${hostLoad().detail} when it started)` };
}

/**
 * On this host, the bounded wait grows with the load per core when the machine is busier than
 * its cores, read when the probe starts (a fresh clone's suite beside two emulated guests timed
 * out an egress probe after a fixed 0.3 s).
 */
function onBusyHost(ms: number): ProbeWait {
  const load = hostLoad();
  if (load.factor <= 1) return { ms, explain: sec(ms) };
  return { ms: ms * load.factor, explain: `${sec(ms * load.factor)} (${sec(ms)} × ${load.factor.toFixed(1)}: ${load.detail})` };
}

/**
 * The bounded wait of a probe that expects no answer. A packet probe's stays below 80 % of the
 * neighbour give-up; a name lookup's does not. In an emulated guest it is that most at once: a
 * packet crosses a guest's lab 10-20× slower, and a slowness measured when the guest started
 * said nothing of the load that came later (0.3 s × 1.3 there turned answers into timeouts).
 */
export function silenceWait(probeTimeoutMs: number, packet = true): ProbeWait {
  const cap = Math.max(probeTimeoutMs, 0.8 * NEIGHBOUR_GIVES_UP_MS);
  const held = `held below the ${NEIGHBOUR_GIVES_UP_MS / 1000} s after which the kernel gives up on a neighbour`;
  if (!currentMachine().local) return { ms: Math.round(cap), explain: `${sec(cap)} (the most a probe waits in an emulated guest, ${held})` };
  const l = onBusyHost(probeTimeoutMs);
  if (!packet || l.ms <= cap) return { ms: Math.round(l.ms), explain: l.explain };
  return { ms: Math.round(cap), explain: `${sec(cap)} (${l.explain}, ${held})` };
}
