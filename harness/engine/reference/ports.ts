// Host port allocation as Docker's portallocator does it: per (host address, protocol), a
// requested port is refused when taken, an ephemeral one is the next free port after the
// last one handed out, starting at the bottom of ip_local_port_range (32768).
import { EngineError } from '../types.js';

export const EPHEMERAL_START = 32768;
export const EPHEMERAL_END = 60999;

export class PortAllocator {
  private readonly used = new Map<string, string>(); // "ip/proto/port" → owner
  private readonly last = new Map<string, number>(); // "ip/proto" → last ephemeral port

  request(hostIp: string, proto: string, owner: string, port?: number): number {
    if (port !== undefined) {
      const key = `${hostIp}/${proto}/${port}`;
      if (this.used.has(key)) throw new EngineError(`Bind for ${hostIp}:${port} failed: port is already allocated`);
      this.used.set(key, owner);
      return port;
    }
    const scope = `${hostIp}/${proto}`;
    const start = this.last.get(scope) ?? EPHEMERAL_START - 1;
    const span = EPHEMERAL_END - EPHEMERAL_START + 1;
    for (let i = 1; i <= span; i++) {
      const p = EPHEMERAL_START + ((start + i - EPHEMERAL_START) % span);
      const key = `${scope}/${p}`;
      if (this.used.has(key)) continue;
      this.used.set(key, owner);
      this.last.set(scope, p);
      return p;
    }
    throw new EngineError(`all ports are allocated for ${hostIp}/${proto}`);
  }

  release(hostIp: string, proto: string, port: number): void {
    this.used.delete(`${hostIp}/${proto}/${port}`);
  }
}
