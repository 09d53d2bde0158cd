// A microVM guest as a Machine: every process, file operation and socket connection goes to
// the guest's agent (agent.c) as frames over its virtio-serial port, multiplexed by channel.
// The harness itself stays on this host (Node under software emulation costs seconds per start
// and per scenario); the guest runs only the commands, the probe agents and the daemons.
// When the guest stops, every operation under way fails with the reason, and the processes
// it ran count as exited.
import { mkdirSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { constants } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import type { Machine, MachineProcess, NftState, ProcessExit, SpawnOptions, Speed } from '../machine/machine.js';
import { encodeFields, encodeFrame, FrameReader, type Frame } from './agent-protocol.js';

type Handler = (f: Frame) => void;

/** The guest's environment for commands (the agent's own, set when it mounted the root). */
const GUEST_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root', TERM: 'dumb' };

class GuestProcess implements MachineProcess {
  exit?: ProcessExit;
  readonly exited: Promise<ProcessExit>;
  private done!: (x: ProcessExit) => void;
  readonly stdin?: Writable;
  readonly stdout?: PassThrough;
  readonly stderr?: PassThrough;
  pid = -1;

  constructor(
    private readonly g: GuestMachine,
    readonly chan: number,
    piped: boolean,
  ) {
    this.exited = new Promise((resolve) => (this.done = resolve));
    if (piped) {
      this.stdout = new PassThrough();
      this.stderr = new PassThrough();
      this.stdin = new Writable({
        write: (chunk: Buffer, _enc, cb) => {
          g.send(chan, 'I', chunk);
          cb();
        },
        final: (cb) => {
          g.send(chan, 'I');
          cb();
        },
      });
    }
  }

  finish(x: ProcessExit): void {
    if (this.exit) return;
    this.exit = x;
    this.stdout?.end();
    this.stderr?.end();
    this.done(x);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (!this.exit) this.g.send(this.chan, 'K', String(constants.signals[signal]));
  }
}

export class GuestMachine implements Machine {
  readonly local = false;
  readonly baseEnv = GUEST_ENV;
  /** where the guest's daemons keep sockets: the guest's own (its /tmp is an overlay in its memory) */
  readonly runDir = '/tmp/ncf-guest';
  speed: Speed = { factor: 1, detail: 'not measured yet' };
  private readonly handlers = new Map<number, Handler>();
  private readonly reader = new FrameReader();
  private nextChan = 1;
  private goneReason?: string;
  private readonly servers: Server[] = [];
  private sockets = 0;
  private control?: (type: string, payload: Buffer) => void;

  constructor(
    readonly name: string,
    private readonly link: Socket,
    /** the job folder: shared with the guest at the same path */
    readonly sharedDir: string,
    /** where forwarded sockets live on this host */
    private readonly hostDir: string,
  ) {
    link.on('data', (d: Buffer) => {
      for (const f of this.reader.push(d)) {
        if (f.chan === 0) this.control?.(f.type, f.payload);
        else this.handlers.get(f.chan)?.(f);
      }
    });
    link.on('close', () => this.gone('the guest agent closed its port'));
    link.on('error', (e) => this.gone(`the guest agent's port: ${e.message}`));
  }

  /** Frames of channel 0 (the agent's own: booted, hello) go to `h`; '!' when the guest is gone. */
  onControl(h: (type: string, payload: Buffer) => void): void {
    this.control = h;
  }

  alive(): boolean {
    return this.goneReason === undefined;
  }

  /** The guest stopped (qemu exited or was killed): everything under way ends with `reason`. */
  gone(reason: string): void {
    if (this.goneReason !== undefined) return;
    this.goneReason = reason;
    for (const s of this.servers) s.close();
    for (const h of [...this.handlers.values()]) h({ chan: 0, type: '!', payload: Buffer.from(reason) });
    this.handlers.clear();
    this.control?.('!', Buffer.from(reason));
    this.link.destroy();
  }

  send(chan: number, type: string, payload?: Buffer | string): void {
    if (this.goneReason === undefined) this.link.write(encodeFrame(chan, type, payload));
  }

  private open(h: Handler): number {
    const chan = this.nextChan++;
    this.handlers.set(chan, h);
    return chan;
  }

  private close(chan: number): void {
    this.handlers.delete(chan);
  }

  private deadError(): Error {
    return new Error(`${this.name} is gone: ${this.goneReason}`);
  }

  /** One request, one answer ('F' bytes, or 'E' an error message). */
  private request(type: string, payload: Buffer): Promise<Buffer> {
    if (!this.alive()) return Promise.reject(this.deadError());
    return new Promise((resolve, reject) => {
      const chan = this.open((f) => {
        this.close(chan);
        if (f.type === 'F') resolve(f.payload);
        else if (f.type === '!') reject(this.deadError());
        else reject(new Error(f.payload.toString()));
      });
      this.send(chan, type, payload);
    });
  }

  private fileop(op: string, path: string, extra: [string, string | number][] = [], data?: string): Promise<Buffer> {
    return this.request('F', encodeFields([['op', op], ['path', path], ...extra], data));
  }

  spawn(file: string, args: string[], opts: SpawnOptions = {}): Promise<MachineProcess> {
    if (!this.alive()) return Promise.reject(this.deadError());
    const fields: [string, string][] = [file, ...args].map((a) => ['arg', a]);
    if (opts.replaceEnv) fields.push(['clearenv', '1']);
    for (const [k, v] of Object.entries(opts.env ?? {})) fields.push(['env', `${k}=${v}`]);
    if (opts.netns) fields.push(['netns', opts.netns]);
    if (opts.mntns) fields.push(['mntns', opts.mntns]);
    if (opts.detached) fields.push(['detached', '1'], ['log', opts.logFile ?? '/dev/null']);
    return new Promise((resolve, reject) => {
      let p: GuestProcess | undefined;
      const chan = this.open((f) => {
        if (f.type === 'S') {
          p!.pid = Number(f.payload.toString());
          resolve(p!);
        } else if (f.type === 'O') p!.stdout?.write(f.payload);
        else if (f.type === 'R') p!.stderr?.write(f.payload);
        else if (f.type === 'Z') {
          this.close(chan);
          const [how, n] = f.payload.toString().split(' ');
          p!.finish(how === 'code' ? { code: Number(n), signal: null } : { code: null, signal: signalName(Number(n)) });
        } else if (f.type === 'E') {
          this.close(chan);
          // as a local spawn would: a process that could not start, reported on its exit
          p!.finish({ code: null, signal: null, error: `${file}: ${f.payload.toString()}` });
          resolve(p!);
        } else if (f.type === '!') {
          p!.finish({ code: null, signal: 'SIGKILL', error: this.deadError().message });
          if (p!.pid < 0) reject(this.deadError());
        }
      });
      p = new GuestProcess(this, chan, !opts.detached);
      this.send(chan, 'X', encodeFields(fields));
    });
  }

  async readFile(path: string): Promise<string> {
    return (await this.fileop('read', path)).toString();
  }

  async writeFile(path: string, data: string, opts: { mode?: number } = {}): Promise<void> {
    await this.fileop('write', path, opts.mode !== undefined ? [['mode', opts.mode.toString(8)]] : [], data);
  }

  async mkdir(path: string): Promise<void> {
    await this.fileop('mkdir', path);
  }

  async rm(path: string): Promise<void> {
    await this.fileop('rm', path);
  }

  async rmdir(path: string): Promise<boolean> {
    return this.fileop('rmdir', path).then(
      () => true,
      () => false,
    );
  }

  async readdir(path: string): Promise<{ name: string; dir: boolean }[]> {
    const text = (await this.fileop('readdir', path)).toString();
    return text
      .split('\n')
      .filter(Boolean)
      .map((l) => ({ dir: l[0] === 'd', name: l.slice(2) }));
  }

  async readlink(path: string): Promise<string | undefined> {
    return this.fileop('readlink', path).then(
      (b) => b.toString(),
      () => undefined,
    );
  }

  async kill(pid: number, signal: NodeJS.Signals): Promise<boolean> {
    if (!this.alive()) return false;
    return this.fileop('kill', '', [
      ['pid', pid],
      ['sig', constants.signals[signal]],
    ]).then(
      () => true,
      () => false,
    );
  }

  /** The agent enters the namespace itself, writes and reads /proc/sys there, and comes back. */
  async sysctls(netns: string, set: Record<string, string>, get: string[]): Promise<Record<string, string>> {
    const path = (k: string) => `/proc/sys/${k.replace(/\./g, '/')}`;
    const fields: [string, string][] = [['op', 'sysctl'], ['path', netns], ...Object.entries(set).map(([k, v]): [string, string] => ['set', `${path(k)}=${v}`]), ...get.map((k): [string, string] => ['get', path(k)])];
    const text = (await this.request('F', encodeFields(fields))).toString();
    const values = text.split('\n');
    return Object.fromEntries(get.map((k, i) => [k, (values[i] ?? '').trim()]));
  }

  async nftState(netns: string): Promise<NftState> {
    const text = (await this.request('F', encodeFields([['op', 'nftstate'], ['path', netns]]))).toString();
    const m = /^gen=(\d+) tables=(\d+) ip=(\d+) ip6=(\d+)$/.exec(text.trim());
    if (!m) throw new Error(`nftables state of ${netns}: unexpected answer "${text}"`);
    return { gen: Number(m[1]), tables: Number(m[2]), ipTables: Number(m[3]), ip6Tables: Number(m[4]) };
  }

  async pidsInNetns(nsPaths: string[]): Promise<number[]> {
    if (!this.alive() || nsPaths.length === 0) return [];
    const text = (await this.request('F', encodeFields([['op', 'netnspids'], ...nsPaths.map((p): [string, string] => ['path', p])]))).toString();
    return text.split(' ').filter(Boolean).map(Number);
  }

  waitForPath(path: string, until?: Promise<unknown>): Promise<boolean> {
    if (!this.alive()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const chan = this.open((f) => {
        this.close(chan);
        resolve(f.type === 'F');
      });
      this.send(chan, 'F', encodeFields([['op', 'waitpath'], ['path', path]]));
      until?.then(
        () => settle(),
        () => settle(),
      );
      const settle = () => {
        if (!this.handlers.has(chan)) return;
        this.close(chan);
        this.send(chan, 'Q'); // the agent drops its watch
        // it may have appeared just now: one look decides
        void this.fileop('exists', path).then(
          (b) => resolve(b.toString() === '1'),
          () => resolve(false),
        );
      };
    });
  }

  /** A socket on this host whose connections the agent relays to the guest's socket `path`. */
  async unixSocket(path: string): Promise<string> {
    mkdirSync(this.hostDir, { recursive: true });
    const hostPath = join(this.hostDir, `s${++this.sockets}.sock`);
    const server = createServer((conn) => this.relay(conn, path));
    this.servers.push(server);
    await new Promise<void>((resolve, reject) => server.listen(hostPath, resolve).once('error', reject));
    return hostPath;
  }

  private relay(conn: Socket, path: string): void {
    if (!this.alive()) return void conn.destroy();
    let open = false;
    const chan = this.open((f) => {
      if (f.type === 'S') {
        open = true;
        conn.resume();
      } else if (f.type === 'D') conn.write(f.payload);
      else {
        // 'Q' (the guest side closed), 'E' (could not connect), '!' (the guest is gone)
        this.close(chan);
        if (f.type === 'Q') conn.end();
        else conn.destroy();
      }
    });
    conn.pause();
    conn.on('data', (d: Buffer) => this.send(chan, 'D', d));
    conn.on('close', () => {
      if (!this.handlers.has(chan)) return;
      this.close(chan);
      if (open) this.send(chan, 'Q');
    });
    conn.on('error', () => {});
    this.send(chan, 'C', path);
  }
}

function signalName(n: number): string {
  return Object.entries(constants.signals).find(([, v]) => v === n)?.[0] ?? String(n);
}
