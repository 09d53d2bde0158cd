// When a guest reads a namespace's rules again: only when the kernel's nftables generation
// moved (the guest's agent reads it; microvm.spec proves it on a real guest kernel).
import { describe, expect, it } from 'vitest';
import { DumpCache } from '../harness/lab/dump-cache.js';
import type { Machine } from '../harness/machine/machine.js';

const SAVE = { file: 'iptables-nft-save', args: [] };
const SAVE6 = { file: 'ip6tables-nft-save', args: [] };
const NFT = { file: 'nft', args: ['-j', 'list', 'ruleset'] };
const LEGACY = { file: 'iptables-legacy-save', args: [] };

function machineWith(state: () => { gen: number; tables: number }): Machine {
  return { nftState: async () => state() } as unknown as Machine;
}

describe('rule dumps read again only when the rules changed', () => {
  it('an unchanged generation gives the stored dumps; a new one asks for a read', async () => {
    let gen = 7;
    const cache = new DumpCache(machineWith(() => ({ gen, tables: 3 })));
    const first = await cache.known('/ns', [SAVE, SAVE6]);
    expect(first).toEqual({ gen: 7 });
    cache.store('/ns', 7, [SAVE, SAVE6], ['*filter v4', '*filter v6']);
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ outs: ['*filter v4', '*filter v6'] });
    gen = 8;
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 8 });
  });

  it('a dump not read at that generation is read; namespaces are apart', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 2 })));
    cache.store('/ns', 1, [SAVE], ['v4']);
    expect(await cache.known('/ns', [SAVE, NFT])).toEqual({ gen: 1 });
    expect(await cache.known('/other', [SAVE])).toEqual({ gen: 1 });
  });

  it('no tables: iptables-nft dumps are empty without a read; nft -j still reads (it prints metainfo)', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 0 })));
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ outs: ['', ''] });
    expect(await cache.known('/ns', [SAVE, NFT])).toEqual({ gen: 1 });
  });

  it('iptables-legacy, a machine that cannot tell, or a failed question: always read', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 0 })));
    expect(await cache.known('/ns', [LEGACY])).toEqual({});
    expect(await new DumpCache({} as Machine).known('/ns', [SAVE])).toEqual({});
    const failing = new DumpCache({ nftState: async () => Promise.reject(new Error('no nf_tables')) } as unknown as Machine);
    expect(await failing.known('/ns', [SAVE])).toEqual({});
  });
});
