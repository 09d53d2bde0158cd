// A real firewalld (Debian's) for one lab host: the host firewall whose reload disturbs the
// engine's rules (CVE-2025-54388, CVE-2025-54410). It runs in the host's namespace on a
// private system bus of its own (a dbus-daemon started there, its socket in the lab's state
// folder), with its configuration in that folder too: iptables backend (the one behind both
// advisories), default zone `trusted` (firewalld itself filters nothing, so a probe's verdict
// is the engine's rules). Nothing machine-wide is touched: not /etc/firewalld, not the
// system bus. A real dockerd started with DBUS_SYSTEM_BUS_ADDRESS=bus() finds it and hears its
// Reloaded signal. Both daemons are stopped by pid with the lab (or the daemon pool's lab).
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from './exec.js';
import { hangGuard } from '../machine/machine.js';
import type { Lab } from './lab.js';
import { BusMonitor, type BusMessage } from './bus-monitor.js';

export const FIREWALLD_MISSING = 'firewalld is not installed (apt-get install -y --no-install-recommends firewalld; ./scripts/setup.sh does)';

/** by full namespace name: a scenario's lab finds the firewalld of a namespace it adopted */
const running = new Map<string, Firewalld>();

export function firewalldInstalled(): boolean {
  return ['/usr/sbin/firewalld', '/usr/bin/dbus-daemon', '/usr/bin/dbus-send', '/usr/bin/dbus-monitor'].every((f) => existsSync(f));
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
    // watching the bus before firewalld starts: its taking of the name cannot be missed
    const bus = await BusMonitor.start(fw.bus, [`type='signal',sender='org.freedesktop.DBus',member='NameOwnerChanged',arg0='${FIREWALLD}'`]);
    const named = bus.next(() => true);
    fw.daemon = spawn('nsenter', [`--net=${fw.nsPath}`, '--', 'firewalld', '--nofork', '--nopid', '--system-config', etc, '--log-file', join(dir, 'firewalld.log')], {
      env: { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: fw.bus },
      stdio: 'ignore',
    });
    try {
      await fw.untilExit(named, 'before it took its name on the bus');
    } finally {
      bus.stop();
    }
    await fw.waitRunning();
    log(`firewalld up in ${((performance.now() - t0) / 1000).toFixed(1)} s (iptables backend, lab bus ${fw.bus})`);
    return fw;
  }

  /**
   * firewalld owns its name before it has loaded its tables; a call to it is answered once it
   * has (its main loop starts then): its state then says RUNNING. No limit: the answer is the
   * event, and firewalld's exit ends the wait with its log.
   */
  private async waitRunning(): Promise<void> {
    const state = await this.untilExit(this.call('org.freedesktop.DBus.Properties.Get', `string:${FIREWALLD}`, 'string:state'), 'before it answered');
    if (!/"RUNNING"/.test(state)) throw new Error(`firewalld is not running: its state is ${state.trim()}; see ${join(this.dir, 'firewalld.log')}`);
  }

  /**
   * A method of firewalld's, through the lab's bus, waiting for its reply however long it
   * takes: firewall-cmd gives up after D-Bus's 25 s while firewalld is still at work (its
   * reload took longer than that beside a build). The reply comes when the work is done.
   */
  private async call(method: string, ...args: string[]): Promise<string> {
    const r = await run('dbus-send', [`--bus=${this.bus}`, '--print-reply', `--reply-timeout=${NO_REPLY_TIMEOUT}`, `--dest=${FIREWALLD}`, '/org/fedoraproject/FirewallD1', method, ...args], { timeoutMs: 0, allowFail: true });
    if (r.exitCode !== 0) throw new Error(`firewalld: ${method} failed (dbus-send exit ${r.exitCode}): ${r.stderr.trim()}; see ${join(this.dir, 'firewalld.log')}`);
    return r.stdout;
  }

  /** `what`, unless firewalld exits first: then an error naming its exit and log. */
  private async untilExit<T>(what: Promise<T>, when: string): Promise<T> {
    const daemon = this.daemon!;
    const exited = daemon.exitCode !== null || daemon.signalCode !== null ? Promise.resolve() : once(daemon, 'exit');
    const r = await Promise.race([what.then((v) => ({ v })), exited.then(() => undefined)]);
    if (r) return r.v;
    what.catch(() => {}); // its failure after the exit says nothing more
    throw new Error(`firewalld exited (${daemon.exitCode ?? daemon.signalCode}) ${when}; see ${join(this.dir, 'firewalld.log')}`);
  }

  /**
   * What `firewall-cmd --reload` does: firewalld flushes and rebuilds its tables (≈11 s here,
   * idle), signals Reloaded, then answers. Waited for without a limit; its figures are logged.
   * `daemonRewrites`: a real dockerd hears the signal and rewrites its rules through firewalld
   * (a passthrough call per rule); the reload is over once it has (see daemonRewrite).
   */
  async reload(log: (line: string) => void = () => {}, opts: { daemonRewrites?: boolean } = {}): Promise<void> {
    log('firewalld reload (it rebuilds its tables: about 11 s here, more under load; waited for until it answers)');
    const t0 = performance.now();
    // watching before the call: the daemon's first calls may come before firewalld's answer
    const bus = opts.daemonRewrites ? await BusMonitor.start(this.bus, [RELOADED, `type='method_call',destination='${FIREWALLD}'`, "type='method_return'", "type='error'"]) : undefined;
    try {
      const rewritten = bus && daemonRewrite(bus);
      await this.untilExit(this.call(`${FIREWALLD}.reload`), 'during its reload');
      log(`firewalld reloaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      if (rewritten) log(await this.untilExit(rewritten, "while the daemon rewrote its rules"));
    } finally {
      bus?.stop();
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

const FIREWALLD = 'org.fedoraproject.FirewallD1';
const RELOADED = `type='signal',interface='${FIREWALLD}',member='Reloaded'`;
/** libdbus's "no timeout" (DBUS_TIMEOUT_INFINITE, INT_MAX milliseconds) */
const NO_REPLY_TIMEOUT = 2 ** 31 - 1;

/**
 * Quiet after the daemon's last call to firewalld was answered. The calls of a rewrite follow
 * each other as fast as firewalld answers (dockerd makes them one after another from its
 * Reloaded handler): this is a window on the bus's events, long against any gap between them.
 */
const REWRITE_QUIET_MS = 3_000;
/** No call at all after the signal: the daemon does not rewrite (the rules are checked as they are). */
const NO_REACTION_MS = 60_000;

/**
 * Until the daemon that heard Reloaded has rewritten its rules: its calls to firewalld after the
 * signal, every one answered, then none for REWRITE_QUIET_MS. Resolves with the figures; a
 * daemon that makes no call, or a call never answered (hang guard), is checked as it is, saying so.
 */
function daemonRewrite(bus: BusMonitor): Promise<string> {
  return new Promise((resolve) => {
    let signalled: number | undefined;
    let calls = 0;
    const open = new Set<string>();
    let timer: NodeJS.Timeout | undefined;
    const guard = hangGuard(undefined, (why) => finish(`warning: the daemon's calls to firewalld after its Reloaded signal did not end (${calls} calls, ${open.size} unanswered): ${why}; checking the rules as they are`));
    const finish = (figures: string) => {
      clearTimeout(timer);
      guard.clear();
      resolve(figures);
    };
    const arm = (ms: number, figures: () => string) => {
      clearTimeout(timer);
      timer = setTimeout(() => finish(figures()), ms);
    };
    bus.on((m: BusMessage) => {
      if (m.type === 'signal' && m.member === 'Reloaded') {
        signalled = performance.now();
        arm(NO_REACTION_MS, () => `warning: the daemon made no call to firewalld in the ${NO_REACTION_MS / 1000} s after its Reloaded signal: checking the rules as they are`);
      } else if (signalled === undefined) {
        return;
      } else if (m.type === 'method call' && m.destination === FIREWALLD) {
        calls++;
        open.add(`${m.sender}/${m.serial}`);
        clearTimeout(timer);
      } else if ((m.type === 'method return' || m.type === 'error') && open.delete(`${m.destination}/${m.replySerial}`) && open.size === 0) {
        const last = ((performance.now() - signalled) / 1000).toFixed(1);
        arm(REWRITE_QUIET_MS, () => `the daemon rewrote its rules: ${calls} calls to firewalld, the last answered ${last} s after the Reloaded signal (then ${REWRITE_QUIET_MS / 1000} s without a call)`);
      }
    });
  });
}

/**
 * Debian's system bus configuration, listening in `dir`, with the policies of system.d
 * (firewalld's). A client has a fixed 5 s to authenticate by default: the lab's bus waits as
 * long as a loaded machine needs.
 */
function busConfig(dir: string): string {
  return readFileSync('/usr/share/dbus-1/system.conf', 'utf8')
    .replace('</busconfig>', '  <limit name="auth_timeout">3600000</limit>\n</busconfig>')
    .replace(/<user>[^<]*<\/user>/, '')
    .replace(/<pidfile>[^<]*<\/pidfile>/, `<pidfile>${join(dir, 'dbus.pid')}</pidfile>`)
    .replace(/<listen>[^<]*<\/listen>/, `<listen>unix:path=${join(dir, 'bus')}</listen>`)
    .replace('<includedir>system.d</includedir>', '<includedir>/usr/share/dbus-1/system.d</includedir>');
}
