// The guest's initramfs: busybox-static, the init script and the few modules needed before the
// machine's root is reachable (virtio, 9p, overlay). Built once per kernel and content, then
// reused from the cache (building takes ~100 ms; a cached one costs a hash of its inputs).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cpioArchive, parentDirs, type CpioEntry } from './cpio.js';
import { guestInitScript } from './guest-init.js';
import type { GuestKernel } from './kernel.js';
import { readModuleIndex, resolveModules, type ModuleFile } from './modules.js';

/** Needed to reach the shared root: virtio PCI transport, 9p over virtio, and overlayfs. */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];

const BUSYBOX = '/bin/busybox';

export function initramfsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.NETCONFORM_VM_CACHE || '/var/cache/netconform/initramfs';
}

/** True when the ELF file has no program interpreter, i.e. runs without a dynamic loader. */
export function isStaticElf(data: Buffer): boolean {
  if (data.length < 64 || data.toString('latin1', 0, 4) !== '\x7fELF' || data[4] !== 2) return false;
  const phoff = Number(data.readBigUInt64LE(0x20));
  const phentsize = data.readUInt16LE(0x36);
  const phnum = data.readUInt16LE(0x38);
  for (let i = 0; i < phnum; i++) {
    if (data.readUInt32LE(phoff + i * phentsize) === 3) return false; // PT_INTERP
  }
  return true;
}

/** What goes into the archive, in order: folders, busybox, init, boot module list and files. */
export function initramfsEntries(kernel: GuestKernel, bootModules: ModuleFile[], read: (path: string) => Buffer): CpioEntry[] {
  const busybox = read(BUSYBOX);
  if (!isStaticElf(busybox)) throw new Error(`${BUSYBOX} is not a static binary: the guest needs busybox-static (apt-get install -y busybox-static)`);
  const modDir = `lib/modules/${kernel.release}`;
  const files: CpioEntry[] = [
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: Buffer.from(guestInitScript()), mode: 0o755 },
    { type: 'file', path: 'etc/netconform/boot-modules', data: Buffer.from(bootModules.map((m) => `${m.name} ${m.path}\n`).join('')) },
    ...bootModules.map((m): CpioEntry => ({ type: 'file', path: `${modDir}/${m.path}`, data: read(join(kernel.modulesDir, m.path)) })),
  ];
  const links: CpioEntry[] = [{ type: 'symlink', path: 'sbin/modprobe', target: '/bin/busybox' }];
  const mountPoints = ['dev', 'proc', 'sys', 'host', 'job', 'rw', 'newroot', 'tmp'];
  const dirs = new Set([...mountPoints, ...parentDirs([...files, ...links].map((f) => f.path))]);
  return [...[...dirs].sort().map((path): CpioEntry => ({ type: 'dir', path })), ...files, ...links];
}

/** Build (or reuse) the initramfs for this kernel; returns its path. */
export function buildInitramfs(kernel: GuestKernel, opts: { cacheDir?: string } = {}): string {
  const boot = resolveModules(readModuleIndex(kernel.modulesDir), BOOT_MODULES);
  const entries = initramfsEntries(kernel, boot, (p) => readFileSync(p));
  const hash = createHash('sha256');
  for (const e of entries) {
    hash.update(`${e.type} ${e.path}\0`);
    if (e.type === 'file') hash.update(e.data);
    if (e.type === 'symlink') hash.update(e.target);
  }
  const dir = opts.cacheDir ?? initramfsCacheDir();
  const out = join(dir, `initramfs-${kernel.release}-${hash.digest('hex').slice(0, 16)}.cpio.gz`);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true });
  const tmp = `${out}.${process.pid}.tmp`;
  writeFileSync(tmp, gzipSync(cpioArchive(entries), { level: 6 }));
  renameSync(tmp, out);
  return out;
}
