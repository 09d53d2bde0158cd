// The one image the docker engine runs, made without any registry: Debian's busybox-static
// in bin/, a few applet links, imported with `docker import` (the API's fromSrc). Probes never
// run inside it (the probe agent enters the container's namespaces from outside); the
// container's main process is busybox `sleep`, the rest is for a person poking around.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';

export const IMAGE = 'netconform/busybox:probe';
/** the container's main process: does nothing, forever (busybox has no `infinity`) */
export const IDLE_COMMAND = ['/bin/sleep', '2147483647'];
const APPLETS = ['sh', 'sleep', 'ip', 'nc', 'ping', 'cat', 'ls', 'hostname', 'env', 'httpd', 'wget', 'ps'];
const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox'];

let tarball: Promise<Buffer> | undefined;

/** The image's root file system as a tar, built once per process. */
export function imageTar(): Promise<Buffer> {
  tarball ??= buildTar();
  return tarball;
}

/** Built on this host (a guest's daemon gets it through its API socket like any other). */
async function buildTar(): Promise<Buffer> {
  const busybox = BUSYBOX_CANDIDATES.find((p) => existsSync(p));
  if (!busybox) throw new Error('busybox not found: install Debian\'s busybox-static (apt-get install -y busybox-static)');
  const r = spawnSync(busybox, ['--help'], { encoding: 'utf8' });
  if (!/BusyBox/.test(`${r.stdout}${r.stderr}`)) throw new Error(`${busybox} is not busybox`);
  const dir = mkdtempSync(join(tmpdir(), 'netconform-image-'));
  try {
    mkdirSync(join(dir, 'bin'));
    mkdirSync(join(dir, 'etc'));
    mkdirSync(join(dir, 'tmp'));
    chmodSync(join(dir, 'tmp'), 0o1777);
    copyFileSync(busybox, join(dir, 'bin', 'busybox'));
    chmodSync(join(dir, 'bin', 'busybox'), 0o755);
    for (const a of APPLETS) symlinkSync('busybox', join(dir, 'bin', a));
    return execFileSync('tar', ['-C', dir, '--numeric-owner', '--owner=0', '--group=0', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Import the image into a daemon unless it is there already; returns the ms it took. */
export async function ensureImage(docker: Dockerode): Promise<number> {
  const t0 = performance.now();
  try {
    await docker.getImage(IMAGE).inspect();
    return 0;
  } catch {
    /* not there yet */
  }
  const tar = await imageTar();
  const [repo, tag] = IMAGE.split(':');
  const stream = await docker.importImage(Readable.from([tar]), { repo, tag });
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve()));
  });
  await docker.getImage(IMAGE).inspect(); // the import really happened
  return performance.now() - t0;
}
