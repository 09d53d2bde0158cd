// A run that is interrupted leaves nothing behind: Ctrl-C and SIGTERM tear the labs down, and
// `gc` clears what a SIGKILLed run left. Runs the built CLI as a user would.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Lab, gc } from '../harness/lab/lab.js';
import { packageRoot } from '../harness/paths.js';
import { labNamespaces } from './support/fingerprint.js';

const isRoot = process.getuid?.() === 0;
const cli = join(packageRoot(), 'dist', 'harness', 'cli.js');

/** Start a full run and resolve once its first lab namespace exists (no time limit of its
 *  own: the run either makes one or exits, and the spec's timeout is the backstop). */
async function runUntilLabExists() {
  const child = spawn(process.execPath, [cli, 'run', join(packageRoot(), 'scenarios'), '--junit', '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let gone = false;
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, sig) => ((gone = true), resolve(code ?? (sig ? -1 : null)))));
  while (!gone) {
    if ((await labNamespaces(child.pid)).length > 0) return { child, exited, output: () => output };
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`the run exited before it made a lab:\n${output}`);
}

describe.skipIf(!isRoot)('lab lifecycle', () => {
  it('a teardown while namespaces are being made waits for them, and the lab makes no more', async () => {
    const lab = Lab.create();
    const making = lab.addNamespaces(['a', 'b', 'c', 'd']);
    await lab.destroy(); // no await on making first: the race a Ctrl-C during a build has
    await making;
    expect(await labNamespaces(process.pid)).not.toEqual(expect.arrayContaining([expect.stringContaining(lab.prefix)]));
    await expect(lab.addNamespaces(['e'])).rejects.toThrow(/torn down/);
  });

  it('a second teardown waits for the first (Ctrl-C while a scenario tears its lab down)', async () => {
    const lab = Lab.create();
    await lab.addNamespaces(['x']);
    const first = lab.destroy();
    await lab.destroy();
    expect(await labNamespaces(process.pid)).not.toContain(lab.ns('x'));
    await first;
  });

  it('namespaces asked for while a batch is being made go out together in the next one', async () => {
    const lab = Lab.create();
    const batches: string[] = [];
    const run = lab.run.bind(lab);
    lab.run = (file, args, opts) => {
      if (file === 'ip' && args[0] === '-batch') batches.push(opts?.input ?? '');
      return run(file, args, opts);
    };
    try {
      await Promise.all(['a', 'b', 'c', 'd'].map((n) => lab.addNamespaces([n])));
      expect(batches.map((b) => b.trim().split('\n').length)).toEqual([1, 3]);
      expect((await labNamespaces(process.pid)).filter((n) => n.startsWith(lab.prefix)).sort()).toEqual(['a', 'b', 'c', 'd'].map((n) => lab.ns(n)));
    } finally {
      await lab.destroy();
    }
  });

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    it(`${signal} tears down the labs of the run and exits ${code}`, async () => {
      const run = await runUntilLabExists();
      run.child.kill(signal);
      expect(await run.exited, run.output()).toBe(code);
      expect(run.output()).toContain(`${signal}: tearing down the labs of this run`);
      expect(await labNamespaces(run.child.pid)).toEqual([]);
    });
  }

  it('gc removes what a SIGKILLed run left, and nothing of live runs', async () => {
    // a live run: this process, with a lab that stays until the end of the case
    const live = Lab.create();
    await live.addNamespaces(['kept']);
    try {
      const killed = await runUntilLabExists();
      killed.child.kill('SIGKILL');
      await killed.exited;
      const left = await labNamespaces(killed.child.pid);
      expect(left.length).toBeGreaterThan(0);
      // scoped to these two runs: other spec files' labs (and their killed runs) are not ours to take
      const report = await gc({ runs: [killed.child.pid!, process.pid] });
      expect(report.removed).toEqual(expect.arrayContaining(left));
      expect(await labNamespaces(killed.child.pid)).toEqual([]);
      expect(report.keptLive).toContain(live.ns('kept'));
      expect(report.removed.filter((n) => n.startsWith(`ncf-${process.pid}-`))).toEqual([]);
      expect(await labNamespaces(process.pid)).toContain(live.ns('kept'));
    } finally {
      await live.destroy();
    }
  });
});
