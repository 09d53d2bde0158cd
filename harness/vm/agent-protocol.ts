// The frames the host and the guest agent (agent.c) exchange over one virtio-serial port:
// u32 payload length, u32 channel, u8 type, payload (little-endian). Request payloads are
// "key=value" fields separated by NUL; a `data=` field comes last and runs to the end.

export interface Frame {
  chan: number;
  type: string;
  payload: Buffer;
}

export function encodeFrame(chan: number, type: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(9);
  head.writeUInt32LE(body.length, 0);
  head.writeUInt32LE(chan, 4);
  head.write(type, 8, 'latin1');
  return Buffer.concat([head, body as Uint8Array]);
}

/** Fields of a request; repeated keys are allowed (arg=, env=); `data` always goes last. */
export function encodeFields(fields: [string, string | number][], data?: Buffer | string): Buffer {
  const parts: Uint8Array[] = fields.map(([k, v]) => Buffer.from(`${k}=${v}\0`));
  if (data !== undefined) parts.push(Buffer.from('data='), typeof data === 'string' ? Buffer.from(data) : data);
  return Buffer.concat(parts);
}

/** Cuts a byte stream into frames. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Frame[] {
    this.buf = (this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk) as Buffer;
    const out: Frame[] = [];
    while (this.buf.length >= 9) {
      const len = this.buf.readUInt32LE(0);
      if (this.buf.length < 9 + len) break;
      out.push({ chan: this.buf.readUInt32LE(4), type: String.fromCharCode(this.buf[8]), payload: this.buf.subarray(9, 9 + len) });
      this.buf = this.buf.subarray(9 + len) as Buffer;
    }
    return out;
  }
}
