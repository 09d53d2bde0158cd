import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../harness/engine/reference/ports.js';

describe('host port allocation', () => {
  it('starts ephemeral ports at 32768 and moves on per address and protocol', () => {
    const a = new PortAllocator();
    expect(a.request('0.0.0.0', 'tcp', 'a')).toBe(32768);
    expect(a.request('0.0.0.0', 'tcp', 'b')).toBe(32769);
    expect(a.request('0.0.0.0', 'udp', 'c')).toBe(32768);
    expect(a.request('127.0.0.1', 'tcp', 'd')).toBe(32768);
  });

  it('does not hand out a released ephemeral port again straight away', () => {
    const a = new PortAllocator();
    const p = a.request('0.0.0.0', 'tcp', 'a');
    a.release('0.0.0.0', 'tcp', p);
    expect(a.request('0.0.0.0', 'tcp', 'b')).toBe(p + 1);
  });

  it('refuses a taken port with the engine message, and skips it for ephemeral requests', () => {
    const a = new PortAllocator();
    a.request('0.0.0.0', 'tcp', 'a', 32768);
    expect(() => a.request('0.0.0.0', 'tcp', 'b', 32768)).toThrow('Bind for 0.0.0.0:32768 failed: port is already allocated');
    expect(a.request('0.0.0.0', 'tcp', 'c')).toBe(32769);
  });
});
