// Which runs a gc may clean up after: the scope is the guard that keeps spec files (and users'
// parallel runs) from collecting each other's labs.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { collectable, keptLive, runAlive } from '../harness/lab/owners.js';

/** The pid of a process that has exited and been reaped. */
function deadPid(): number {
  return Number(spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' }).stdout.trim());
}

describe('gc scope', () => {
  const dead = deadPid();

  it('the calling run is alive, an exited one is not', () => {
    expect(runAlive(process.pid)).toBe(true);
    expect(runAlive(dead)).toBe(false);
  });

  it('collects runs that are gone, never the caller, and all with --all', () => {
    expect(collectable(dead, {})).toBe(true);
    expect(collectable(process.pid, {})).toBe(false);
    expect(keptLive(process.pid, {})).toBe(true);
    expect(collectable(process.pid, { all: true })).toBe(true);
  });

  it('with runs, only those: a dead run outside the scope is neither collected nor reported kept', () => {
    expect(collectable(dead, { runs: [dead + 1] })).toBe(false);
    expect(keptLive(dead, { runs: [dead + 1] })).toBe(false);
    expect(collectable(dead, { runs: [dead] })).toBe(true);
    expect(keptLive(process.pid, { runs: [process.pid] })).toBe(true);
  });
});
