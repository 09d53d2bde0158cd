// The containers of one daemon live under their own cgroup parent (--cgroup-parent), in every
// mounted hierarchy (cgroup v1 controllers, a v2 unified tree, or both). Ending a daemon's
// containers without the daemon (after a crash, or a killed run) is: kill every process
// listed under that parent, then remove the emptied cgroup folders, deepest first.
import { existsSync, readFileSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** Mount points of cgroup hierarchies, from /proc/self/mountinfo. */
export function cgroupMounts(): string[] {
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(pre.split(' ')[4]);
  }
  return out;
}

/** Folders of the subtree, deepest first. */
function subtree(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) out.push(...subtree(join(dir, e.name)));
  }
  out.push(dir);
  return out;
}

export function cgroupDirs(parent: string): string[] {
  return cgroupMounts()
    .map((m) => join(m, parent))
    .filter((d) => existsSync(d) && statSync(d).isDirectory())
    .flatMap(subtree);
}

/** Processes in the parent's subtree, in any hierarchy. */
export function cgroupPids(parent: string): number[] {
  const pids = new Set<number>();
  for (const d of cgroupDirs(parent)) {
    try {
      for (const p of readFileSync(join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) pids.add(Number(p));
    } catch {
      /* removed meanwhile */
    }
  }
  return [...pids];
}

/** Kill what runs under the parent (these are our containers' processes), then remove it. */
export async function removeCgroup(parent: string): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = cgroupPids(parent);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await new Promise((r) => setTimeout(r, 20)); // the kernel reaps them asynchronously
  }
  for (const d of cgroupDirs(parent)) {
    try {
      rmdirSync(d);
    } catch {
      /* still busy or already gone; a later gc retries */
    }
  }
}
