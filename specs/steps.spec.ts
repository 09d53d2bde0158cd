// A phase's administrator steps on a real lab (veth pairs: this kernel has no dummy driver): consecutive `ip`/`bridge` steps on a host go out
// as one process, hosts' runs of them at once, each host's in order; a step naming another
// namespace (netns) runs on its own, in its place, since the next may depend on it.
import { describe, expect, it } from 'vitest';
import { Lab } from '../harness/lab/lab.js';
import { runSteps } from '../harness/run/steps.js';
import type { Scenario, Step } from '../harness/scenario/types.js';

const isRoot = process.getuid?.() === 0;
const loc = { file: 'steps.yaml', line: 1, col: 1 };
const ip = (host: string, args: string): Step => ({ kind: 'ip', host, args, loc });
const bridge = (host: string, args: string): Step => ({ kind: 'bridge', host, args, loc });

/** Run `steps` in a lab of hostA, hostB and the switch; returns what ran and each namespace's links. */
async function inLab(steps: (lab: Lab) => Step[]) {
  const lab = Lab.create();
  const processes: string[] = [];
  const events: string[] = []; // start and end of each process, in the order they happened
  const run = lab.run.bind(lab);
  lab.run = (file, args, opts) => {
    const what = `${file} ${args.join(' ')} ${opts?.input?.trim() ?? ''}`;
    processes.push(`${file} ${args.join(' ')}`);
    events.push(`start ${what}`);
    return run(file, args, opts).finally(() => events.push(`end ${what}`));
  };
  try {
    await lab.addNamespaces(['hostA', 'hostB', 'wan']);
    processes.length = 0;
    events.length = 0;
    const done: Step[] = [];
    const all = steps(lab);
    await runSteps(all, lab, new Map(), new Map(), {} as Scenario, (s) => done.push(s));
    const links = async (ns: string) => (await lab.ipJson(ns, ['link', 'show'])).map((l) => `${l.ifname} ${l.mtu}`).sort();
    return { processes, events, done: done.map((s) => all.indexOf(s)), hostA: await links('hostA'), hostB: await links('hostB'), wan: await links('wan') };
  } finally {
    await lab.destroy();
  }
}

describe.skipIf(!isRoot)('administrator steps', () => {
  it('one process per host and kind for a run of ip/bridge steps, in order within a host', async () => {
    const r = await inLab(() => [
      ip('hostA', 'link add d0 type veth peer name d1'),
      ip('hostB', 'link add e0 type veth peer name e1'),
      ip('hostA', 'link set d0 mtu 1400'), // after the add on its host, whatever hostB does
      ip('lan', 'link add sw0 type bridge'),
      ip('lan', 'link add p0 type veth peer name p1'),
      ip('lan', 'link set p0 master sw0'),
      bridge('lan', 'link set dev p0 hairpin on'),
      ip('hostB', 'link set e0 mtu 1300'),
    ]);
    expect(r.hostA).toContain('d0 1400');
    expect(r.hostB).toContain('e0 1300');
    expect(r.wan).toEqual(expect.arrayContaining(['p0 1500', 'sw0 1500']));
    // hostA: 1 ip; hostB: 1 ip; lan: 1 ip then 1 bridge; and the two link reads of the check
    expect(r.processes.filter((p) => p.startsWith('ip -n') && p.endsWith('-batch -')).length).toBe(3);
    expect(r.processes.filter((p) => p.startsWith('bridge')).length).toBe(1);
    expect(r.done).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    // the three hosts' batches were under way at once
    expect(r.events.slice(0, 3).every((e) => e.startsWith('start ip -n'))).toBe(true);
  });

  it('a step that moves a link to another namespace runs in its place: the next one finds the link', async () => {
    const r = await inLab((lab) => [
      ip('hostA', 'link add m0 type veth peer name m1'),
      ip('hostA', `link set m0 netns ${lab.ns('hostB')}`),
      ip('hostB', 'link set m0 mtu 1280'),
    ]);
    expect(r.hostA).not.toContain('m0 1500');
    expect(r.hostB).toContain('m0 1280');
    // not merely lucky: hostB's step started only once the move had ended
    const moved = r.events.findIndex((e) => e.startsWith('end ') && e.includes('netns'));
    const next = r.events.findIndex((e) => e.startsWith('start ') && e.includes('mtu 1280'));
    expect(moved).toBeGreaterThanOrEqual(0);
    expect(next).toBeGreaterThan(moved);
  });
});
