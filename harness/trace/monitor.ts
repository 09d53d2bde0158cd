// One trace monitor (harness/trace/tracemon.c) per Docker host namespace of a lab: started
// with the lab (it loads the lab's tracing table there), read line by line into events,
// stopped by its pid at teardown. Trace events stay in their namespace, so each host's
// monitor sees exactly the packets that crossed that host.
//
// When the events of a moment are all in is decided by a marker, never by waiting: the
// monitor sends a packet of its own after the probes, traced like them, and the kernel queues
// trace events in the order it makes them, so once the marker's event has been read, every
// event before it has been read too. The monitor then prints the rule set by handle.
import { createInterface } from 'node:readline';
import { currentMachine, hangGuard, type MachineProcess } from '../machine/machine.js';
import { LOST_EVENTS, parseTraceLine, type TraceEvent } from './events.js';
import { tracemonPath } from '../native.js';
import { TRACE_TABLE } from './table.js';

/** What a marker brings back: the events before it, the rule set by handle, legacy tables. */
export type Synced = { events: TraceEvent[]; lost: boolean; ruleset: string; legacy: string[]; ms: number } | { problem: string };

/** The libnftables the monitor loads (NETCONFORM_LIBNFTABLES names another soname or path). */
const libnftables = () => process.env.NETCONFORM_LIBNFTABLES || 'libnftables.so.1';

export class TraceMonitor {
  private events: TraceEvent[] = [];
  private ruleset: string[] = [];
  private lost = false;
  private stderr = '';
  private exitedWith?: string;
  private pending?: { token: string; resolve: (s: Synced) => void };
  private ready?: { resolve: () => void; reject: (e: Error) => void };
  private stopped?: Promise<void>;
  private next = 0;

  private constructor(
    private readonly child: MachineProcess,
    readonly label: string,
  ) {}

  get pid(): number {
    return this.child.pid;
  }

  /**
   * Spawns the monitor in the namespace at nsPath, on the lab's machine (this host, or a guest:
   * it sees this machine's root, so the same binary and libnftables); resolves once it listens
   * and its table is loaded.
   */
  static async start(nsPath: string, label: string, table: { setup: string; cleanup?: string }): Promise<TraceMonitor> {
    const args = ['--netns', nsPath, '--skip-table', TRACE_TABLE, '--setup', table.setup, '--libnftables', libnftables()];
    if (table.cleanup) args.push('--cleanup', table.cleanup);
    const child = await currentMachine().spawn(tracemonPath(), args);
    const m = new TraceMonitor(child, label);
    child.stdin!.on('error', () => {}); // EPIPE: it exited; the exit handler says why
    child.stderr!.on('data', (d) => (m.stderr += String(d)));
    void child.exited.then((x) => m.exit(x.error ?? `exited (${x.signal ?? x.code})${m.stderr.trim() ? `: ${m.stderr.trim()}` : ''}`));
    createInterface({ input: child.stdout! }).on('line', (line) => m.line(line));
    return new Promise((resolve, reject) => {
      m.ready = { resolve: () => resolve(m), reject };
    });
  }

  private line(line: string): void {
    const e = parseTraceLine(line);
    if (e) {
      this.events.push(e);
      return;
    }
    if (line.startsWith('L ')) this.ruleset.push(line.slice(2));
    else if (line === LOST_EVENTS) this.lost = true;
    else if (line === 'ready') this.ready?.resolve();
    else if (line.startsWith('error ')) {
      this.exitedWith = line.slice(6);
      this.ready?.reject(new Error(line.slice(6)));
    } else if (line.startsWith('M ')) this.markerDone(line.split(' '));
  }

  /** "M token done ms legacy" | "M token nomarker ms [why]" | "M token listfailed ms error…" */
  private markerDone(w: string[]): void {
    const p = this.pending;
    if (!p || w[1] !== p.token) return;
    this.pending = undefined;
    const ms = Number(w[3]);
    const out = { events: this.events, lost: this.lost, ruleset: this.ruleset.join('\n') };
    this.events = [];
    this.ruleset = [];
    this.lost = false;
    if (w[2] === 'done') p.resolve({ ...out, legacy: w[4] && w[4] !== '-' ? w[4].split(',') : [], ms });
    else if (w[2] === 'nomarker' && w[4]?.startsWith('cannot-send:')) p.resolve({ problem: `the marker packet could not be sent: ${w.slice(4).join(' ').slice(12)}` });
    else if (w[2] === 'nomarker') p.resolve({ problem: `no marker packet showed within ${ms} ms` });
    else p.resolve({ problem: `listing the rule set failed: ${w.slice(4).join(' ')}` });
  }

  private exit(why: string): void {
    this.exitedWith ??= why;
    this.ready?.reject(new Error(this.exitedWith));
    this.pending?.resolve({ problem: `the trace monitor ${this.exitedWith}` });
    this.pending = undefined;
  }

  /**
   * A marker, then every event before it and the rule set by handle. `boundMs`: how long the
   * monitor waits for the marker's event before it says it did not show.
   */
  sync(boundMs: number): Promise<Synced> {
    if (this.exitedWith) return Promise.resolve({ problem: `the trace monitor ${this.exitedWith}` });
    if (this.pending) return Promise.resolve({ problem: 'a marker is under way already' });
    const token = `m${++this.next}`;
    return new Promise((resolve) => {
      this.pending = { token, resolve };
      this.child.stdin!.write(`M ${token} ${Math.round(boundMs)}\n`);
    });
  }

  /** Asks it to clean up and quit; SIGKILL by pid if it is still there a while later. */
  stop(): Promise<void> {
    this.stopped ??= (async () => {
      if (this.child.exit) return;
      // its cleanup is one nftables transaction: a generous bound, never a verdict
      const guard = hangGuard(30_000, () => this.child.kill('SIGKILL'));
      this.child.stdin!.end('Q\n');
      await this.child.exited;
      guard.clear();
    })();
    return this.stopped;
  }
}
