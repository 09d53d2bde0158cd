import { describe, expect, it } from 'vitest';
import { AddressPool, PoolAllocator, inCidr, macFor, networkOf, overlaps } from '../harness/engine/reference/ipam.js';
import { EngineError } from '../harness/engine/types.js';

describe('IPAM', () => {
  it('hands out the lowest free address, skipping network, gateway and broadcast', () => {
    const p = new AddressPool('172.17.0.0/16', '172.17.0.1');
    expect([p.allocate(), p.allocate(), p.allocate()]).toEqual(['172.17.0.2', '172.17.0.3', '172.17.0.4']);
    p.release('172.17.0.3');
    expect(p.allocate()).toBe('172.17.0.3');
  });

  it('draws from --fixed-cidr only, and honours a fixed address anywhere in the subnet', () => {
    const p = new AddressPool('10.66.0.0/16', '10.66.0.1', '10.66.5.0/24');
    expect(p.allocate('10.66.9.9')).toBe('10.66.9.9');
    expect(p.allocate()).toBe('10.66.5.0');
    expect(inCidr(p.allocate(), '10.66.5.0/24')).toBe(true);
  });

  it('refuses addresses outside the subnet, taken ones, and an exhausted pool', () => {
    const p = new AddressPool('192.168.1.0/30', '192.168.1.1');
    expect(() => p.allocate('192.168.2.5')).toThrow(EngineError);
    expect(p.allocate()).toBe('192.168.1.2');
    expect(() => p.allocate('192.168.1.2')).toThrow(/already in use/);
    expect(() => p.allocate()).toThrow(/no available IPv4 addresses/);
  });

  it('gives networks the default pools in order, around claimed subnets', () => {
    const a = new PoolAllocator();
    a.claim('172.17.0.0/16');
    a.claim('172.18.5.0/24');
    expect(a.next()).toBe('172.19.0.0/16');
    expect(a.next()).toBe('172.20.0.0/16');
    expect(() => a.claim('172.20.1.0/24')).toThrow(/overlaps/);
  });

  it('derives MACs from addresses as Docker does', () => {
    expect(macFor('172.17.0.2')).toBe('02:42:ac:11:00:02');
  });

  it('does CIDR arithmetic', () => {
    expect(networkOf('172.17.0.1/16')).toBe('172.17.0.0/16');
    expect(overlaps('10.0.0.0/8', '10.1.0.0/16')).toBe(true);
    expect(overlaps('10.0.0.0/16', '10.1.0.0/16')).toBe(false);
  });
});
