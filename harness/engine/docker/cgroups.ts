// The containers of one daemon live under their own cgroup parent (--cgroup-parent), in every
// mounted hierarchy (cgroup v1 controllers, a v2 unified tree, or both). Ending a daemon's
// containers without the daemon (after a crash, or a killed run) is: kill every process
// listed under that parent, then remove the emptied cgroup folders, deepest first. All of it
// on the machine the daemon runs on.
import { join } from 'node:path';
import { currentMachine, type Machine } from '../../machine/machine.js';

/** Mount points of cgroup hierarchies, from /proc/self/mountinfo. */
export async function cgroupMounts(m: Machine = currentMachine()): Promise<string[]> {
  const out: string[] = [];
  for (const line of (await m.readFile('/proc/self/mountinfo')).split('\n')) {
    const [pre, post] = line.split(' - ');
    if (!post) continue;
    const fstype = post.split(' ')[0];
    if (fstype === 'cgroup' || fstype === 'cgroup2') out.push(pre.split(' ')[4]);
  }
  return out;
}

/** Folders of the subtree, deepest first (none when it is not there). */
async function subtree(m: Machine, dir: string): Promise<string[]> {
  const entries = await m.readdir(dir).catch(() => undefined);
  if (!entries) return [];
  const out: string[] = [];
  for (const e of entries) if (e.dir) out.push(...(await subtree(m, join(dir, e.name))));
  out.push(dir);
  return out;
}

export async function cgroupDirs(parent: string, m: Machine = currentMachine()): Promise<string[]> {
  const trees = await Promise.all((await cgroupMounts(m)).map((mount) => subtree(m, join(mount, parent))));
  return trees.flat();
}

/** Processes in the parent's subtree, in any hierarchy. */
export async function cgroupPids(parent: string, m: Machine = currentMachine()): Promise<number[]> {
  const pids = new Set<number>();
  for (const d of await cgroupDirs(parent, m)) {
    const procs = await m.readFile(join(d, 'cgroup.procs')).catch(() => ''); // removed meanwhile
    for (const p of procs.split('\n').filter(Boolean)) pids.add(Number(p));
  }
  return [...pids];
}

/** Kill what runs under the parent (these are our containers' processes), then remove it. */
export async function removeCgroup(parent: string, m: Machine = currentMachine()): Promise<void> {
  for (let round = 0; round < 50; round++) {
    const pids = await cgroupPids(parent, m);
    if (pids.length === 0) break;
    await Promise.all(pids.map((pid) => m.kill(pid, 'SIGKILL')));
    await new Promise((r) => setTimeout(r, 20)); // the kernel reaps them asynchronously
  }
  // still busy or already gone: a later gc retries
  for (const d of await cgroupDirs(parent, m)) await m.rmdir(d);
}
