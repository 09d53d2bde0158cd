// `gc` after a SIGKILLed docker run: the daemon, its containerd, shims, proxies and
// containers, its cgroups, state folder and host namespace are all gone afterwards, and
// nothing of it was ever mounted in the starting mount namespace.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { gc } from '../harness/lab/lab.js';
import { gcDockerDaemons } from '../harness/engine/docker/gc.js';
import { cgroupDirs } from '../harness/engine/docker/cgroups.js';
import { daemonMounts, daemonProcesses, daemonStateDirs } from './support/engines.js';
import { labNamespaces } from './support/fingerprint.js';

const isRoot = process.getuid?.() === 0;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe.skipIf(!isRoot)('gc after a SIGKILLed docker run', () => {
  it('removes the daemon, its containers, cgroups, state folder and namespace', async () => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'support', 'killed-run.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
    const line = await new Promise<string>((resolve, reject) => {
      createInterface({ input: child.stdout! }).once('line', resolve);
      child.once('exit', (code) => reject(new Error(`killed-run exited early (${code})`)));
    });
    const made = JSON.parse(line) as { stateDir: string; hostNs: string; containerPid: number; cgroupParent: string };
    const pid = child.pid!;
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));

    // what a killed run leaves: a live daemon and container, a state folder, a namespace
    expect(daemonProcesses(pid).length).toBeGreaterThan(0);
    expect(alive(made.containerPid)).toBe(true);
    expect(existsSync(made.stateDir)).toBe(true);
    expect(await labNamespaces(pid)).toContain(made.hostNs);
    expect((await cgroupDirs(made.cgroupParent)).length).toBeGreaterThan(0);

    // scoped to the killed run: other spec files' killed runs are theirs to collect
    const d = await gcDockerDaemons({ runs: [pid] });
    expect(d.removed).toContain(made.stateDir.split('/').at(-1));
    const l = await gc({ runs: [pid] });
    expect(l.removed).toContain(made.hostNs);

    expect(daemonProcesses(pid)).toEqual([]);
    expect(alive(made.containerPid)).toBe(false);
    expect(existsSync(made.stateDir)).toBe(false);
    expect(daemonStateDirs(pid)).toEqual([]);
    expect(await labNamespaces(pid)).toEqual([]);
    expect(await cgroupDirs(made.cgroupParent)).toEqual([]);
    expect(daemonMounts()).toEqual([]);
  });
});
