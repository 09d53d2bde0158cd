// The lab's firewalld is waited on by what it signals, never by a clock: a reload that outlasts
// D-Bus's fixed 25 s reply timeout (as beside a CPU-heavy build, where `firewall-cmd --reload`
// failed with "Did not receive a reply") still ends in a reloaded firewalld. Made slow on
// purpose by stopping firewalld (SIGSTOP) for 30 s while it reloads; firewall-cmd, the way it
// was done before, fails in the same minute.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Lab } from '../harness/lab/lab.js';
import { Firewalld, firewalldInstalled, FIREWALLD_MISSING } from '../harness/lab/firewalld.js';
import { run } from '../harness/lab/exec.js';
import { BusMonitor, parseHeader } from '../harness/lab/bus-monitor.js';

const isRoot = process.getuid?.() === 0;
const why = !isRoot ? 'needs root' : !firewalldInstalled() ? FIREWALLD_MISSING : '';
const STOPPED_MS = 30_000;

describe('dbus-monitor headers', () => {
  it('reads calls, returns, errors without a serial, and broadcasts', () => {
    const text = readFileSync(join(import.meta.dirname, 'fixtures', 'dbus-monitor.txt'), 'utf8').split('\n');
    const messages = text.map(parseHeader).filter((m) => m !== undefined);
    expect(messages.map((m) => [m.type, m.member ?? '', m.serial ?? 0, m.replySerial ?? 0])).toEqual([
      ['signal', 'Reloaded', 4739, 0],
      ['method return', '', 4740, 2],
      ['method call', 'passthrough', 242, 0],
      ['error', '', 0, 242],
      ['method call', 'passthrough', 243, 0],
      ['method return', '', 4750, 243],
    ]);
    expect(messages[0].destination).toBe('(null)');
    expect(messages[3].destination).toBe(':1.3');
  });
});

describe.skipIf(Boolean(why))(`firewalld in a lab${why ? ` (skipped: ${why})` : ''}`, () => {
  it('a reload that takes longer than D-Bus waits (firewalld stopped 30 s) ends reloaded; firewall-cmd --reload gave up', async () => {
    const lab = Lab.create();
    try {
      await lab.addNamespaces(['host']);
      const fw = await Firewalld.start(lab, 'host');
      const pid = Number((await run('pgrep', ['-f', '--', `--system-config ${join(fw.dir, 'etc')}`])).stdout.trim().split('\n')[0]);
      expect(pid, 'firewalld pid').toBeGreaterThan(0);
      const env = { DBUS_SYSTEM_BUS_ADDRESS: fw.bus };
      // the old way first: firewalld stops once its reload call is on the bus; ours queues behind
      const bus = await BusMonitor.start(fw.bus, ["type='method_call',member='reload'"]);
      const called = bus.next(() => true);
      const old = run('firewall-cmd', ['--reload'], { env, allowFail: true, timeoutMs: 0 });
      await called;
      bus.stop();
      process.kill(pid, 'SIGSTOP');
      const lines: string[] = [];
      const ours = fw.reload((l) => lines.push(l));
      await new Promise((r) => setTimeout(r, STOPPED_MS));
      process.kill(pid, 'SIGCONT');
      const before = await old;
      expect(`${before.exitCode} ${before.stderr}`).toMatch(/^[1-9]\d* .*Did not receive a reply/s);
      await ours;
      const took = Number(/firewalld reloaded in ([\d.]+) s/.exec(lines.join('\n'))?.[1]);
      // longer than the 25 s after which D-Bus gives up on a reply
      expect(took, lines.join('\n')).toBeGreaterThan(25);
      // and it is running, reloaded: its state answers
      const state = await run('dbus-send', [`--bus=${fw.bus}`, '--print-reply', '--dest=org.fedoraproject.FirewallD1', '/org/fedoraproject/FirewallD1', 'org.freedesktop.DBus.Properties.Get', 'string:org.fedoraproject.FirewallD1', 'string:state']);
      expect(state.stdout).toContain('"RUNNING"');
    } finally {
      await lab.destroy();
    }
  });
});
