// Finding the Docker engine build to certify: `--dockerd PATH` (or NETCONFORM_DOCKERD), else
// `dockerd` on PATH. Its companions (containerd, runc, docker-proxy, the shims) are taken from
// the same folder first, so an unpacked static release is certified as a whole.
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { delimiter, dirname, join, resolve } from 'node:path';
import { run } from '../../lab/exec.js';

export interface DockerInstall {
  dockerd: string;
  containerd: string;
  /** docker-proxy next to dockerd, passed as --userland-proxy-path when present */
  proxy?: string;
  /** folders searched first for runc, shims and docker-proxy (dockerd's own folder) */
  binDir: string;
  /** e.g. "Docker version 20.10.24+dfsg1, build 5d6db84" */
  version: string;
}

/** No usable dockerd: the message says what to install or which path was wrong. */
export class DockerNotFoundError extends Error {}

const INSTALL_HINT = 'install Debian\'s docker.io (apt-get install -y docker.io, which ./scripts/setup.sh does) or point to a build with --dockerd /path/to/dockerd';

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

/** dockerd and its companions, with the version it reports. */
export async function locateDocker(explicit?: string, env = process.env): Promise<DockerInstall> {
  const dockerd = findDockerd(explicit, env);
  const binDir = dirname(dockerd);
  const sibling = (name: string) => (executable(join(binDir, name)) ? join(binDir, name) : undefined);
  const containerd = sibling('containerd') ?? onPath('containerd', env);
  if (!containerd) throw new DockerNotFoundError(`containerd not found next to ${dockerd} nor on PATH: ${INSTALL_HINT}`);
  const v = await run(dockerd, ['--version'], { allowFail: true }).catch((e: Error) => ({ exitCode: -1, stdout: '', stderr: e.message }));
  if (v.exitCode !== 0) throw new DockerNotFoundError(`${dockerd} --version failed: ${(v.stderr || v.stdout).trim() || `exit ${v.exitCode}`}; is it a dockerd binary?`);
  return { dockerd, containerd, proxy: sibling('docker-proxy') ?? onPath('docker-proxy', env), binDir, version: v.stdout.trim() };
}
