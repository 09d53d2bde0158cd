// A rule path as people read it (terminal, JUnit, the HTML report), and two paths side by side
// with the first step where they part (the engine comparison).
import { describePacket } from './events.js';
import type { HostPath, PathStep, RulePath } from './path.js';

function stepWhere(s: PathStep): string {
  return `${s.table}:${s.chain}${s.policy ? '' : s.position ? ` #${s.position}` : ''}`;
}

function stepVerdict(s: PathStep): string {
  if (s.policy) return `policy ${s.verdict}`;
  return s.nat ? `${s.verdict} to ${s.nat}` : s.verdict;
}

/** Without its "-A CHAIN " prefix: the chain is in the step's first column already. */
function ruleBody(s: PathStep): string {
  return (s.rule ?? '').replace(/^-A \S+ /, '');
}

function hostHeader(h: HostPath): string {
  const how = h.local ? 'sent by a process of the host' : `in on ${h.entered.iif ?? '?'}`;
  return `${h.host}: ${describePacket(h.entered)}, ${how}${h.repeats ? ` (${h.repeats} retransmission${h.repeats === 1 ? '' : 's'} took the same way)` : ''}`;
}

function hostEnd(h: HostPath, withPacket = true): string {
  switch (h.end.kind) {
    case 'left':
      return `→ left on ${h.end.packet.oif ?? '?'}${withPacket ? ` as ${describePacket(h.end.packet)}` : ''}`;
    case 'delivered':
      return '→ delivered to a socket of the host';
    case 'dropped':
      return `✗ ${h.end.step.verdict}`;
    case 'stopped':
      return '→ neither forwarded nor delivered';
  }
}

/** The lines of one host's part: a header, a line per step, the end. */
export function hostLines(h: HostPath): string[] {
  const width = Math.max(0, ...h.steps.map((s) => stepWhere(s).length));
  const vwidth = Math.max(0, ...h.steps.map((s) => stepVerdict(s).length));
  const steps = h.steps.map((s) => `  ${stepWhere(s).padEnd(width)}  ${stepVerdict(s).padEnd(vwidth)}  ${ruleBody(s)}`.trimEnd());
  return [hostHeader(h), ...(steps.length ? steps : ['  (no rule of the host matched it)']), `  ${hostEnd(h)}`];
}

export function renderRulePath(p: RulePath): string {
  if (p.unavailable) return `rule path unavailable: ${p.unavailable}`;
  return ['rule path (nftables trace of the Docker hosts it crossed):', ...p.hosts.flatMap(hostLines), `end: ${p.end}`].join('\n');
}

/** The comparable lines of a path: steps as "[host] table:chain #n VERDICT rule", then each host's end. */
export function pathSteps(p: RulePath): string[] {
  if (p.unavailable) return [`unavailable: ${p.unavailable}`];
  // no ports in them: a probe's source port is the kernel's choice, different on every run;
  // hosts named where a scenario has several
  const named = p.hosts.some((h) => h.host !== 'host');
  const on = (h: HostPath) => (named ? `${h.host} ` : '');
  const lines = p.hosts.flatMap((h) => [...h.steps.map((s) => `${on(h)}${stepWhere(s)} ${stepVerdict(s)} ${ruleBody(s)}`.trimEnd()), `${on(h)}${hostEnd(h, false)}`]);
  return lines.length ? lines : [p.end];
}

/**
 * Two engines' paths side by side (names made comparable by `normalize`), the first step
 * where they part marked; rows before it that agree are kept, so the reader sees the way in.
 */
export function sideBySide(a: { label: string; path: RulePath }, b: { label: string; path: RulePath }, normalize: (s: string, side: 'a' | 'b') => string = (s) => s, width = 72): string {
  const la = pathSteps(a.path).map((s) => normalize(s, 'a'));
  const lb = pathSteps(b.path).map((s) => normalize(s, 'b'));
  let part = 0;
  while (part < la.length && part < lb.length && la[part] === lb[part]) part++;
  const cut = (s: string) => (s.length > width ? s.slice(0, width - 1) + '…' : s.padEnd(width));
  const rows = [`  ${cut(a.label)} │ ${b.label}`, `  ${'─'.repeat(width)}─┼─${'─'.repeat(Math.min(width, 40))}`];
  for (let i = 0; i < Math.max(la.length, lb.length); i++) rows.push(`${i === part ? '≠ ' : '  '}${cut(la[i] ?? '')} │ ${lb[i] ?? ''}`);
  const first = part < Math.max(la.length, lb.length) ? `they part at step ${part + 1}: ${a.label} ${la[part] ?? '(ends)'}; ${b.label} ${lb[part] ?? '(ends)'}` : 'the paths are the same';
  return [first, ...rows].join('\n');
}
