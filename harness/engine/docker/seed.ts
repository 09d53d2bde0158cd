// A data root with the probe image already in it, for daemons in a microVM guest. There,
// `docker import` costs 10-13 s per daemon (dockerd re-executes itself to unpack the layer,
// under software emulation); unpacking this tar into the daemon's fresh data root is one
// process. It is made on this host, where a daemon imports in a tenth of a second, once per
// dockerd build and image, and kept in a cache the guest reads through its view of this
// host's root. Only the image store goes in (image/, overlay2/): the daemon makes its network
// state itself. A daemon that finds no image in its data root imports it as before.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import type { DaemonOptions } from '../../scenario/types.js';
import { Lab } from '../../lab/lab.js';
import { collectable, type GcScope } from '../../lab/owners.js';
import { localMachine } from '../../machine/local.js';
import { onMachine } from '../../machine/machine.js';
import { machineIptablesVariant } from '../../rules/iptables/tools.js';
import { DockerDaemon } from './daemon.js';
import { ensureImage, imageTar } from './image.js';
import type { DockerInstall } from './locate.js';
import { newDaemonPaths, stateBase } from './paths.js';

/** The folders of a data root that hold images (graph driver overlay2). */
const IMAGE_STORE = ['image', 'overlay2'];

/** A daemon that only holds the image: no bridge, no rules, no forwarding. */
const QUIET: DaemonOptions = { bridge: 'none', icc: true, 'ip-masq': false, 'ip-forward': false, iptables: false, 'userland-proxy': false };

export function seedCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.NETCONFORM_SEED_CACHE ?? '/var/cache/netconform/seeds';
}

const made = new Map<string, Promise<string>>();

/** The seed for this dockerd build and the current image, made on first use (a path on this host). */
export function dataRootSeed(install: DockerInstall, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const build = `${seedCacheDir(env)} ${install.dockerd} ${install.version}`;
  let p = made.get(build);
  if (!p) {
    p = seedKey(install).then((k) => {
      const file = join(seedCacheDir(env), `${k}.tar`);
      return existsSync(file) ? file : makeSeed(install, file);
    });
    made.set(build, p);
    p.catch(() => made.delete(build)); // a failure is not remembered: the next daemon tries again
  }
  return p;
}

/** What the seed depends on: the dockerd binary (its path, version, size and time) and the image. */
function seedKey(install: DockerInstall): Promise<string> {
  const st = statSync(install.dockerd);
  return imageTar().then((tar) => createHash('sha256').update(`${install.dockerd}\n${install.version}\n${st.size}\n${st.mtimeMs}\n`).update(tar).digest('hex').slice(0, 24));
}

async function makeSeed(install: DockerInstall, file: string): Promise<string> {
  mkdirSync(dirname(file), { recursive: true });
  // a unique name while written: runs side by side may make the same seed at once
  const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`; // gcSeedTemps knows the form
  await onMachine(localMachine, async () => {
    const lab = Lab.create();
    try {
      await lab.addNamespaces(['seed']);
      const paths = newDaemonPaths(stateBase(localMachine));
      const daemon = new DockerDaemon(install, paths, lab.nsPath('seed'), QUIET, localMachine, await machineIptablesVariant());
      lab.onDestroy(async () => {
        await daemon.stop();
        rmSync(paths.stateDir, { recursive: true, force: true });
      });
      await daemon.start();
      await ensureImage(new Dockerode({ socketPath: await daemon.api() }));
      await daemon.exportDataRoot(IMAGE_STORE, tmp);
      renameSync(tmp, file);
    } finally {
      rmSync(tmp, { force: true });
      await lab.destroy();
    }
  });
  return file;
}

/** A seed being written: <key>.tar.<pid>.<random>.tmp */
const TEMP_RE = /^[0-9a-f]+\.tar\.(\d+)\.[0-9a-f]+\.tmp$/;

/** Remove seeds a killed run was writing (its pid gone, or in scope); returns their names. */
export function gcSeedTemps(scope: GcScope, dir = seedCacheDir()): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    const m = TEMP_RE.exec(name);
    if (!m || !collectable(Number(m[1]), scope)) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
