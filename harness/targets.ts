// What a run targets: an engine ("reference", "docker") and, for the reference engine, a
// profile — the rule layout of one Docker release. Named here, with no dependencies, so the
// scenario loader can check profile names and the runner can pick a driver.

/** Profiles of the reference engine, oldest first. */
export const PROFILES = ['docker-20.10', 'docker-28', 'docker-29'] as const;
export type Profile = (typeof PROFILES)[number];

/** `reference` alone means the layout the seeds show and Debian's docker.io writes. */
export const DEFAULT_PROFILE: Profile = 'docker-20.10';

/** Engines a scenario may name in per-target expectations. */
export const ENGINES = ['reference', 'docker'] as const;

export interface Target {
  engine: string;
  /** the reference engine's profile; undefined for an engine that is what it is (a real dockerd) */
  profile?: Profile;
  /** canonical name, e.g. "reference:docker-28": JUnit classnames and report headings use it */
  label: string;
}

export function isProfile(name: string): name is Profile {
  return (PROFILES as readonly string[]).includes(name);
}

/** "reference", "reference:docker-28", "docker" → a target; throws a message a user can act on. */
export function parseTarget(name: string): Target {
  const [engine, profile, ...rest] = name.split(':');
  if (rest.length || !engine) throw new Error(`"${name}" is not an engine (expected ENGINE or ENGINE:PROFILE, e.g. reference:docker-28)`);
  if (engine === 'reference') {
    const p = profile ?? DEFAULT_PROFILE;
    if (!isProfile(p)) throw new Error(`unknown profile "${p}" (known: ${PROFILES.join(', ')})`);
    return { engine, profile: p, label: `${engine}:${p}` };
  }
  if (profile !== undefined) throw new Error(`engine "${engine}" has no profiles; profiles select the reference engine's rule layout`);
  return { engine, label: engine };
}

/** The targets of a run: each engine, and each reference engine once per requested profile. */
export function expandTargets(engines: string[], profiles?: string[]): Target[] {
  const wanted = profiles?.includes('all') ? [...PROFILES] : profiles;
  for (const p of wanted ?? []) if (!isProfile(p)) throw new Error(`unknown profile "${p}" (known: ${PROFILES.join(', ')}, all)`);
  const out: Target[] = [];
  for (const e of engines) {
    if (e === 'reference' && wanted?.length) out.push(...wanted.map((p) => parseTarget(`reference:${p}`)));
    else out.push(parseTarget(e));
  }
  return out.filter((t, i) => out.findIndex((u) => u.label === t.label) === i);
}
