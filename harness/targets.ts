// What a run targets: an engine ("reference", "docker") and a profile — the behaviour of one
// Docker release: the reference engine's rule layout, or the release a real dockerd is.
// Named here, with no dependencies, so the scenario loader can check profile names and the
// runner can pick a driver. Which dockerd build a docker target runs is decided at the edge
// (harness/engine/docker/builds.ts), from its version.

/** Profiles of the reference engine, oldest first. */
export const PROFILES = [
  'docker-20.10',
  'docker-26',
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

/** `docker:all`: every real build present on this machine, each with its own profile. */
export const ALL_BUILDS = 'docker:all';

export interface Target {
  engine: string;
  /** the rule layout: the reference engine's profile, or the release a real dockerd is */
  profile?: Profile;
  /** canonical name, e.g. "reference:docker-28", "docker", "docker:docker-28": JUnit classnames and report headings use it */
  label: string;
  /** a docker target that named its release (`docker:28`), rather than taking the build's own */
  named?: boolean;
}

export function isProfile(name: string): name is Profile {
  return (PROFILES as readonly string[]).includes(name);
}

/** "20.10", "28" or "docker-28" → the profile; undefined when it names no release we know. */
export function profileOfRelease(name: string): Profile | undefined {
  const p = name.startsWith('docker-') ? name : `docker-${name}`;
  return isProfile(p) ? p : undefined;
}

/** The release a profile stands for: "docker-28" → "28". */
export function releaseOf(profile: Profile): string {
  return profile.slice('docker-'.length);
}

/** A real dockerd's canonical name: Debian 12's 20.10 is plain "docker", others name their profile. */
export function dockerLabel(profile: Profile): string {
  return profile === DEFAULT_PROFILE ? 'docker' : `docker:${profile}`;
}

/**
 * "reference", "reference:docker-28", "docker", "docker:28", "docker:docker-29" → a target;
 * throws a message a user can act on. A real dockerd's profile is the layout it is expected to
 * write: plain `docker` is Debian's docker.io (20.10) until the edge has read the build's own
 * version (`--dockerd PATH`); `docker:28` is the cached Docker 28 build or a `--dockerd` that
 * must be one, so per-profile expectations resolve for that release and the comparison is
 * with reference:docker-28.
 */
export function parseTarget(name: string): Target {
  const [engine, profile, ...rest] = name.split(':');
  if (rest.length || !engine) throw new Error(`"${name}" is not an engine (expected ENGINE or ENGINE:PROFILE, e.g. reference:docker-28)`);
  if (!(ENGINES as readonly string[]).includes(engine)) throw new Error(`unknown engine "${engine}" (known: ${ENGINES.join(', ')})`);
  if (engine === 'docker') {
    if (profile === undefined) return { engine, profile: DEFAULT_PROFILE, label: 'docker' };
    if (profile === 'all') throw new Error(`${ALL_BUILDS} stands for every build present: expand it first (expandTargets)`);
    const p = profileOfRelease(profile);
    if (!p) throw new Error(`unknown release "${profile}" (known: ${PROFILES.filter((q) => baseProfile(q) === q).map(releaseOf).join(', ')}, all; e.g. docker:28)`);
    return { engine, profile: p, label: dockerLabel(p), named: true };
  }
  const p = profile ?? DEFAULT_PROFILE;
  if (!isProfile(p)) throw new Error(`unknown profile "${p}" (known: ${PROFILES.join(', ')})`);
  return { engine, profile: p, label: `${engine}:${p}` };
}

/**
 * The targets of a run: each engine, and each reference engine once per requested profile.
 * `docker:all` stays as it is (a target without a profile): the edge replaces it with the
 * builds it finds.
 */
export function expandTargets(engines: string[], profiles?: string[]): Target[] {
  const wanted = profiles?.includes('all') ? [...PROFILES] : profiles;
  for (const p of wanted ?? []) if (!isProfile(p)) throw new Error(`unknown profile "${p}" (known: ${PROFILES.join(', ')}, all)`);
  const out: Target[] = [];
  for (const e of engines) {
    if (e === ALL_BUILDS) out.push({ engine: 'docker', label: ALL_BUILDS });
    else if (e === 'reference' && wanted?.length) out.push(...wanted.map((p) => parseTarget(`reference:${p}`)));
    else out.push(parseTarget(e));
  }
  return out.filter((t, i) => out.findIndex((u) => u.label === t.label) === i);
}
