// The kernel matrix: `--kernel` names one kernel or several ("6.1,6.12,7.2", "all", a Debian
// suite, a folder or vmlinuz file), each resolved against the cache scripts/get-kernel.sh fills.
// A kernel is labelled by its major.minor ("6.12"), the name reports and `kernel:` targets use.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { GET_KERNEL_HINT, KernelError, kernelCacheDir, resolveKernel, type GuestKernel } from './kernel.js';

export interface NamedKernel {
  /** what reports and `kernel:` targets call it: "6.1", "6.12", "7.2" (the whole release when two share one) */
  label: string;
  kernel: GuestKernel;
}

/** The suites scripts/get-kernel.sh links in its cache, oldest first. */
export const KERNEL_SUITES = ['bookworm', 'trixie', 'sid'] as const;

/** "6.12.118+deb13-amd64" → "6.12". */
export function kernelLabel(release: string): string {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? `${m[1]}.${m[2]}` : release;
}

/** Orders releases by their numbers (6.1 < 6.12 < 7.2), not as text. */
export function compareReleases(a: string, b: string): number {
  const nums = (r: string) => (r.match(/\d+/g) ?? []).map(Number);
  const x = nums(a);
  const y = nums(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? -1) - (y[i] ?? -1);
    if (d !== 0) return d;
  }
  return a.localeCompare(b);
}

/** The release folders in the cache (what get-kernel.sh unpacked), oldest first. */
export function cachedReleases(env: NodeJS.ProcessEnv = process.env): string[] {
  const dir = kernelCacheDir(env);
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('.') && /^\d+\.\d+/.test(d.name))
    .map((d) => d.name)
    .sort(compareReleases);
}

/** One name of the list: a version prefix ("6.1" never matches 6.12), a suite, or a path. */
function resolveOne(name: string, env: NodeJS.ProcessEnv): GuestKernel {
  const cache = kernelCacheDir(env);
  if ((KERNEL_SUITES as readonly string[]).includes(name) || name === 'current') {
    const link = join(cache, name);
    if (!existsSync(link)) throw new KernelError(`no ${name} kernel in ${cache}; scripts/get-kernel.sh --suite ${name === 'current' ? 'bookworm' : name} fetches it`);
    return resolveKernel(link);
  }
  if (/^\d+\.\d+(\.\d+)?$/.test(name)) {
    const escaped = name.replace(/\./g, '\\.');
    const matching = cachedReleases(env).filter((r) => new RegExp(`^${escaped}([.+-]|$)`).test(r));
    if (matching.length === 0) {
      const have = cachedReleases(env).map(kernelLabel);
      throw new KernelError(`no kernel ${name} in ${cache} (there: ${have.join(', ') || 'none'}); ${GET_KERNEL_HINT}`);
    }
    return resolveKernel(join(cache, matching[matching.length - 1]));
  }
  return resolveKernel(name);
}

/**
 * Resolves a `--kernel` value to the kernels to run, in the order given ("all": every cached
 * release, oldest first). Throws KernelError, naming what is missing and how to fetch it.
 */
export function resolveKernelList(spec: string, env: NodeJS.ProcessEnv = process.env, modulesDir?: string): NamedKernel[] {
  const names = spec.split(',').map((s) => s.trim()).filter(Boolean);
  if (names.length === 0) throw new KernelError(`--kernel needs a value: 6.1,6.12,7.2, all, a suite (${KERNEL_SUITES.join(', ')}) or a path`);
  let kernels: GuestKernel[];
  if (names.length === 1 && names[0] === 'all') {
    const releases = cachedReleases(env);
    if (releases.length === 0) throw new KernelError(`--kernel all: no kernel in ${kernelCacheDir(env)}; ${GET_KERNEL_HINT}`);
    kernels = releases.map((r) => resolveKernel(join(kernelCacheDir(env), r)));
  } else if (names.length === 1 && modulesDir) {
    kernels = [resolveKernel(names[0], modulesDir)];
  } else {
    kernels = names.map((n) => resolveOne(n, env));
  }
  const seen = new Set<string>();
  const unique = kernels.filter((k) => !seen.has(k.release) && seen.add(k.release));
  const short = unique.map((k) => kernelLabel(k.release));
  return unique.map((kernel, i) => ({
    kernel,
    label: short.filter((s) => s === short[i]).length > 1 ? kernel.release : short[i],
  }));
}

/** Whether a target names a kernel ("kernel:6.12"), and which. */
export function kernelTarget(target: string): string | undefined {
  return target.startsWith('kernel:') ? target.slice('kernel:'.length) : undefined;
}
