// A guest's daemons start from a seeded data root (harness/engine/docker/seed.ts) instead of
// importing the image under emulation. Proved here on this host's dockerd: the seed holds the
// image store only, a daemon started from it has the image without an import, and a daemon
// whose seed lacks the image store imports it (the check can fail).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { DaemonPool } from '../harness/engine/docker/pool.js';
import { DockerDaemon } from '../harness/engine/docker/daemon.js';
import { ensureImage } from '../harness/engine/docker/image.js';
import { newDaemonPaths } from '../harness/engine/docker/paths.js';
import { dataRootSeed, gcSeedTemps } from '../harness/engine/docker/seed.js';
import type { DockerInstall } from '../harness/engine/docker/locate.js';
import { Lab } from '../harness/lab/lab.js';
import { localMachine } from '../harness/machine/local.js';
import { machineIptablesVariant } from '../harness/rules/iptables/tools.js';

const isRoot = process.getuid?.() === 0;
const install = await new DaemonPool({}, localMachine).install().catch(() => undefined);
const cache = mkdtempSync(join(tmpdir(), 'ncf-seed-spec-'));

/** Start a daemon on this host from `seed` and return what ensureImage took (0: the image was there). */
async function importMs(inst: DockerInstall, seed: string | undefined): Promise<number> {
  const lab = Lab.create();
  try {
    await lab.addNamespaces(['host']);
    const paths = newDaemonPaths();
    const d = new DockerDaemon(inst, paths, lab.nsPath('host'), { bridge: 'none', icc: true, 'ip-masq': false, 'ip-forward': false, iptables: false, 'userland-proxy': false }, localMachine, await machineIptablesVariant());
    lab.onDestroy(async () => {
      await d.stop();
      rmSync(paths.stateDir, { recursive: true, force: true });
    });
    await d.start(seed);
    return await ensureImage(new Dockerode({ socketPath: await d.api() }));
  } finally {
    await lab.destroy();
  }
}

afterAll(() => rmSync(cache, { recursive: true, force: true }));

describe.skipIf(!isRoot || !install)('seeded data root', () => {
  const env = { ...process.env, NETCONFORM_SEED_CACHE: cache };

  it('holds the image store only, under the data root path, and is made once', async () => {
    const seed = await dataRootSeed(install!, env);
    expect(seed.startsWith(cache)).toBe(true);
    const names = execFileSync('tar', ['-tf', seed], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(names).toContain('netconform/data/image/overlay2/repositories.json');
    expect(names.some((n) => n.startsWith('netconform/data/overlay2/'))).toBe(true);
    expect(names.filter((n) => !/^netconform\/data\/(image|overlay2)\//.test(n))).toEqual([]);
    expect(await dataRootSeed(install!, env)).toBe(seed);
  });

  it('a daemon started from it has the image without importing it', async () => {
    expect(await importMs(install!, await dataRootSeed(install!, env))).toBe(0);
  });

  it('a daemon whose seed has no image store imports the image', async () => {
    const empty = join(cache, 'empty');
    execFileSync('sh', ['-c', `mkdir -p ${empty}/netconform/data && tar -C ${empty} -cf ${empty}.tar netconform`]);
    expect(await importMs(install!, `${empty}.tar`)).toBeGreaterThan(0);
  });
});

describe('gc of seeds a killed run was writing', () => {
  it('removes those of runs that are gone, keeps those of live runs and finished seeds', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncf-seed-gc-'));
    try {
      const dead = Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
      const names = [`ab12.tar.${dead}.9f.tmp`, `ab12.tar.${process.pid}.3c.tmp`, 'ab12.tar'];
      for (const n of names) writeFileSync(join(dir, n), '');
      expect(gcSeedTemps({}, dir)).toEqual([names[0]]);
      expect(names.map((n) => existsSync(join(dir, n)))).toEqual([false, true, true]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
