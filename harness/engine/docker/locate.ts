// Finding the Docker engine build to certify: `--dockerd PATH` (or NETCONFORM_DOCKERD), else
// `dockerd` on PATH. Its companions (containerd, the runc shim, runc, docker-proxy,
// docker-init) are taken from the same folder first, so an unpacked release is certified as a
// whole; one that would come from PATH instead is named, and one that is missing stops the run.
import { accessSync, constants, existsSync, lstatSync, readlinkSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { run } from '../../lab/exec.js';

/** Where a companion of dockerd comes from. */
export interface Companion {
  name: string;
  /** the file that will run, if any */
  path?: string;
  /** beside dockerd, found on PATH instead, or nowhere */
  origin: 'folder' | 'PATH' | 'missing';
  /** a link beside dockerd that leads nowhere (the .deb's docker-init → tini-static), with its target */
  dangling?: string;
  /** what it is for; the run stops when a required one is missing */
  role: string;
  required: boolean;
}

/** What dockerd runs besides itself, and who runs it (dockerd, containerd, or the daemon for --init). */
export const COMPANIONS: { name: string; role: string; required: boolean }[] = [
  { name: 'containerd', role: 'started by the harness beside each dockerd', required: true },
  { name: 'containerd-shim-runc-v2', role: 'started by containerd per container', required: true },
  { name: 'runc', role: "the OCI runtime (dockerd's default runtime)", required: true },
  { name: 'docker-proxy', role: 'the userland proxy of published ports (--userland-proxy-path)', required: true },
  { name: 'docker-init', role: 'the init of `docker run --init` (the suite does not use it)', required: false },
];

export interface DockerInstall {
  dockerd: string;
  containerd: string;
  /** docker-proxy next to dockerd, passed as --userland-proxy-path when present */
  proxy?: string;
  /** folders searched first for runc, shims and docker-proxy (dockerd's own folder) */
  binDir: string;
  /** e.g. "Docker version 20.10.24+dfsg1, build 5d6db84" */
  version: string;
  /** every companion and where it comes from */
  companions: Companion[];
}

/** No usable dockerd: the message says what to install or which path was wrong. */
export class DockerNotFoundError extends Error {}

export const INSTALL_HINT = 'install Debian\'s docker.io (apt-get install -y docker.io, which ./scripts/setup.sh does) or point to a build with --dockerd /path/to/dockerd';

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

function onPath(name: string, env = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    if (executable(p)) return p;
  }
  return undefined;
}

/** The dockerd to use, from an explicit path, NETCONFORM_DOCKERD, or PATH. */
export function findDockerd(explicit?: string, env = process.env): string {
  const given = explicit ?? env.NETCONFORM_DOCKERD;
  if (given) {
    const from = explicit ? '--dockerd' : 'NETCONFORM_DOCKERD';
    const p = resolve(given);
    if (!existsSync(p)) throw new DockerNotFoundError(`${from} ${given}: no such file; give the path of a dockerd binary`);
    if (!executable(p)) throw new DockerNotFoundError(`${from} ${given}: not an executable file; give the path of a dockerd binary`);
    return p;
  }
  const p = onPath('dockerd', env);
  if (!p) throw new DockerNotFoundError(`dockerd not found on PATH: ${INSTALL_HINT}`);
  return p;
}

/** A symbolic link that leads nowhere: its target, else undefined. */
function danglingLink(p: string): string | undefined {
  try {
    if (!lstatSync(p).isSymbolicLink() || existsSync(p)) return undefined;
    return readlinkSync(p);
  } catch {
    return undefined;
  }
}

/** Where each companion of the dockerd in `binDir` comes from: its folder first, then PATH (as the daemons look them up). */
export function findCompanions(binDir: string, env = process.env): Companion[] {
  return COMPANIONS.map(({ name, role, required }) => {
    const beside = join(binDir, name);
    const dangling = danglingLink(beside);
    if (executable(beside)) return { name, role, required, path: beside, origin: 'folder' as const };
    const fromPath = onPath(name, env);
    return { name, role, required, path: fromPath, origin: fromPath ? ('PATH' as const) : ('missing' as const), ...(dangling ? { dangling } : {}) };
  });
}

/** `dockerd --version`, or an error that says the file is no dockerd. */
export async function dockerdVersion(dockerd: string): Promise<string> {
  const v = await run(dockerd, ['--version'], { allowFail: true }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  const out = v.stdout.trim();
  if (v.exitCode !== 0 || !/^Docker version \d/.test(out)) {
    const said = (v.stderr || v.stdout).trim().split('\n')[0] || `exit ${v.exitCode}`;
    throw new DockerNotFoundError(`${dockerd} is not a dockerd (\`--version\` said: ${said}); give the path of a dockerd binary`);
  }
  return out;
}

/** dockerd and its companions, with the version it reports; throws when a required companion is missing. */
export async function locateDocker(explicit?: string, env = process.env): Promise<DockerInstall> {
  const dockerd = findDockerd(explicit, env);
  const binDir = dirname(dockerd);
  const version = await dockerdVersion(dockerd);
  const companions = findCompanions(binDir, env);
  // An installed engine (dockerd in a PATH folder, like Debian's /usr/sbin/dockerd) takes its
  // companions from PATH; a build given by its folder must bring its own, or it would run
  // with whatever another install left on PATH (Debian 12's containerd 1.6 beside a 28.x).
  const installed = (env.PATH ?? '').split(delimiter).includes(binDir);
  const missing = companions.filter((c) => c.required && (c.origin === 'missing' || (c.origin === 'PATH' && !installed)));
  if (missing.length) {
    const what = missing.map((c) => (c.dangling ? `${c.name} (a link to ${c.dangling} that leads nowhere)` : c.name)).join(', ');
    throw new DockerNotFoundError(`${dockerd} lacks ${what} beside it: put ${missing.length === 1 ? 'it' : 'them'} in ${binDir} (scripts/get-engines.sh assembles complete builds; a link to an installed one will do)`);
  }
  const path = (name: string) => companions.find((c) => c.name === name)?.path;
  return { dockerd, containerd: path('containerd')!, proxy: path('docker-proxy'), binDir, version, companions };
}
