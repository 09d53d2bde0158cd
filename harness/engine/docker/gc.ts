// What a killed run (SIGKILL: no teardown ran) left of its daemons: dockerd and containerd
// (found by their pidfiles, and checked to be ours by their command lines), the containers
// (every process under the daemon's cgroup parent), the cgroup folders and the state folder.
// The daemon's mounts need nothing: they lived in its private mount namespace, which the
// kernel drops with its last process. Its host namespace (and the shims in it) goes with the
// lab `gc` that runs after this. On the machine the work is on (a guest checks its own).
import { join } from 'node:path';
import { collectable, keptLive, type GcScope } from '../../lab/owners.js';
import { currentMachine, processGone, type Machine } from '../../machine/machine.js';
import { removeCgroup } from './cgroups.js';
import { STATE_NAME_RE, pathsFor, removeIfEmpty, stateBase } from './paths.js';

/** The pid in a pidfile, if that process still runs with our state folder on its command line. */
async function ourPid(m: Machine, pidfile: string, stateDir: string): Promise<number | undefined> {
  try {
    const pid = Number((await m.readFile(pidfile)).trim());
    if (!pid) return undefined;
    const cmd = await m.readFile(`/proc/${pid}/cmdline`);
    return cmd.includes(stateDir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Until the process is gone, or a while (then its caller kills it harder). */
async function waitGone(m: Machine, pid: number, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await processGone(m, pid)) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

export interface DockerGcReport {
  removed: string[];
  keptLive: string[];
}

export async function gcDockerDaemons(opts: GcScope & { base?: string } = {}): Promise<DockerGcReport> {
  const m = currentMachine();
  const base = opts.base ?? stateBase(m);
  const report: DockerGcReport = { removed: [], keptLive: [] };
  const entries = await m.readdir(base).catch(() => undefined);
  if (!entries) return report;
  for (const { name } of entries) {
    const match = STATE_NAME_RE.exec(name);
    if (!match) continue;
    const owner = Number(match[1]);
    // owners are processes of this host (a guest's daemons belong to the run driving it)
    if (!collectable(owner, opts)) {
      if (keptLive(owner, opts)) report.keptLive.push(name);
      continue;
    }
    const p = pathsFor(name, base);
    for (const pidfile of [p.dockerdPidfile, p.containerdPidfile]) {
      const pid = await ourPid(m, pidfile, p.stateDir);
      if (pid === undefined) continue;
      await m.kill(pid, 'SIGKILL');
      await waitGone(m, pid);
    }
    await removeCgroup(p.cgroupParent, m);
    await m.rm(join(base, name));
    report.removed.push(name);
  }
  await removeIfEmpty(base, m);
  return report;
}
