// The engine matrix at the edge: which dockerd build a docker target runs and which profile
// that build is (its version decides), and the bad input that stops a run with exit 2 before
// any lab: not a dockerd, a build missing a companion, an unknown release, a target whose
// profile is not the build's. Builds here are fakes (shell scripts that answer --version) in a
// fake engine cache, so the rules are proven without a daemon; the CLI cases run the real CLI.
import { describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { buildFor, cachedReleases, profileOfVersion, resolveDockerTargets, versionNumber } from '../harness/engine/docker/builds.js';
import { parseTarget } from '../harness/targets.js';
import { provenance } from '../harness/engine/docker/provenance.js';

const COMPANIONS = ['containerd', 'containerd-shim-runc-v2', 'runc', 'docker-proxy', 'docker-init'];

/** A fake build folder: dockerd answering `Docker version V`, and its companions (all, or those given). */
function fakeBuild(dir: string, version: string, companions = COMPANIONS): string {
  mkdirSync(dir, { recursive: true });
  const script = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  script('dockerd', `echo "Docker version ${version}, build fake"`);
  for (const c of companions) script(c, 'exit 0');
  return join(dir, 'dockerd');
}

/** An engine cache with 26.1.5 and 28.5.2, and an environment without any dockerd on PATH. */
function fakeMachine() {
  const cache = mkdtempSync(join(tmpdir(), 'netconform-engines-'));
  fakeBuild(join(cache, '26'), '26.1.5+dfsg1');
  fakeBuild(join(cache, '28'), '28.5.2+dfsg4');
  const system = mkdtempSync(join(tmpdir(), 'netconform-system-'));
  const env = { PATH: '/nonexistent', NETCONFORM_ENGINE_CACHE: cache };
  return { cache, system, env };
}

describe('a dockerd version picks its profile', () => {
  it('reads the number from --version and maps whole major lines', () => {
    expect(versionNumber('Docker version 28.5.2+dfsg4, build 3ef3c07c')).toBe('28.5.2');
    expect(versionNumber('Docker version 20.10.24+dfsg1, build 5d6db84')).toBe('20.10.24');
    expect(profileOfVersion('20.10.24')).toBe('docker-20.10');
    expect(profileOfVersion('26.1.5')).toBe('docker-26');
    expect(profileOfVersion('28.0.1')).toBe('docker-28');
    expect(profileOfVersion('29.1.0')).toBe('docker-29');
    for (const v of ['20.9.1', '24.0.9', '27.5.1', '30.0.0']) expect(profileOfVersion(v)).toBeUndefined();
  });
});

describe('the build of a docker target', () => {
  it('docker:N runs the cached build of that release; docker runs the one on PATH, named by its version', async () => {
    const { cache, system, env } = fakeMachine();
    expect(cachedReleases(env)).toEqual(['docker-26', 'docker-28']);
    const b28 = await buildFor(parseTarget('docker:28'), { env });
    expect([b28.label, b28.profile, b28.install.dockerd]).toEqual(['docker:docker-28', 'docker-28', join(cache, '28', 'dockerd')]);
    fakeBuild(system, '20.10.24+dfsg1');
    const plain = await buildFor(parseTarget('docker'), { env: { ...env, PATH: system } });
    expect([plain.label, plain.profile]).toEqual(['docker', 'docker-20.10']);
    // --dockerd: the version picks the profile of plain `docker`
    const given = await buildFor(parseTarget('docker'), { env, dockerd: join(cache, '26', 'dockerd') });
    expect([given.label, given.profile]).toEqual(['docker:docker-26', 'docker-26']);
  });

  it('a build without a profile of its own runs only under a profile the target names', async () => {
    const { env } = fakeMachine();
    const dir = mkdtempSync(join(tmpdir(), 'netconform-24-'));
    const d24 = fakeBuild(dir, '24.0.9');
    await expect(buildFor(parseTarget('docker'), { env, dockerd: d24 })).rejects.toThrow(/is Docker 24\.0\.9, which has no profile of its own .*: name the one to hold it to, e\.g\. --engine docker:20\.10$/);
    expect((await buildFor(parseTarget('docker:20.10'), { env, dockerd: d24 })).label).toBe('docker');
  });

  it('docker:all is every build present, each with its own profile (29 with both firewall backends)', async () => {
    const { system, env, cache } = fakeMachine();
    fakeBuild(system, '20.10.24+dfsg1');
    const { labels, builds } = await resolveDockerTargets([{ engine: 'docker', label: 'docker:all' }, parseTarget('reference:docker-28')], { env: { ...env, PATH: system } });
    expect(labels).toEqual(['docker', 'docker:docker-26', 'docker:docker-28', 'reference:docker-28']);
    expect(builds.map((b) => b.profile)).toEqual(['docker-20.10', 'docker-26', 'docker-28']);
    fakeBuild(join(cache, '29'), '29.7.2');
    const with29 = await resolveDockerTargets([{ engine: 'docker', label: 'docker:all' }], { env: { ...env, PATH: system } });
    expect(with29.labels).toEqual(['docker', 'docker:docker-26', 'docker:docker-28', 'docker:docker-29', 'docker:docker-29-nftables']);
    expect(with29.builds.filter((b) => b.profile.startsWith('docker-29')).map((b) => b.install.dockerd)).toEqual([join(cache, '29', 'dockerd'), join(cache, '29', 'dockerd')]);
  });
});

describe('bad input stops before any lab, in one sentence', () => {
  it('names the profile to use when the build is another release', async () => {
    const { cache, env } = fakeMachine();
    await expect(buildFor(parseTarget('docker:28'), { env, dockerd: join(cache, '26', 'dockerd') })).rejects.toThrow(
      `--dockerd ${join(cache, '26', 'dockerd')} is Docker 26.1.5, not 28: name --engine docker:26 (profile docker-26) for it, or give a 28 build`,
    );
  });

  it('says how to fetch a release that is not cached, and what to give for one that has no build', async () => {
    const env = { PATH: '/nonexistent', NETCONFORM_ENGINE_CACHE: mkdtempSync(join(tmpdir(), 'netconform-empty-')) };
    await expect(buildFor(parseTarget('docker:28'), { env })).rejects.toThrow(/^no Docker 28 build in .*: run \.\/scripts\/get-engines\.sh \(\.\/scripts\/setup\.sh does, unless NETCONFORM_ENGINES=none\), or give one with --dockerd PATH$/);
    await expect(buildFor(parseTarget('docker:29'), { env })).rejects.toThrow(/no Docker 29 build in .*: run NETCONFORM_SOURCES=DIR \.\/scripts\/get-engines\.sh 29:source .*, or give one with --dockerd PATH$/);
  });

  it('refuses a build that lacks a companion, naming it', async () => {
    const { env } = fakeMachine();
    const dir = mkdtempSync(join(tmpdir(), 'netconform-partial-'));
    const d = fakeBuild(dir, '28.5.2', ['containerd', 'runc', 'docker-proxy']);
    await expect(buildFor(parseTarget('docker:28'), { env, dockerd: d })).rejects.toThrow(`${d} lacks containerd-shim-runc-v2 beside it: put it in ${dir}`);
  });
});

const cli = join(import.meta.dirname, '..', 'dist', 'harness', 'cli.js');
const isRoot = process.getuid?.() === 0;

describe.skipIf(!isRoot || !existsSync(cli))('the CLI exits 2 before any lab', () => {
  const run = async (args: string[], env: Record<string, string> = {}) => {
    try {
      const r = await promisify(execFile)('node', [cli, 'run', 'scenarios/egress/masquerade.yaml', '--junit', join(tmpdir(), 'netconform-bad.xml'), ...args], { env: { ...process.env, ...env } });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  };

  it.each([
    [['--engine', 'docker:27'], /^netconform: unknown release "27" \(known: 20\.10, 26, 28, 29, all; e\.g\. docker:28\)$/],
    [['--engine', 'docker', '--dockerd', '/bin/true'], /^netconform: \/bin\/true is not a dockerd \(`--version` said: .*\); give the path of a dockerd binary$/],
    [['--engine', 'reference', '--dockerd', '/bin/true'], /^netconform: --dockerd \/bin\/true needs a docker target: add --engine docker \(or reference,docker to compare it\)$/],
  ])('%j', async (args, message) => {
    const r = await run(args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr.trim().replace(/\x1b\[[0-9;]*m/g, '')).toMatch(message);
    expect(r.stdout).not.toMatch(/scenarios on/); // no lab was built
  });

  it('a profile/version mismatch and a missing companion, with a fake build', async () => {
    const { cache } = fakeMachine();
    const partial = fakeBuild(mkdtempSync(join(tmpdir(), 'netconform-partial-')), '28.5.2', ['containerd']);
    for (const [args, message] of [
      [['--engine', 'docker:28', '--dockerd', join(cache, '26', 'dockerd')], /is Docker 26\.1\.5, not 28: name --engine docker:26 \(profile docker-26\) for it, or give a 28 build$/],
      [['--engine', 'docker', '--dockerd', partial], /lacks containerd-shim-runc-v2, runc, docker-proxy beside it: put them in /],
    ] as const) {
      const r = await run([...args], { NETCONFORM_ENGINE_CACHE: cache });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr.trim().replace(/\x1b\[[0-9;]*m/g, '')).toMatch(message);
    }
  });
});

describe("a build's provenance (its MANIFEST, as doctor --dockerd shows it)", () => {
  it('names the Debian package or the upstream tag each part came from', () => {
    // as scripts/get-engines.sh and scripts/build-engine.sh write them
    const debian = provenance('Package: containerd Version: 1.7.24~ds1-6+deb13u1\nPackage: docker.io Version: 28.5.2+dfsg4-5\nPackage: runc Version: 1.1.5+ds1-1+deb12u1\nPackage: tini Version: 0.19.0-1+b3\nDocker version 28.5.2+dfsg4, build 3ef3c07\n');
    expect(Object.fromEntries(debian)).toEqual({
      dockerd: 'Debian package docker.io 28.5.2+dfsg4-5',
      'docker-proxy': 'Debian package docker.io 28.5.2+dfsg4-5',
      containerd: 'Debian package containerd 1.7.24~ds1-6+deb13u1',
      'containerd-shim-runc-v2': 'Debian package containerd 1.7.24~ds1-6+deb13u1',
      runc: 'Debian package runc 1.1.5+ds1-1+deb12u1',
      'docker-init': 'Debian package tini 0.19.0-1+b3',
    });
    const built = provenance(`source moby docker-v29.7.2 6a43e3d5afddf4111da0f864bbc7cae5d7e95001 sha256:${'23f24306'.repeat(8)}\nsource runc v1.3.6 491b69bab9fa206b984fb26ba07d3110d62e671f sha256:${'d042f52c'.repeat(8)}\nbuilt with go version go1.26.10 linux/amd64\nPackage: containerd Version: 1.7.24~ds1-6+deb13u1\n`);
    expect(built.get('dockerd')).toBe('source moby docker-v29.7.2 (commit 6a43e3d5af, sha256 23f2430623f2…)');
    expect(built.get('runc')).toMatch(/^source runc v1\.3\.6 \(commit 491b69bab9/);
    expect(built.get('containerd')).toBe('Debian package containerd 1.7.24~ds1-6+deb13u1');
    expect(built.has('docker-init')).toBe(false);
  });
});
