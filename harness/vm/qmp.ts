// qemu's QMP monitor, the little of it the runner uses: commands in order, each answered, and
// events (a migration's end) waited for as they arrive. JSON lines over a unix socket.
import type { Socket } from 'node:net';
import { createInterface } from 'node:readline';

type Json = Record<string, unknown>;

export class Qmp {
  private readonly waiting: ((r: Json) => void)[] = [];
  private readonly listeners = new Set<(e: Json) => void>();
  private closed?: string;
  private readonly greeted: Promise<void>;

  constructor(private readonly sock: Socket) {
    let greet!: () => void;
    this.greeted = new Promise((r) => (greet = r));
    createInterface({ input: sock }).on('line', (line) => {
      let msg: Json;
      try {
        msg = JSON.parse(line) as Json;
      } catch {
        return;
      }
      if ('QMP' in msg) greet();
      else if ('event' in msg) for (const l of this.listeners) l(msg);
      else this.waiting.shift()?.(msg);
    });
    const end = () => {
      this.closed = 'qemu closed its monitor';
      for (const w of this.waiting.splice(0)) w({ error: { desc: this.closed } });
      for (const l of this.listeners) l({ event: 'CLOSED' });
    };
    sock.on('close', end);
    sock.on('error', end);
  }

  /** Run a command; rejects with qemu's error description. */
  async execute(command: string, args?: Json): Promise<unknown> {
    await this.greeted;
    if (this.closed) throw new Error(this.closed);
    const reply = await new Promise<Json>((resolve) => {
      this.waiting.push(resolve);
      this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    });
    if (reply.error) throw new Error(`qemu ${command}: ${(reply.error as { desc?: string }).desc ?? JSON.stringify(reply.error)}`);
    return reply.return;
  }

  /** The next event for which `pick` returns a value (or the monitor closing: undefined). */
  next<T>(pick: (e: Json) => T | undefined): Promise<T | undefined> {
    return new Promise((resolve) => {
      const l = (e: Json) => {
        const v = e.event === 'CLOSED' ? undefined : pick(e);
        if (v === undefined && e.event !== 'CLOSED') return;
        this.listeners.delete(l);
        resolve(v);
      };
      this.listeners.add(l);
    });
  }

  async start(): Promise<void> {
    await this.execute('qmp_capabilities');
  }
}
