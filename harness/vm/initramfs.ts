// The guest's initramfs: busybox-static, the init script, the guest agent (a static binary
// built with the suite's other C programs) and every kernel module the runner loads, so a
// guest comes up to its agent without mounting anything (what lets qemu save it). Built once
// per kernel and content, then reused from the cache (a cached one costs a hash of its inputs).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cpioArchive, parentDirs, type CpioEntry } from './cpio.js';
import { AGENT_BIN, MODULE_LIST, guestInitScript } from './guest-init.js';
import type { GuestKernel } from './kernel.js';
import type { ModuleFile } from './modules.js';
import { guestAgentPath } from '../native.js';

/** Needed to reach the shared root: virtio PCI transport, 9p over virtio, and overlayfs. */
export const BOOT_MODULES = ['virtio_pci', 'virtio_console', '9pnet_virtio', '9p', 'overlay'];

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

/** What goes into the archive, in order: folders, busybox, init, agent, module list and files. */
export function initramfsEntries(kernel: GuestKernel, modules: ModuleFile[], read: (path: string) => Buffer, agent = guestAgentPath()): CpioEntry[] {
  const busybox = read(BUSYBOX);
  if (!isStaticElf(busybox)) throw new Error(`${BUSYBOX} is not a static binary: the guest needs busybox-static (apt-get install -y busybox-static)`);
  const agentBin = read(agent);
  if (!isStaticElf(agentBin)) throw new Error(`${agent} is not a static binary: build it with npm run build (it needs libc6-dev's static libc)`);
  const modDir = `lib/modules/${kernel.release}`;
  const files: CpioEntry[] = [
    { type: 'file', path: 'bin/busybox', data: busybox, mode: 0o755 },
    { type: 'file', path: 'init', data: Buffer.from(guestInitScript()), mode: 0o755 },
    { type: 'file', path: AGENT_BIN, data: agentBin, mode: 0o755 },
    { type: 'file', path: MODULE_LIST, data: Buffer.from(modules.map((m) => `${m.optional ? '-' : ''}${m.name} ${m.path}\n`).join('')) },
    ...modules.map((m): CpioEntry => ({ type: 'file', path: `${modDir}/${m.path}`, data: read(join(kernel.modulesDir, m.path)) })),
  ];
  const links: CpioEntry[] = [{ type: 'symlink', path: 'sbin/modprobe', target: '/bin/busybox' }];
  const mountPoints = ['dev', 'proc', 'sys', 'host', 'job', 'rw', 'newroot', 'tmp'];
  const dirs = new Set([...mountPoints, ...parentDirs([...files, ...links].map((f) => f.path))]);
  return [...[...dirs].sort().map((path): CpioEntry => ({ type: 'dir', path })), ...files, ...links];
}

/** Build (or reuse) the initramfs for this kernel and these modules; returns its path. */
export function buildInitramfs(kernel: GuestKernel, modules: ModuleFile[], opts: { cacheDir?: string; agent?: string } = {}): string {
  const entries = initramfsEntries(kernel, modules, (p) => readFileSync(p), opts.agent);
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
