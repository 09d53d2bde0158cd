// The microVM guest's agent (harness/vm/agent.c), run here on this host over a socket pair
// instead of the guest's virtio port: the same program and protocol as in a guest, without
// the seconds a guest costs. What it must keep under concurrency: every process gets all of
// its input and returns all of its output, while socket relays (a dockerd's API) open and
// close beside it on the same channels table.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuestMachine } from '../harness/vm/guest-machine.js';
import { encodeFields, encodeFrame, FrameReader, type Frame } from '../harness/vm/agent-protocol.js';
import { guestAgentPath } from '../harness/native.js';
import { runOn } from '../harness/lab/exec.js';

let agent: ChildProcess;
let machine: GuestMachine;
let dir: string;
let api: Server;

/** One exchange through the agent's relay: this side hangs up first, as the docker client does. */
function exchange(socket: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket, () => c.write('ping'));
    let got = '';
    c.on('data', (d) => {
      got += d;
      if (got.startsWith('pong')) {
        c.destroy();
        resolve('pong');
      }
    });
    c.on('error', reject);
    c.on('close', () => reject(new Error(`the relay closed after "${got}"`)));
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ncf-agent-spec-'));
  // A stand-in for a dockerd API socket on the "guest" side. It answers, then keeps talking
  // until the client hangs up: the relay is readable in the agent when the host closes it.
  api = createServer((c: Socket) => {
    c.on('error', () => {});
    c.once('data', () => {
      c.write('pong');
      const chatter = setInterval(() => c.writable && c.write(' '), 1);
      c.once('close', () => clearInterval(chatter));
    });
  });
  await new Promise<void>((r) => api.listen(join(dir, 'api.sock'), r));
  agent = spawn(guestAgentPath(), [], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: { ...process.env, NCF_AGENT_PORT_FD: '3' } });
  const link = agent.stdio[3] as Socket;
  machine = new GuestMachine('agent on this host', link, dir, join(dir, 'host'));
  await new Promise<void>((resolve) => machine.onControl((type) => type === 'B' && resolve()));
});

afterAll(async () => {
  agent?.kill('SIGKILL');
  api?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('guest agent', () => {
  it('runs a process with its input, output, error output and exit code', async () => {
    const r = await runOn(machine, 'sh', ['-c', 'cat; echo oops >&2; exit 3'], { input: 'hello\n', allowFail: true });
    expect(r).toEqual({ stdout: 'hello\n', stderr: 'oops\n', exitCode: 3 });
  });

  it('relays a unix socket', async () => {
    const socket = await machine.unixSocket(join(dir, 'api.sock'));
    expect(await exchange(socket)).toBe('pong');
  });

  // A relay closing and a process starting in the same batch of frames once gave the new process
  // the closed relay's slot and fd number, and the stale poll entry closed the process's stdin:
  // `ip -batch -` then read nothing and exited 0 (a lab's links silently missing in a guest).
  it('gives every process all of its input while relays open and close beside it', async () => {
    const socket = await machine.unixSocket(join(dir, 'api.sock'));
    const inputs = Array.from({ length: 500 }, (_, i) => `line ${i}\n`.repeat(1 + (i % 7)));
    const relays = (async () => {
      for (let i = 0; i < 100; i++) await Promise.all(Array.from({ length: 20 }, () => exchange(socket)));
    })();
    // 100 at a time: the agent has 1,024 channels (a guest's own limit of descriptors)
    const outputs: string[] = [];
    for (let i = 0; i < inputs.length; i += 100) outputs.push(...(await Promise.all(inputs.slice(i, i + 100).map((input) => runOn(machine, 'cat', [], { input }).then((r) => r.stdout)))));
    await relays;
    const short = outputs.map((o, i) => ({ i, got: o.length, want: inputs[i].length })).filter((x) => x.got !== x.want);
    expect(short).toEqual([]);
  });

  // The host's side of the same port: a process that starts, prints and exits in one read (a
  // busy host reads the guest's frames in batches) lost its output when runOn took it as soon as
  // the exit came: `ip -json link show` read as no links at all.
  it('keeps the output of a process whose start, output and exit come in one read', async () => {
    const path = join(dir, 'port.sock');
    const fakeAgent = createServer((c: Socket) => {
      const reader = new FrameReader();
      c.on('data', (d: Buffer) => {
        for (const f of reader.push(d)) if (f.type === 'X') c.write(Buffer.concat([encodeFrame(f.chan, 'S', '42'), encodeFrame(f.chan, 'O', 'eth1\n'), encodeFrame(f.chan, 'R', 'note\n'), encodeFrame(f.chan, 'Z', 'code 0')]));
      });
    });
    await new Promise<void>((r) => fakeAgent.listen(path, r));
    const link = connect(path);
    await new Promise((r) => link.once('connect', r));
    try {
      const m = new GuestMachine('one read', link, dir, join(dir, 'one-read'));
      expect(await runOn(m, 'ip', ['-json', 'link', 'show'])).toEqual({ stdout: 'eth1\n', stderr: 'note\n', exitCode: 0 });
    } finally {
      link.destroy();
      fakeAgent.close();
    }
  });

  // The same race, made to happen every time with frames written by hand: the relay S sits in
  // the lowest channel slot on the descriptor a new process's stdin pipe will get, is readable
  // (its server keeps sending), and is closed in the same write that starts the process.
  it('a relay closed in the same batch of frames that starts a process leaves its stdin alone', async () => {
    const raw = await rawAgent();
    const flood = createServer((c: Socket) => {
      c.on('error', () => {});
      c.write(Buffer.alloc(8 << 20));
    });
    try {
      await new Promise<void>((r) => flood.listen(join(dir, 'flood.sock'), r));
      // slot 0: a process holding three descriptors, each one above a free one
      await raw.expect(1, 'S', () => raw.send(encodeFrame(1, 'X', encodeFields([['arg', 'sleep'], ['arg', '100']]))));
      // slots 1-3: relays on the three lowest free descriptors
      for (const chan of [2, 3, 4]) await raw.expect(chan, 'S', () => raw.send(encodeFrame(chan, 'C', join(dir, 'api.sock'))));
      // the process ends: slot 0 and its descriptors are free; S takes both
      await raw.expect(1, 'Z', () => raw.send(encodeFrame(1, 'K', '9')));
      await raw.expect(5, 'D', () => raw.send(encodeFrame(5, 'C', join(dir, 'flood.sock'))));
      // one write: the relays close, and cat starts (in slot 0, stdin on S's old descriptor)
      await raw.expect(6, 'S', () => raw.send(Buffer.concat([2, 3, 4, 5].map((c) => encodeFrame(c, 'Q')).concat(encodeFrame(6, 'X', encodeFields([['arg', 'cat']]))))));
      const out = raw.collect(6, 'O');
      await raw.expect(6, 'Z', () => raw.send(Buffer.concat([encodeFrame(6, 'I', 'all of it\n'), encodeFrame(6, 'I')])));
      expect(out()).toBe('all of it\n');
    } finally {
      flood.close();
      raw.stop();
    }
  });
});

/** A second agent driven frame by frame. */
async function rawAgent() {
  const child = spawn(guestAgentPath(), [], { stdio: ['ignore', 'inherit', 'inherit', 'pipe'], env: { ...process.env, NCF_AGENT_PORT_FD: '3' } });
  const link = child.stdio[3] as Socket;
  const reader = new FrameReader();
  const seen: Frame[] = [];
  const waiters: (() => void)[] = [];
  link.on('data', (d: Buffer) => {
    seen.push(...reader.push(d));
    for (const w of waiters.splice(0)) w();
  });
  const find = (chan: number, type: string) => seen.some((f) => f.chan === chan && f.type === type);
  const api = {
    send: (b: Buffer) => void link.write(b),
    /** Do `action`, then wait for a frame of `type` on `chan` (an 'E' fails at once). */
    async expect(chan: number, type: string, action: () => void): Promise<void> {
      action();
      while (!find(chan, type)) {
        const err = seen.find((f) => f.chan === chan && f.type === 'E');
        if (err) throw new Error(`channel ${chan}: ${err.payload.toString()}`);
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    collect: (chan: number, type: string) => () =>
      Buffer.concat(seen.filter((f) => f.chan === chan && f.type === type).map((f) => f.payload)).toString(),
    stop: () => child.kill('SIGKILL'),
  };
  await api.expect(0, 'B', () => {});
  return api;
}
