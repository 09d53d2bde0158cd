// The guest kernel: a stock distribution kernel unpacked by scripts/get-kernel.sh (a folder
// with boot/vmlinuz-<release> and lib/modules/<release>), or a vmlinuz file with its modules
// folder. Validated up front so a wrong path is a clear error, not a guest that never boots.
import { closeSync, existsSync, openSync, readSync, readdirSync, realpathSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export interface GuestKernel {
  /** the bzImage qemu boots */
  vmlinuz: string;
  /** kernel release, e.g. "6.1.0-56-amd64" (the name of its modules folder) */
  release: string;
  /** lib/modules/<release> with modules.dep */
  modulesDir: string;
}

export class KernelError extends Error {}

export const GET_KERNEL_HINT = 'get one with scripts/get-kernel.sh and pass --kernel or set NETCONFORM_KERNEL (README, "Kernels the host does not have")';

/** Where scripts/get-kernel.sh unpacks kernels; `current` links the newest. */
export function kernelCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.NETCONFORM_KERNEL_CACHE || '/var/cache/netconform/kernels';
}

/** The release string a bzImage carries in its setup header, or undefined when the file is not one. */
export function bzImageRelease(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(0x400);
    readSync(fd, head, 0, head.length, 0);
    if (head.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
    const at = head.readUInt16LE(0x20e) + 0x200;
    const buf = Buffer.alloc(128);
    readSync(fd, buf, 0, buf.length, at);
    return buf.toString('latin1').split(/[\0 ]/)[0] || undefined;
  } finally {
    closeSync(fd);
  }
}

/** Resolve a kernel folder or vmlinuz path (optionally with its modules folder) and check it. */
export function resolveKernel(path: string, modulesDir?: string): GuestKernel {
  if (!existsSync(path)) throw new KernelError(`kernel ${path} does not exist; ${GET_KERNEL_HINT}`);
  const real = realpathSync(path);
  let vmlinuz: string;
  if (statSync(real).isDirectory()) {
    const boot = join(real, 'boot');
    const images = existsSync(boot) ? readdirSync(boot).filter((n) => n.startsWith('vmlinuz-')) : [];
    if (images.length === 0) throw new KernelError(`kernel folder ${path} has no boot/vmlinuz-*; ${GET_KERNEL_HINT}`);
    if (images.length > 1) throw new KernelError(`kernel folder ${path} has several images (${images.join(', ')}); pass the vmlinuz file itself`);
    vmlinuz = join(boot, images[0]);
  } else {
    vmlinuz = real;
  }
  const headerRelease = bzImageRelease(vmlinuz);
  if (!headerRelease) throw new KernelError(`${vmlinuz} is not a Linux kernel image (no bzImage header); ${GET_KERNEL_HINT}`);
  const named = basename(vmlinuz).startsWith('vmlinuz-') ? basename(vmlinuz).slice('vmlinuz-'.length) : undefined;
  const release = named ?? headerRelease;
  const candidates = modulesDir ? [modulesDir] : [join(dirname(vmlinuz), '..', 'lib', 'modules', release), join('/lib/modules', release)];
  const found = candidates.find((d) => existsSync(join(d, 'modules.dep')));
  if (!found) {
    throw new KernelError(
      `kernel ${release} has no modules: none of ${candidates.join(', ')} holds modules.dep ` +
        `(unpack the whole linux-image package and run depmod -b DIR ${release}, as scripts/get-kernel.sh does)`,
    );
  }
  return { vmlinuz, release, modulesDir: realpathSync(found) };
}

export interface KernelChoice {
  kernel?: GuestKernel;
  /** how it was chosen: "--kernel", "NETCONFORM_KERNEL", "cache <dir>", or why there is none */
  source: string;
  /** a kernel was asked for explicitly but is unusable */
  error?: string;
}

/**
 * The guest kernel for this run: --kernel, else NETCONFORM_KERNEL ("none" turns the runner
 * off), else the one scripts/get-kernel.sh left in its cache. None at all is not an error.
 */
export function chooseKernel(flag: string | undefined, env: NodeJS.ProcessEnv = process.env, modulesDir?: string): KernelChoice {
  const pick = (path: string, source: string): KernelChoice => {
    try {
      return { kernel: resolveKernel(path, modulesDir), source };
    } catch (e) {
      return { source, error: (e as Error).message };
    }
  };
  if (flag) return pick(flag, '--kernel');
  const fromEnv = env.NETCONFORM_KERNEL;
  if (fromEnv === 'none') return { source: 'NETCONFORM_KERNEL=none' };
  if (fromEnv) return pick(fromEnv, 'NETCONFORM_KERNEL');
  const cached = join(kernelCacheDir(env), 'current');
  if (existsSync(cached)) return pick(cached, `cache ${kernelCacheDir(env)}`);
  return { source: 'no kernel configured' };
}
