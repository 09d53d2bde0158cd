// `run --repeat N`: the same scenarios N rounds in a row, merged into one report. A case whose
// verdict (its status, and a probe's actual outcome) is not the same in every round is flaky:
// it says so (the `flaky` text, a JUnit property, the summary) and is never reported as passed
// when any round failed it: each case carries its worst round, so a failure in any round fails
// the run as it would without --repeat. A flaky case is a bug to find, not a retry that passed.
import type { CaseResult, ScenarioResult, Status } from './results.js';

const WORST: Status[] = ['error', 'failed', 'passed', 'skipped'];

/** What a round concluded about a case. */
export function verdict(c: CaseResult): string {
  return c.reach && c.status !== 'skipped' ? `${c.status} (${c.reach.actual})` : c.status;
}

function caseKey(r: ScenarioResult, c: CaseResult): string {
  return `${r.engine}\0${r.scenarioId}\0${c.expectIndex}\0${c.name}`;
}

export interface FlakyCase {
  scenarioId: string;
  engine: string;
  name: string;
  /** e.g. "passed in rounds 1-3, 5-10; failed (timeout) in round 4" */
  detail: string;
  /** one of the rounds failed it (the run fails anyway) */
  failed: boolean;
}

/** "1-3, 5, 7-10" */
export function roundList(rounds: number[]): string {
  const out: string[] = [];
  for (let i = 0; i < rounds.length; ) {
    let j = i;
    while (j + 1 < rounds.length && rounds[j + 1] === rounds[j] + 1) j++;
    out.push(j > i ? `${rounds[i]}-${rounds[j]}` : String(rounds[i]));
    i = j + 1;
  }
  return out.join(', ');
}

/**
 * One result per scenario run, as in a single round (the first round's order), each case its
 * worst round's, with `flaky` set where the rounds disagree; and the list of flaky cases.
 */
export function mergeRounds(rounds: ScenarioResult[][]): { results: ScenarioResult[]; flaky: FlakyCase[] } {
  const byKey = new Map<string, { round: number; r: ScenarioResult; c: CaseResult }[]>();
  for (const [i, round] of rounds.entries()) {
    for (const r of round) {
      for (const c of r.cases) {
        const k = caseKey(r, c);
        if (!byKey.has(k)) byKey.set(k, []);
        byKey.get(k)!.push({ round: i + 1, r, c });
      }
    }
  }
  const flaky: FlakyCase[] = [];
  const n = rounds.length;
  const results = rounds[0].map((first) => {
    const merged = { ...first, cases: first.cases.map((c0) => {
      const seen = byKey.get(caseKey(first, c0)) ?? [];
      const verdicts = new Map<string, number[]>();
      for (const s of seen) verdicts.set(verdict(s.c), [...(verdicts.get(verdict(s.c)) ?? []), s.round]);
      const missing = Array.from({ length: n }, (_, i) => i + 1).filter((k) => !seen.some((s) => s.round === k));
      if (missing.length) verdicts.set('not run', missing);
      const worst = [...seen].sort((a, b) => WORST.indexOf(a.c.status) - WORST.indexOf(b.c.status))[0] ?? { c: c0, round: 1 };
      if (verdicts.size <= 1) return worst.c;
      const detail = [...verdicts].map(([v, rs]) => `${v} in round${rs.length > 1 ? 's' : ''} ${roundList(rs)}`).join('; ');
      const failed = seen.some((s) => s.c.status === 'failed' || s.c.status === 'error');
      flaky.push({ scenarioId: first.scenarioId, engine: first.engine, name: c0.name, detail, failed });
      const message = worst.c.message ? `${worst.c.message}\n(round ${worst.round} of ${n}; flaky: ${detail})` : undefined;
      // the lab story of the round this case is reported from
      const story = worst.round === 1 ? worst.c.transcript : [worst.c.transcript, `== round ${worst.round} of ${n}\n${worst.r.transcript.join('\n')}`].filter(Boolean).join('\n\n');
      return { ...worst.c, flaky: detail, ...(message ? { message } : {}), ...(story ? { transcript: story } : {}) };
    }) };
    return merged;
  });
  return { results, flaky };
}
