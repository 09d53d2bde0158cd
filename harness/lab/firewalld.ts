// A real firewalld (Debian's) for one lab host: the host firewall whose reload disturbs the
// engine's rules (CVE-2025-54388, CVE-2025-54410). It runs in the host's namespace on a
// private system bus of its own (a dbus-daemon started there, its socket in the lab's state
// folder), with its configuration in that folder too: iptables backend (the one behind both
// advisories), default zone `trusted` (firewalld itself filters nothing, so a probe's verdict
// is the engine's rules). Nothing machine-wide is touched: not /etc/firewalld, not the
// system bus. A real dockerd started with DBUS_SYSTEM_BUS_ADDRESS=bus() finds it and hears its
// Reloaded signal. Both daemons are stopped by pid with the lab (or the daemon pool's lab).
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';
import type { Lab } from './lab.js';

export const FIREWALLD_MISSING = 'firewalld is not installed (apt-get install -y --no-install-recommends firewalld; ./scripts/setup.sh does)';

/** by full namespace name: a scenario's lab finds the firewalld of a namespace it adopted */
const running = new Map<string, Firewalld>();

export function firewalldInstalled(): boolean {
  return existsSync('/usr/sbin/firewalld') && existsSync('/usr/bin/firewall-cmd') && existsSync('/usr/bin/dbus-daemon');
}

/** The firewalld of a lab host, when one runs there. */
export function firewalldOf(lab: Lab, ns: string): Firewalld | undefined {
  return running.get(lab.ns(ns));
}

export class Firewalld {
  private dbus?: number;
  private daemon?: ChildProcess;

  private constructor(
    readonly dir: string,
    private readonly nsPath: string,
    private readonly fullNs: string,
  ) {}

  /** The bus address a client (firewall-cmd, dockerd) uses. */
  get bus(): string {
    return `unix:path=${join(this.dir, 'bus')}`;
  }

  /** Start the bus and firewalld in lab namespace `ns`, and wait until firewalld says running. */
  static async start(lab: Lab, ns: string, log: (line: string) => void = () => {}): Promise<Firewalld> {
    if (!firewalldInstalled()) throw new Error(FIREWALLD_MISSING);
    const dir = join(lab.stateDir(), `firewalld-${ns}`);
    mkdirSync(dir, { recursive: true });
    const fw = new Firewalld(dir, lab.nsPath(ns), lab.ns(ns));
    running.set(fw.fullNs, fw);
    lab.onDestroy(() => fw.stop()); // registered first: a half-started one is stopped too
    const t0 = performance.now();
    writeFileSync(join(dir, 'system.conf'), busConfig(dir));
    const etc = join(dir, 'etc');
    cpSync('/etc/firewalld', etc, { recursive: true });
    const conf = readFileSync(join(etc, 'firewalld.conf'), 'utf8')
      .replace(/^FirewallBackend=.*$/m, 'FirewallBackend=iptables')
      .replace(/^DefaultZone=.*$/m, 'DefaultZone=trusted')
      .replace(/^CleanupOnExit=.*$/m, 'CleanupOnExit=no');
    writeFileSync(join(etc, 'firewalld.conf'), conf);
    await run('nsenter', [`--net=${fw.nsPath}`, '--', 'dbus-daemon', `--config-file=${join(dir, 'system.conf')}`, '--fork']);
    fw.dbus = Number(readFileSync(join(dir, 'dbus.pid'), 'utf8').trim());
    fw.daemon = spawn('nsenter', [`--net=${fw.nsPath}`, '--', 'firewalld', '--nofork', '--nopid', '--system-config', etc, '--log-file', join(dir, 'firewalld.log')], {
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: fw.bus },
      stdio: 'ignore',
    });
    await fw.waitRunning(t0);
    log(`firewalld up in ${((performance.now() - t0) / 1000).toFixed(1)} s (iptables backend, lab bus ${fw.bus})`);
    return fw;
  }

  /**
   * Until `firewall-cmd --state` says running. The limit only catches a firewalld that never
   * comes up (it took ≈1 s here, idle); when it trips, the figures say how long it waited.
   */
  private async waitRunning(t0: number, limitMs = 120_000): Promise<void> {
    for (;;) {
      if (this.daemon?.exitCode !== null && this.daemon?.exitCode !== undefined) throw new Error(`firewalld exited (${this.daemon.exitCode}); see ${join(this.dir, 'firewalld.log')}`);
      const r = await this.cmd(['--state'], true);
      if (r.exitCode === 0 && r.stdout.trim() === 'running') return;
      const waited = performance.now() - t0;
      if (waited > limitMs) throw new Error(`firewalld not running after ${(waited / 1000).toFixed(1)} s (firewall-cmd --state: ${(r.stdout || r.stderr).trim()}); see ${join(this.dir, 'firewalld.log')}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  private cmd(args: string[], allowFail = false) {
    return run('nsenter', [`--net=${this.nsPath}`, '--', 'firewall-cmd', ...args], { allowFail, timeoutMs: 180_000, env: { DBUS_SYSTEM_BUS_ADDRESS: this.bus } });
  }

  /** `firewall-cmd --reload`: flushes and rebuilds its tables (≈11 s here), then signals Reloaded. */
  async reload(log: (line: string) => void = () => {}): Promise<void> {
    log('firewall-cmd --reload (firewalld rebuilds its tables: about 11 s here, more under load)');
    const t0 = performance.now();
    await this.cmd(['--reload']);
    log(`firewalld reloaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  }

  /**
   * Until the host's rule sets stop changing: a real dockerd hears the Reloaded signal on its
   * own and rewrites its rules in the seconds after `firewall-cmd --reload` returned (through
   * firewalld's passthrough, on 20.10), and no event says it is done. Settled means unchanged
   * over `quietMs` (each rewrite is a burst of iptables calls tens of milliseconds apart); the
   * figures are printed, and the wait gives up (saying so) after `limitMs`.
   */
  async settled(log: (line: string) => void = () => {}, quietMs = 3_000, limitMs = 90_000): Promise<void> {
    const t0 = performance.now();
    const dump = async () => (await run('nsenter', [`--net=${this.nsPath}`, '--', 'sh', '-c', 'iptables-save; ip6tables-save'], { allowFail: true })).stdout.replace(/^#.*\n/gm, '');
    let last = await dump();
    let since = performance.now();
    let changes = 0;
    for (;;) {
      await new Promise((r) => setTimeout(r, 250));
      const now = await dump();
      if (now !== last) {
        last = now;
        since = performance.now();
        changes++;
      }
      const waited = performance.now() - t0;
      if (performance.now() - since >= quietMs) {
        log(`the daemon's rules settled ${((since - t0) / 1000).toFixed(1)} s after the reload (${changes} changes seen, then ${quietMs / 1000} s without)`);
        return;
      }
      if (waited > limitMs) {
        log(`warning: the rules still changed ${((performance.now() - since) / 1000).toFixed(1)} s ago after ${(waited / 1000).toFixed(1)} s (${changes} changes): checking them as they are`);
        return;
      }
    }
  }

  async stop(): Promise<void> {
    running.delete(this.fullNs);
    for (const pid of [this.daemon?.pid, this.dbus]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    this.daemon = undefined;
    this.dbus = undefined;
  }
}

/** Debian's system bus configuration, listening in `dir`, with the policies of system.d (firewalld's). */
function busConfig(dir: string): string {
  return readFileSync('/usr/share/dbus-1/system.conf', 'utf8')
    .replace(/<user>[^<]*<\/user>/, '')
    .replace(/<pidfile>[^<]*<\/pidfile>/, `<pidfile>${join(dir, 'dbus.pid')}</pidfile>`)
    .replace(/<listen>[^<]*<\/listen>/, `<listen>unix:path=${join(dir, 'bus')}</listen>`)
    .replace('<includedir>system.d</includedir>', '<includedir>/usr/share/dbus-1/system.d</includedir>');
}
