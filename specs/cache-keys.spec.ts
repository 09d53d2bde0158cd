// CI's caches are keyed by what pins them (scripts/cache-key.sh): a pin that moves must give a
// new key, or a job would reuse a build of the old pin. Each pin kind is moved in a copy of the
// scripts (an upstream source's sha256, the saved-guest format, a fetching script) and the key
// must change; the keys also cover every package the build scripts download. And every job of
// the workflow that runs setup.sh restores the caches first.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { parse } from 'yaml';

const ROOT = join(import.meta.dirname, '..');
const isRoot = process.getuid?.() === 0;

/** A copy of what cache-key.sh reads, so that a pin can be moved without touching the tree. */
function copyTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ncf-cache-key-'));
  cpSync(join(ROOT, 'scripts'), join(dir, 'scripts'), { recursive: true });
  mkdirSync(join(dir, 'harness', 'vm'), { recursive: true });
  cpSync(join(ROOT, 'harness', 'vm', 'snapshot.ts'), join(dir, 'harness', 'vm', 'snapshot.ts'));
  return dir;
}

const key = (dir: string, kind: string) => execFileSync(join(dir, 'scripts', 'cache-key.sh'), [kind], { encoding: 'utf8' }).trim();
const pins = (kind: string) => execFileSync(join(ROOT, 'scripts', 'cache-key.sh'), ['--pins', kind], { encoding: 'utf8' });
const edit = (file: string, from: RegExp, to: string) => {
  const text = readFileSync(file, 'utf8');
  expect(text, `${file} holds ${from}`).toMatch(from);
  writeFileSync(file, text.replace(from, to));
};

describe('workflow caches', () => {
  it('every job that runs setup.sh restores the caches before it', () => {
    const wf = parse(readFileSync(join(ROOT, '.github', 'workflows', 'conformance.yml'), 'utf8')) as { jobs: Record<string, { steps?: { uses?: string; run?: string }[] }> };
    const missing = Object.entries(wf.jobs).flatMap(([name, j]) => {
      const steps = j.steps ?? [];
      const setup = steps.findIndex((s) => s.run?.includes('scripts/setup.sh'));
      const caches = steps.findIndex((s) => s.uses === './.github/actions/caches');
      return setup >= 0 && (caches < 0 || caches > setup) ? [name] : [];
    });
    expect(missing, 'jobs that run setup.sh without restoring the caches first').toEqual([]);
  });
});

// the keys read the candidate versions through a private apt (root: it writes under /var/cache)
describe.skipIf(!isRoot)('cache keys follow their pins', () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = copyTree();
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('the engines key moves with an upstream source sha256 and with the build script', () => {
    const a = fresh();
    const before = key(a, 'engines');
    expect(before).toMatch(/^engines-[0-9a-f]{16}$/);
    expect(key(a, 'engines'), 'the same pins, the same key').toBe(before);
    edit(join(a, 'scripts', 'build-engine.sh'), /moby_sha=[0-9a-f]{64}/, `moby_sha=${'0'.repeat(64)}`);
    expect(key(a, 'engines')).not.toBe(before);
    const b = fresh();
    edit(join(b, 'scripts', 'get-engines.sh'), /^set -euo pipefail$/m, 'set -euo pipefail\n# a changed way of fetching');
    expect(key(b, 'engines')).not.toBe(before);
  });

  it('the guests key moves with the saved-guest format, the kernels key with the kernel script', () => {
    const a = fresh();
    const guests = key(a, 'guests');
    const kernels = key(a, 'kernels');
    edit(join(a, 'harness', 'vm', 'snapshot.ts'), /^const SAVED_GUEST_FORMAT = (\d+);/m, 'const SAVED_GUEST_FORMAT = 999;');
    expect(key(a, 'guests')).not.toBe(guests);
    expect(key(a, 'kernels')).toBe(kernels);
    edit(join(a, 'scripts', 'get-kernel.sh'), /^set -euo pipefail$/m, 'set -euo pipefail\n# a changed way of fetching');
    expect(key(a, 'kernels')).not.toBe(kernels);
    expect(key(a, 'guests'), 'the guests hold the kernels').not.toBe(guests);
  });

  it('the engines key covers every Debian package the build scripts download', () => {
    const text = pins('engines');
    // the companions get-engines.sh unpacks, and what build-engine.sh downloads
    const companions = [...readFileSync(join(ROOT, 'scripts', 'get-engines.sh'), 'utf8').matchAll(/^ {2}(\w+):([\w.-]+):/gm)].map((m) => `${m[1]} ${m[2]}`);
    const built = [...readFileSync(join(ROOT, 'scripts', 'build-engine.sh'), 'utf8').matchAll(/^fetch_debs (\w+) (.+)$/gm)].flatMap((m) => m[2].split(' ').map((p) => `${m[1]} ${p.replace(/"/g, '').replace('$go_pkg', '1.26')}`));
    expect(companions.length + built.length).toBeGreaterThan(4);
    for (const pkg of [...companions, ...built]) expect(text, `no pin for ${pkg}`).toMatch(new RegExp(`^${pkg.replace(/[.+]/g, '\\$&')} \\S+$`, 'm'));
  });
});
