// A D-Bus bus seen as events: dbus-monitor on a lab's private bus, its text turned into one
// message per header line. The lab's firewalld waits on these, never on a clock: the moment it
// takes its name, and the daemon's calls to it after a reload and their answers.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';

export interface BusMessage {
  type: 'signal' | 'method call' | 'method return' | 'error';
  sender: string;
  destination: string;
  /** absent on an error */
  serial?: number;
  /** the call a return or error answers */
  replySerial?: number;
  interface?: string;
  member?: string;
}

/**
 * dbus-monitor's header line of a message, or undefined for its argument lines. Its fields are
 * `key=value` words (an error has no serial of its own; a broadcast's destination is
 * "(null destination)").
 */
export function parseHeader(line: string): BusMessage | undefined {
  const m = /^(signal|method call|method return|error) (.*)$/.exec(line);
  if (!m) return undefined;
  const fields = new Map([...m[2].replace('(null destination)', '(null)').matchAll(/(\w+)=([^ ;]+)/g)].map((f) => [f[1], f[2]]));
  const num = (k: string) => (fields.has(k) ? Number(fields.get(k)) : undefined);
  return {
    type: m[1] as BusMessage['type'],
    sender: fields.get('sender') ?? '',
    destination: fields.get('destination') ?? '',
    serial: num('serial'),
    replySerial: num('reply_serial'),
    interface: fields.get('interface'),
    member: fields.get('member'),
  };
}

export class BusMonitor {
  private listeners: ((m: BusMessage) => void)[] = [];

  private constructor(private readonly child: ChildProcess) {}

  /**
   * Monitoring `address` for messages that match any of `matches` once this resolves: a
   * monitor's first lines are its own NameAcquired and NameLost, after which nothing is missed.
   */
  static async start(address: string, matches: string[]): Promise<BusMonitor> {
    const child = spawn('dbus-monitor', ['--address', address, ...matches], { stdio: ['ignore', 'pipe', 'pipe'] });
    const mon = new BusMonitor(child);
    let subscribed!: () => void;
    const ready = new Promise<void>((r) => (subscribed = r));
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    // a message's arguments follow its header on lines of their own: the match rules select
    // the messages, so the headers say all that is needed
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = parseHeader(line);
      if (!m) return;
      const own = m.sender === 'org.freedesktop.DBus' && (m.member === 'NameAcquired' || m.member === 'NameLost');
      if (own && m.member === 'NameLost') subscribed();
      if (!own) mon.emit(m);
    });
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`dbus-monitor on ${address} exited (${code}) before it was subscribed: ${stderr.trim()}`);
    });
    exited.catch(() => {});
    await Promise.race([ready, exited]);
    return mon;
  }

  /** Every message from now on. */
  on(listener: (m: BusMessage) => void): void {
    this.listeners.push(listener);
  }

  /** The first message (from now on) that `pred` accepts. */
  next(pred: (m: BusMessage) => boolean): Promise<BusMessage> {
    return new Promise((resolve) => this.on((m) => pred(m) && resolve(m)));
  }

  private emit(m: BusMessage): void {
    for (const l of this.listeners) l(m);
  }

  /** Ends the monitor (by its pid). */
  stop(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}
