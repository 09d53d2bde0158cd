// Expectations that differ by engine profile or engine. A scenario states them as
//
//   result: { docker-20.10: connected, default: timeout }     # per profile, with a default
//   profiles: [docker-28, docker-29]                          # where an expectation applies
//
// and each run resolves them for its target (engine + profile) before anything is probed.
import { ENGINES, PROFILES, isProfile, type Target } from '../targets.js';
import type { Expectation, Scenario } from './types.js';

/** Why a key of a per-target map is not valid, or undefined when it is. */
export function targetKeyProblem(key: string): string | undefined {
  if (key === 'default' || isProfile(key) || (ENGINES as readonly string[]).includes(key)) return undefined;
  const [engine, profile] = key.split(':');
  if (engine === 'reference' && profile !== undefined && isProfile(profile)) return undefined;
  return `unknown profile or engine '${key}' (expected one of: ${[...PROFILES, ...ENGINES, 'reference:PROFILE', 'default'].join(', ')})`;
}

/** The value for a target: engine:profile, then engine, then profile, then default. */
export function pickForTarget<T>(byTarget: Record<string, T>, t: Target): T | undefined {
  const keys = [t.profile ? `${t.engine}:${t.profile}` : undefined, t.engine, t.profile, 'default'];
  for (const k of keys) if (k !== undefined && k in byTarget) return byTarget[k];
  return undefined;
}

/** Profiles a map leaves without a value (it has no default and does not name them). */
export function uncoveredProfiles(byTarget: Record<string, unknown>, scope: readonly string[]): string[] {
  if ('default' in byTarget || 'reference' in byTarget) return [];
  return scope.filter((p) => !(p in byTarget) && !(`reference:${p}` in byTarget));
}

function appliesTo(profiles: string[] | undefined, t: Target): boolean {
  return !profiles || !t.profile || profiles.includes(t.profile);
}

/**
 * The scenario as one target sees it: results picked; expectations stated for other profiles
 * marked `notFor` (left out of the run), and those that cannot be checked marked `skipReason`.
 */
export function resolveForTarget(sc: Scenario, t: Target): Scenario {
  const expect = sc.expect.map((e): Expectation => {
    if (!appliesTo(sc.profiles, t)) return { ...e, skipReason: `the scenario runs under ${sc.profiles!.join(', ')} only (this run: ${t.label})` };
    if (!appliesTo(e.profiles, t)) return { ...e, notFor: `stated for ${e.profiles!.join(', ')} only` };
    const finding = e.findingBy ? { finding: pickForTarget(e.findingBy, t) } : {};
    if (e.kind !== 'reach') return { ...e, ...finding };
    const out = { ...e, ...finding };
    if (e.resultBy) {
      const r = pickForTarget(e.resultBy, t);
      if (r === undefined) return { ...e, skipReason: `states no result for ${t.label} (add it, or a default)` };
      out.result = r;
    }
    if (e.seenSourceBy) out.seenSource = pickForTarget(e.seenSourceBy, t);
    if (e.decidedByBy) out.decidedBy = pickForTarget(e.decidedByBy, t);
    return out;
  });
  return { ...sc, expect };
}
