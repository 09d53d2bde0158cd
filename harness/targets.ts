// What a run targets: an engine ("reference", "docker") and, for the reference engine, a
// profile — the rule layout of one Docker release. Named here, with no dependencies, so the
// scenario loader can check profile names and the runner can pick a driver.

/** Profiles of the reference engine, oldest first. */
export const PROFILES = [
  'docker-20.10',
  'docker-28',
  'docker-29',
  'docker-29-nftables',
] as const;
export type Profile = (typeof PROFILES)[number];

/** The rule backend a profile's engine writes: `<release>-nftables` is <release> with Docker's nftables backend. */
export type FirewallBackend = 'iptables' | 'nftables';

export function firewallBackend(profile: string): FirewallBackend {
  return profile.endsWith('-nftables') ? 'nftables' : 'iptables';
}

/**
 * The release a backend variant belongs to (docker-29-nftables → docker-29): per-profile
 * verdicts stated for the release hold for the variant unless it has its own.
 */
export function baseProfile(profile: string): string {
  return profile.replace(/-nftables$/, '');
}

/** `reference` alone means the layout the seeds show and Debian's docker.io writes. */
export const DEFAULT_PROFILE: Profile = 'docker-20.10';

/** Engines a scenario may name in per-target expectations. */
export const ENGINES = ['reference', 'docker'] as const;

export interface Target {
  engine: string;
  /** the rule layout: the reference engine's profile, or the release a real dockerd is */
  profile?: Profile;
  /** canonical name, e.g. "reference:docker-28", "docker": JUnit classnames and report headings use it */
  label: string;
}

export function isProfile(name: string): name is Profile {
  return (PROFILES as readonly string[]).includes(name);
}

/**
 * "reference", "reference:docker-28", "docker", "docker:docker-29" → a target; throws a message
 * a user can act on. A real dockerd's profile is the layout it is expected to write: Debian's
 * docker.io is 20.10; a team certifying a 29.x build says `docker:docker-29`, so per-profile
 * expectations resolve for that release and the comparison is with reference:docker-29.
 */
export function parseTarget(name: string): Target {
  const [engine, profile, ...rest] = name.split(':');
  if (rest.length || !engine) throw new Error(`"${name}" is not an engine (expected ENGINE or ENGINE:PROFILE, e.g. reference:docker-28)`);
  if (!(ENGINES as readonly string[]).includes(engine)) throw new Error(`unknown engine "${engine}" (known: ${ENGINES.join(', ')})`);
  const p = profile ?? DEFAULT_PROFILE;
  if (!isProfile(p)) throw new Error(`unknown profile "${p}" (known: ${PROFILES.join(', ')})`);
  const label = engine === 'docker' && profile === undefined ? 'docker' : `${engine}:${p}`;
  return { engine, profile: p, label };
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
