// Which real dockerd build each docker target runs, and which profile that build is. A build's
// `dockerd --version` picks its profile; the releases the suite certifies besides Debian 12's
// 20.10 come from Debian's own packages, unpacked by scripts/get-engines.sh into a cache
// folder per version with every companion beside dockerd (/var/cache/netconform/engines/28 →
// 28.5.2/). Everything here runs before the first lab: a bad build, a missing companion, an
// unknown release or a target whose profile is not the build's own stops the run (exit 2)
// with one sentence saying what to do.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PROFILE, PROFILES, baseProfile, dockerLabel, releaseOf, type Profile, type Target } from '../../targets.js';
import { DockerNotFoundError, findDockerd, locateDocker, type DockerInstall } from './locate.js';

export const FETCH_HINT = 'run ./scripts/get-engines.sh (./scripts/setup.sh does, unless NETCONFORM_ENGINES=none)';

/** No Debian suite ships 29: it is built from its pinned sources. */
export const BUILD_HINT = 'run NETCONFORM_SOURCES=DIR ./scripts/get-engines.sh 29:source (15-20 minutes; ./scripts/setup.sh does when NETCONFORM_SOURCES names the folder of the pinned source tarballs)';

/** Where the engine matrix's builds come from (the README's table says the same). */
export const RELEASES: Record<Profile, string> = {
  'docker-20.10': "Debian 12's docker.io 20.10.24 (dockerd on PATH, installed by setup.sh)",
  'docker-26': "Debian trixie's docker.io 26.1.5 (engine cache, fetched by get-engines.sh)",
  'docker-28': "Debian sid's docker.io 28.5.2 (engine cache, fetched by get-engines.sh)",
  'docker-29': "29.7.2 built from moby's docker-v29.7.2 and runc v1.3.6 with Debian's Go (engine cache, scripts/get-engines.sh 29:source)",
  'docker-29-nftables': 'the Docker 29 build started with --firewall-backend=nftables',
};

/** A profile's release without its firewall-backend variant: docker-29-nftables → docker-29. */
const releaseProfile = (p: Profile) => baseProfile(p) as Profile;

export function engineCache(env = process.env): string {
  return env.NETCONFORM_ENGINE_CACHE ?? '/var/cache/netconform/engines';
}

/** "Docker version 28.5.2+dfsg4, build 3ef3c07" → "28.5.2" */
export function versionNumber(versionLine: string): string | undefined {
  return /^Docker version (\d+\.\d+(?:\.\d+)?)/.exec(versionLine)?.[1];
}

/**
 * The profile of a dockerd version: 20.10.x → docker-20.10, 26.x → docker-26, 28.x →
 * docker-28, 29.x → docker-29; undefined for a release without a profile (21–25, 27, 30+).
 * A whole major line shares its profile: the suite measured 26.1.5 and 28.5.2.
 */
export function profileOfVersion(version: string): Profile | undefined {
  const [major, minor] = version.split('.');
  if (major === '20') return minor === '10' ? 'docker-20.10' : undefined;
  const p = `docker-${major}`;
  return p !== DEFAULT_PROFILE && (PROFILES as readonly string[]).includes(p) ? (p as Profile) : undefined;
}

/** The cached build of a release (its dockerd), if scripts/get-engines.sh fetched it. */
export function cachedBuild(profile: Profile, env = process.env): string | undefined {
  const p = join(engineCache(env), releaseOf(releaseProfile(profile)), 'dockerd');
  return existsSync(p) ? p : undefined;
}

/** Releases in the engine cache, oldest first. */
export function cachedReleases(env = process.env): Profile[] {
  const dir = engineCache(env);
  if (!existsSync(dir)) return [];
  const names = new Set(readdirSync(dir));
  // a firewall-backend variant (docker-29-nftables) runs the build of its release when named
  return PROFILES.filter((p) => releaseProfile(p) === p && names.has(releaseOf(p)) && existsSync(join(dir, releaseOf(p), 'dockerd')));
}

/** A docker target with the build it runs. */
export interface DockerBuild {
  label: string;
  profile: Profile;
  install: DockerInstall;
}

/** The install a dockerd path gives, checked against the profile a target expects. */
async function checked(dockerd: string | undefined, t: { profile?: Profile; named?: boolean }, env: NodeJS.ProcessEnv, from: string): Promise<DockerBuild> {
  const install = await locateDocker(dockerd, env);
  const number = versionNumber(install.version) ?? '?';
  const own = profileOfVersion(number);
  const release = (p: Profile) => `docker:${releaseOf(p)}`;
  if (!t.named) {
    // plain `docker`: the build's version picks the profile
    if (!own) throw new DockerNotFoundError(`${install.dockerd} is Docker ${number}, which has no profile of its own (profiles: ${PROFILES.join(', ')}): name the one to hold it to, e.g. --engine docker:${releaseOf(DEFAULT_PROFILE)}`);
    return { label: dockerLabel(own), profile: own, install };
  }
  const wanted = releaseProfile(t.profile!);
  if (own && own !== wanted) {
    throw new DockerNotFoundError(`${from} ${install.dockerd} is Docker ${number}, not ${releaseOf(wanted)}: name --engine ${release(own)} (profile ${own}) for it, or give a ${releaseOf(wanted)} build`);
  }
  // a build without a profile of its own (e.g. 24.0.9) is held to the one the target names
  return { label: dockerLabel(t.profile!), profile: t.profile!, install };
}

/**
 * The build of one docker target: `--dockerd`/NETCONFORM_DOCKERD when given (its version must
 * be the named release's), else the cached build of the named release, else (20.10, or plain
 * `docker`) the dockerd on PATH.
 */
export async function buildFor(t: Target, opts: { dockerd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<DockerBuild> {
  const env = opts.env ?? process.env;
  const explicit = opts.dockerd ?? env.NETCONFORM_DOCKERD;
  if (explicit) return checked(explicit, t, env, opts.dockerd ? '--dockerd' : 'NETCONFORM_DOCKERD');
  const cached = t.named && t.profile ? cachedBuild(t.profile, env) : undefined;
  if (cached) return checked(cached, t, env, 'the cached build');
  if (t.named && t.profile && t.profile !== DEFAULT_PROFILE) {
    const release = releaseProfile(t.profile);
    throw new DockerNotFoundError(`no Docker ${releaseOf(release)} build in ${engineCache(env)}: ${release === 'docker-29' ? BUILD_HINT : FETCH_HINT}, or give one with --dockerd PATH`);
  }
  return checked(undefined, t, { ...env, NETCONFORM_DOCKERD: undefined }, 'dockerd on PATH');
}

/**
 * Docker targets as the run will name them: `docker` follows the build's version, `docker:N`
 * is checked against it, `docker:all` becomes every build present (the dockerd on PATH and the
 * engine cache). Reference targets pass through. Throws DockerNotFoundError (exit 2).
 */
export async function resolveDockerTargets(targets: Target[], opts: { dockerd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ labels: string[]; builds: DockerBuild[] }> {
  const env = opts.env ?? process.env;
  const builds: DockerBuild[] = [];
  const labels: string[] = [];
  const add = (b: DockerBuild) => {
    const same = builds.find((x) => x.label === b.label);
    if (same && same.install.dockerd !== b.install.dockerd) throw new DockerNotFoundError(`two builds for ${b.label}: ${same.install.dockerd} and ${b.install.dockerd}; name one target per build`);
    if (!same) builds.push(b);
    if (!labels.includes(b.label)) labels.push(b.label);
  };
  for (const t of targets) {
    if (t.engine !== 'docker') {
      if (!labels.includes(t.label)) labels.push(t.label);
    } else if (t.profile === undefined) {
      // docker:all
      if (opts.dockerd ?? env.NETCONFORM_DOCKERD) throw new DockerNotFoundError('docker:all runs the builds this machine has; --dockerd names one build: use --engine docker (or docker:N) with it');
      const found: DockerBuild[] = [];
      try {
        found.push(await buildFor({ engine: 'docker', label: 'docker' }, { env: { ...env, NETCONFORM_DOCKERD: undefined } }));
      } catch {
        /* no usable dockerd on PATH: the cache may still have builds */
      }
      // each cached release, with its firewall-backend variants (29's build runs as docker:29 and docker:29-nftables)
      const cached = cachedReleases(env);
      for (const p of PROFILES.filter((q) => cached.includes(releaseProfile(q)))) if (!found.some((b) => b.profile === p)) found.push(await buildFor(profileTarget(p), { env: { ...env, NETCONFORM_DOCKERD: undefined } }));
      if (!found.length) throw new DockerNotFoundError(`docker:all found no dockerd: ${FETCH_HINT}, or install Debian's docker.io`);
      found.forEach(add);
    } else {
      add(await buildFor(t, opts));
    }
  }
  return { labels, builds };
}

function profileTarget(p: Profile): Target {
  return { engine: 'docker', profile: p, label: dockerLabel(p), named: true };
}

/** The dockerd a target would run, for messages (`doctor`): never throws. */
export function describeBuildSource(profile: Profile, env = process.env): string {
  const cached = cachedBuild(profile, env);
  if (cached) return cached;
  if (profile === DEFAULT_PROFILE) {
    try {
      return findDockerd(undefined, { ...env, NETCONFORM_DOCKERD: undefined });
    } catch {
      return 'not installed';
    }
  }
  return releaseProfile(profile) === 'docker-29' ? `not built (${BUILD_HINT})` : `not fetched (${FETCH_HINT})`;
}
