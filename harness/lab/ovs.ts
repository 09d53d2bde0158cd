// Open vSwitch for a lab: its own ovsdb-server and ovs-vswitchd, started inside the lab's
// switch namespace (wan) with their database, sockets, logs and pidfiles in a private folder
// of the lab's machine. Nothing touches a machine-wide OVS (/var/run/openvswitch, /etc/openvswitch): the
// datapath the kernel module gives is per network namespace, and so is this switch.
// The harness stops both daemons by pid at teardown (also after a failed build); the lab's
// own teardown kills whatever is left in its namespaces, and `gc` does so for a killed run.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runOn, type RunOptions } from './exec.js';
import type { Lab } from './lab.js';
import { processGone, type Machine } from '../machine/machine.js';
import { localMachine } from '../machine/local.js';

/** The OVS programs a lab needs; Debian's openvswitch-switch (and -common) ships them. */
export const OVS_TOOLS = ['ovsdb-tool', 'ovsdb-server', 'ovs-vswitchd', 'ovs-vsctl'];
export const OVS_MISSING = 'Open vSwitch userspace (openvswitch-switch) is not installed';

const DAEMONS = ['ovsdb-server', 'ovs-vswitchd'] as const;
const switches = new WeakMap<Lab, OvsSwitch>();

export class OvsSwitch {
  private readonly pids = new Map<string, number>();

  private constructor(
    readonly dir: string,
    private readonly nsPath: string,
    private readonly machine: Machine,
  ) {}

  /** The switch of a lab, once its topology started one. */
  static of(lab: Lab): OvsSwitch | undefined {
    return switches.get(lab);
  }

  /** Start the two daemons in the lab namespace `ns`; they are stopped with the lab. */
  static async start(lab: Lab, ns: string): Promise<OvsSwitch> {
    const dir = join(await lab.localDir(), 'ovs'); // its sockets must be the machine's own
    await lab.machine.mkdir(dir);
    const sw = new OvsSwitch(dir, lab.nsPath(ns), lab.machine);
    switches.set(lab, sw);
    lab.onDestroy(() => sw.stop()); // registered first: a half-started switch is stopped too
    await createDatabase(sw.machine, join(dir, 'conf.db'));
    await sw.daemon('ovsdb-server', [join(dir, 'conf.db'), `--remote=punix:${sw.socket}`]);
    await sw.vsctl(['--no-wait', 'init']);
    await untilCpuCountRead(lab.machine);
    await sw.daemon('ovs-vswitchd', [`unix:${sw.socket}`]);
    return sw;
  }

  get socket(): string {
    return join(this.dir, 'db.sock');
  }

  /** `ovs-vsctl ARGS` against this switch's database; it waits until ovs-vswitchd applied the change. */
  async vsctl(args: string[]): Promise<string> {
    // no --timeout: it waits for ovs-vswitchd as long as it takes (the command's hang guard stays)
    return (await runOn(this.machine, 'ovs-vsctl', [`--db=unix:${this.socket}`, ...args], this.opts())).stdout;
  }

  /**
   * --detach returns once the daemon is ready (its pidfile written); it runs in the lab
   * namespace, so its datapath and ports are the lab's.
   */
  private async daemon(name: (typeof DAEMONS)[number], args: string[]): Promise<void> {
    const pidfile = join(this.dir, `${name}.pid`);
    await runOn(this.machine, name, [...args, `--pidfile=${pidfile}`, `--unixctl=${join(this.dir, `${name}.ctl`)}`, `--log-file=${join(this.dir, `${name}.log`)}`, '--detach', '--no-chdir'], {
      ...this.opts(),
      netns: this.nsPath,
    }).catch(async (e) => {
      throw new Error(`${name} did not start: ${(e as Error).message}${await this.logTail(name)}`);
    });
    this.pids.set(name, Number((await this.machine.readFile(pidfile)).trim()));
  }

  /** OVS_* folders point every default path (sockets, db, logs) into the lab's folder. */
  private opts(): RunOptions {
    return { env: { OVS_RUNDIR: this.dir, OVS_DBDIR: this.dir, OVS_LOGDIR: this.dir, OVS_SYSCONFDIR: this.dir } };
  }

  private async logTail(name: string): Promise<string> {
    const log = await this.machine.readFile(join(this.dir, `${name}.log`)).catch(() => '');
    return log ? `\n${log.trim().split('\n').slice(-5).join('\n')}` : '';
  }

  /** Stop the daemons by pid, vswitchd first (it holds the database open), and wait for them. */
  async stop(): Promise<void> {
    for (const name of [...DAEMONS].reverse()) {
      const pid = this.pids.get(name);
      if (pid === undefined) continue;
      this.pids.delete(name);
      await killAndWait(this.machine, pid);
    }
  }

  /** The pids of the running daemons (for tests). */
  running(): number[] {
    return [...this.pids.values()];
  }
}

/**
 * Open vSwitch 3.1.0 (Debian 12's) reads the number of CPUs only once the system has been up
 * for 10 s (fixed upstream in 3.1.1); before that it counts none, starts no upcall handler in
 * the kernel's per-CPU dispatch mode, and its bridges forward nothing. A host has been up for
 * longer; a freshly booted guest may not: wait for the guest's clock (saved guests are saved
 * past this point, so a restored one never waits).
 */
export const OVS_CPU_COUNT_UPTIME_S = 10.5;

export async function untilCpuCountRead(m: Machine): Promise<void> {
  for (;;) {
    const uptime = Number((await m.readFile('/proc/uptime')).split(' ')[0]);
    if (!(uptime < OVS_CPU_COUNT_UPTIME_S)) return;
    await new Promise((r) => setTimeout(r, (OVS_CPU_COUNT_UPTIME_S - uptime) * 1000));
  }
}

let emptyDatabase: Promise<string> | undefined;

/**
 * An empty OVS database. A guest runs this host's binaries (its root is this host's), so the
 * file made here once is the one `ovsdb-tool create` would make there, at a process start less
 * (half a second emulated).
 */
async function createDatabase(m: Machine, path: string): Promise<void> {
  if (m.local) {
    await run('ovsdb-tool', ['create', path]);
    return;
  }
  emptyDatabase ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncf-ovsdb-'));
    try {
      // on this host (run() would run it on the machine of the work, the guest)
      await runOn(localMachine, 'ovsdb-tool', ['create', join(dir, 'conf.db')]);
      return readFileSync(join(dir, 'conf.db'), 'utf8');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  await m.writeFile(path, await emptyDatabase);
}

/** SIGTERM, and SIGKILL when it is still there after a grace period (not a verdict). */
async function killAndWait(m: Machine, pid: number): Promise<void> {
  if (!(await m.kill(pid, 'SIGTERM'))) return; // already gone
  const deadline = performance.now() + 10_000;
  while (!(await processGone(m, pid)) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  if (!(await processGone(m, pid))) await m.kill(pid, 'SIGKILL');
}


/** Which OVS programs are missing on PATH (empty: the userspace is installed). */
export async function missingOvsTools(): Promise<string[]> {
  const r = await run('sh', ['-c', OVS_TOOLS.map((t) => `command -v ${t} >/dev/null || echo ${t}`).join('; ')], { allowFail: true });
  return r.stdout.split('\n').filter(Boolean);
}

/** For doctor: the installed OVS version, or what to install. Labs start their own daemons from it. */
export async function ovsUserspace(): Promise<{ ok: boolean; detail: string }> {
  const missing = await missingOvsTools();
  if (missing.length) return { ok: false, detail: `${OVS_MISSING} (no ${missing.join(', ')}): ./scripts/setup.sh installs it; the switch: ovs scenarios are skipped without it` };
  const v = await run('ovs-vswitchd', ['--version'], { allowFail: true });
  return { ok: true, detail: `${v.stdout.split('\n')[0].trim()}; each lab runs its own daemons, the datapath needs the openvswitch kernel module` };
}
