// What a killed run (SIGKILL: no teardown ran) left of its daemons: dockerd and containerd
// (found by their pidfiles, and checked to be ours by their command lines), the containers
// (every process under the daemon's cgroup parent), the cgroup folders and the state folder.
// The daemon's mounts need nothing: they lived in its private mount namespace, which the
// kernel drops with its last process. Its host namespace (and the shims in it) goes with the
// lab `gc` that runs after this.
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { alive } from '../../lab/lab.js';
import { removeCgroup } from './cgroups.js';
import { STATE_NAME_RE, pathsFor, removeIfEmpty, stateBase } from './paths.js';

/** The pid in a pidfile, if that process still runs with our state folder on its command line. */
function ourPid(pidfile: string, stateDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidfile, 'utf8').trim());
    if (!pid) return undefined;
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmd.includes(stateDir) ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function waitGone(pid: number, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (alive(pid) && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
}

export interface DockerGcReport {
  removed: string[];
  keptLive: string[];
}

export async function gcDockerDaemons(opts: { all?: boolean; base?: string } = {}): Promise<DockerGcReport> {
  const base = opts.base ?? stateBase();
  const report: DockerGcReport = { removed: [], keptLive: [] };
  if (!existsSync(base)) return report;
  for (const name of readdirSync(base)) {
    const m = STATE_NAME_RE.exec(name);
    if (!m) continue;
    const owner = Number(m[1]);
    if (!opts.all && owner !== process.pid && alive(owner)) {
      report.keptLive.push(name);
      continue;
    }
    const p = pathsFor(name, base);
    for (const pidfile of [p.dockerdPidfile, p.containerdPidfile]) {
      const pid = ourPid(pidfile, p.stateDir);
      if (pid === undefined) continue;
      process.kill(pid, 'SIGKILL');
      await waitGone(pid);
    }
    await removeCgroup(p.cgroupParent);
    rmSync(join(base, name), { recursive: true, force: true });
    report.removed.push(name);
  }
  removeIfEmpty(base);
  return report;
}
