// One trace monitor (harness/trace/tracemon.c) per Docker host namespace of a lab: started
// with the lab, read line by line into events, stopped by its pid at teardown. Trace events
// stay in their namespace, so each host's monitor sees exactly the packets that crossed it.
//
// When the events of a moment are all in is decided by a marker, never by waiting: a packet
// the host itself sends after the probes (trace/tracer.ts) is traced like them, and the
// kernel queues trace events on the monitor's socket in the order it makes them, so once the
// marker's event has been read, every event before it has been read too.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { LOST_EVENTS, parseTraceLine, type TraceEvent } from './events.js';
import { tracemonPath } from '../native.js';
import { TRACE_TABLE } from './table.js';

interface Waiter {
  match: (e: TraceEvent) => boolean;
  resolve: () => void;
}

export class TraceMonitor {
  private events: TraceEvent[] = [];
  private waiters: Waiter[] = [];
  private stderr = '';
  private exitedWith?: string;
  /** the monitor said it lost events since the last take() */
  private lost = false;
  private stopped?: Promise<void>;

  private constructor(
    private readonly child: ChildProcess,
    readonly label: string,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** Spawns the monitor inside the namespace at nsPath. */
  static start(nsPath: string, label: string): TraceMonitor {
    const child = spawn(tracemonPath(), ['--netns', nsPath, '--skip-table', TRACE_TABLE], { stdio: ['ignore', 'pipe', 'pipe'] });
    const m = new TraceMonitor(child, label);
    child.stderr!.on('data', (d) => (m.stderr += String(d)));
    child.on('error', (e) => m.exit(e.message));
    child.on('exit', (code, sig) => m.exit(`exited (${sig ?? code})${m.stderr.trim() ? `: ${m.stderr.trim()}` : ''}`));
    createInterface({ input: child.stdout! }).on('line', (line) => m.line(line));
    return m;
  }

  private line(line: string): void {
    if (line === LOST_EVENTS) {
      this.lost = true;
      return;
    }
    const e = parseTraceLine(line);
    if (!e) return;
    this.events.push(e);
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(e)) return true;
      w.resolve();
      return false;
    });
  }

  private exit(why: string): void {
    this.exitedWith ??= why;
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** Why the monitor is gone, when it is. */
  get failure(): string | undefined {
    return this.exitedWith;
  }

  /** Resolves when an event matching `match` arrives (or the monitor exits). */
  waitFor(match: (e: TraceEvent) => boolean): Promise<void> {
    if (this.exitedWith || this.events.some(match)) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  /** The events read so far, and whether the monitor lost any; starts afresh. */
  take(): { events: TraceEvent[]; lost: boolean } {
    const out = { events: this.events, lost: this.lost };
    this.events = [];
    this.lost = false;
    return out;
  }

  /** SIGTERM by pid, SIGKILL if it is still there shortly after; idempotent. */
  stop(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      if (this.child.exitCode !== null || this.child.signalCode !== null) return resolve();
      const timer = setTimeout(() => {
        try {
          process.kill(this.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 500);
      this.child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      try {
        process.kill(this.pid, 'SIGTERM');
      } catch {
        clearTimeout(timer);
        resolve();
      }
    });
    return this.stopped;
  }
}
