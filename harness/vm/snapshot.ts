// A saved guest: qemu's state right after the guest's kernel booted, loaded its modules and
// started its agent (nothing mounted: a mounted 9p share would block the save). Restoring it
// takes about a second where booting takes 5-15 s under software emulation. Files are named
// by what made them (qemu version, kernel image, initramfs, machine shape), written to a
// temporary name and renamed, so runs of any worktree share them safely.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Qmp } from './qmp.js';
import { QEMU } from './qemu.js';

let qemuVersion: string | undefined;
const imageHashes = new Map<string, string>();

function fileHash(path: string): string {
  const st = statSync(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  let h = imageHashes.get(key);
  if (!h) imageHashes.set(key, (h = createHash('sha256').update(readFileSync(path)).digest('hex')));
  return h;
}

export interface SnapshotShape {
  release: string;
  vmlinuz: string;
  /** content-addressed already (its name carries the hash) */
  initramfs: string;
  /** qemu's arguments with this run's own paths left out */
  args: string[];
}

/**
 * What a saved guest holds beyond its shape; a change here makes earlier saved guests stale.
 * 2: saved once the guest's clock is past 10.5 s of uptime (OVS 3.1.0 counts no CPU before).
 */
const SAVED_GUEST_FORMAT = 2;

/** Where the saved guest of this shape is (or goes). */
export function snapshotFile(shape: SnapshotShape, cacheDir: string): string {
  qemuVersion ??= execFileSync(QEMU, ['--version'], { encoding: 'utf8' }).split('\n')[0];
  const key = createHash('sha256').update(JSON.stringify([SAVED_GUEST_FORMAT, qemuVersion, fileHash(shape.vmlinuz), shape.initramfs.split('/').pop(), shape.args])).digest('hex').slice(0, 16);
  return join(cacheDir, `guest-${shape.release}-${key}.vmstate`);
}

export function haveSnapshot(file: string): boolean {
  return existsSync(file);
}

/** A saved guest qemu could not load (a truncated write, a changed host): it goes. */
export function discardSnapshot(file: string): void {
  rmSync(file, { force: true });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A migration's end: completed, failed or cancelled (undefined: qemu went away). */
function migrationEnd(qmp: Qmp): Promise<string | undefined> {
  return qmp.next((e) => {
    const status = (e.data as { status?: string } | undefined)?.status;
    return e.event === 'MIGRATION' && status && ['completed', 'failed', 'cancelled'].includes(status) ? status : undefined;
  });
}

/** Load a saved guest into a qemu started with `-incoming defer`, and let it run. */
export async function loadSnapshot(qmp: Qmp, file: string): Promise<{ ms: number }> {
  const t0 = performance.now();
  await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
  const end = migrationEnd(qmp);
  await qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(file)}` });
  const status = await end;
  if (status !== 'completed') throw new Error(`loading the saved guest ${status ?? 'stopped: qemu went away'}`);
  await qmp.execute('cont'); // it was saved stopped
  return { ms: performance.now() - t0 };
}

/**
 * Save the running guest through QMP (stop, migrate to a file, continue) and publish it
 * atomically. Returns the milliseconds it took and the file's size.
 */
export async function saveSnapshot(qmp: Qmp, file: string): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  // guests side by side may save the same kernel's guest at once (the last one published wins)
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'events', state: true }] });
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 2 ** 40 });
    await qmp.execute('stop');
    const end = migrationEnd(qmp);
    await qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(tmp)}` });
    const status = await end;
    if (status !== 'completed') throw new Error(`saving the guest ${status ?? 'stopped: qemu went away'}`);
    renameSync(tmp, file);
    // 'completed' comes before qemu has finished the migration in its main loop (it refuses to
    // continue until then, and says nothing when it is done): ask until it is
    while (((await qmp.execute('query-status')) as { status?: string }).status === 'finish-migrate') await new Promise((r) => setTimeout(r, 5));
    await qmp.execute('cont');
    return { ms: performance.now() - t0, bytes: statSync(file).size };
  } finally {
    rmSync(tmp, { force: true });
  }
}
