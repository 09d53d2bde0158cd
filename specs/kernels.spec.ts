// The kernel matrix's names: `--kernel 6.1,6.12,7.2`, `all`, suites and paths resolved against a
// kernel cache laid out as scripts/get-kernel.sh leaves it (a fake one here; the real one below).
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execa } from 'execa';
import { join } from 'node:path';
import { compareReleases, kernelLabel, resolveKernelList, KERNEL_SUITES } from '../harness/vm/kernels.js';
import { kernelCacheDir, resolveKernel } from '../harness/vm/kernel.js';

const temps: string[] = [];
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The smallest file with a bzImage setup header naming `release`. */
function fakeBzImage(release: string): Buffer {
  const b = Buffer.alloc(0x600);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x300, 0x20e);
  b.write(`${release} (debian-kernel@lists.debian.org) #1 SMP`, 0x500, 'latin1');
  return b;
}

/** A cache as get-kernel.sh lays it out: <release>/boot/vmlinuz-<release>, lib/modules, suite links. */
function fakeCache(suites: Record<string, string>): NodeJS.ProcessEnv {
  const cache = mkdtempSync(join(tmpdir(), 'ncf-kcache-'));
  temps.push(cache);
  for (const [suite, release] of Object.entries(suites)) {
    mkdirSync(join(cache, release, 'boot'), { recursive: true });
    writeFileSync(join(cache, release, 'boot', `vmlinuz-${release}`), fakeBzImage(release));
    mkdirSync(join(cache, release, 'lib', 'modules', release), { recursive: true });
    writeFileSync(join(cache, release, 'lib', 'modules', release, 'modules.dep'), '');
    symlinkSync(release, join(cache, suite));
  }
  mkdirSync(join(cache, '.apt')); // get-kernel.sh's private apt state is not a kernel
  return { NETCONFORM_KERNEL_CACHE: cache };
}

const DEBIAN = { bookworm: '6.1.0-57-amd64', trixie: '6.12.118+deb13-amd64', sid: '7.2.13+deb14-amd64' };

describe('kernel names', () => {
  it('labels a release by major.minor and orders releases by number, not text', () => {
    expect(kernelLabel('6.12.118+deb13-amd64')).toBe('6.12');
    expect(kernelLabel('6.1.0-57-amd64')).toBe('6.1');
    expect(['7.2.13', '6.12.118', '6.1.0', '6.2.0'].sort(compareReleases)).toEqual(['6.1.0', '6.2.0', '6.12.118', '7.2.13']);
  });

  it('resolves 6.1,6.12,7.2 to the cached releases in the order given; 6.1 never matches 6.12', () => {
    const env = fakeCache(DEBIAN);
    const ks = resolveKernelList('7.2,6.1,6.12', env);
    expect(ks.map((k) => [k.label, k.kernel.release])).toEqual([
      ['7.2', DEBIAN.sid],
      ['6.1', DEBIAN.bookworm],
      ['6.12', DEBIAN.trixie],
    ]);
  });

  it('all is every cached release, oldest first; suites name their link', () => {
    const env = fakeCache(DEBIAN);
    expect(resolveKernelList('all', env).map((k) => k.label)).toEqual(['6.1', '6.12', '7.2']);
    expect(resolveKernelList('trixie', env)[0].kernel.release).toBe(DEBIAN.trixie);
  });

  it('a kernel named twice runs once', () => {
    const env = fakeCache(DEBIAN);
    expect(resolveKernelList('6.12,trixie', env).map((k) => k.label)).toEqual(['6.12']);
  });

  it('a missing kernel says which are there and how to fetch one', () => {
    const env = fakeCache({ bookworm: DEBIAN.bookworm });
    expect(() => resolveKernelList('6.1,7.2', env)).toThrow(/no kernel 7\.2 in .* \(there: 6\.1\); get one with scripts\/get-kernel\.sh/);
    expect(() => resolveKernelList('sid', env)).toThrow(/no sid kernel .*get-kernel\.sh --suite sid/);
    const empty = mkdtempSync(join(tmpdir(), 'ncf-kcache-'));
    temps.push(empty);
    expect(() => resolveKernelList('all', { NETCONFORM_KERNEL_CACHE: empty })).toThrow(/--kernel all: no kernel/);
  });
});

// The cache setup.sh left on this machine: every suite it fetched resolves to a bootable kernel
// folder with its modules (what the matrix runs). Skipped, with the reason, when setup fetched none.
const realCache = kernelCacheDir(process.env);
const fetched = KERNEL_SUITES.filter((s) => existsSync(join(realCache, s)));
describe.skipIf(fetched.length === 0)(`the kernel cache setup.sh filled (${realCache})`, () => {
  it.each(fetched)('%s links a kernel folder with boot/vmlinuz-<release> and its modules.dep', (suite) => {
    const k = resolveKernel(join(realCache, suite));
    expect(k.vmlinuz).toBe(join(realCache, k.release, 'boot', `vmlinuz-${k.release}`));
    expect(existsSync(join(k.modulesDir, 'modules.dep'))).toBe(true);
  });
});

// Bad kernel names stop the run before any lab or guest, with one sentence saying what to do.
describe('the CLI with kernels that are not there', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv) => execa('node', ['dist/harness/cli.js', ...args], { env: { ...env, NO_COLOR: '1' }, reject: false });

  it('run --kernel 9.9 exits 2 naming the kernels there', async () => {
    const env = fakeCache({ bookworm: DEBIAN.bookworm });
    const r = await cli(['run', '--kernel', '9.9', 'scenarios/egress/masquerade.yaml'], env);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(/no kernel 9\.9 in .* \(there: 6\.1\)/);
  });

  it('diff mixing a kernel and a target, or naming one kernel twice, exits 2', async () => {
    const env = fakeCache({ bookworm: DEBIAN.bookworm });
    const mixed = await cli(['diff', '--from', 'kernel:6.1', '--to', 'reference:docker-29'], env);
    expect(mixed.exitCode).toBe(2);
    expect(mixed.stderr).toContain('compares two kernels or two targets');
    const same = await cli(['diff', '--from', 'kernel:6.1', '--to', 'kernel:bookworm'], env);
    expect(same.exitCode).toBe(2);
    expect(same.stderr).toContain('are the same kernel');
  });
});
