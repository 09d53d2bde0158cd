// When a guest reads a namespace's rules again: only when the kernel's nftables generation
// moved, and never for a family without tables (the guest's agent reads both; microvm.spec
// proves it on a real guest kernel).
import { describe, expect, it } from 'vitest';
import { DumpCache } from '../harness/lab/dump-cache.js';
import type { Machine, NftState } from '../harness/machine/machine.js';

const SAVE = { file: 'iptables-nft-save', args: [] };
const SAVE6 = { file: 'ip6tables-nft-save', args: [] };
const NFT = { file: 'nft', args: ['-j', 'list', 'ruleset'] };
const LEGACY = { file: 'iptables-legacy-save', args: [] };

/** `tables` of family ip and ip6 each, unless given */
function machineWith(state: () => { gen: number; tables: number; ipTables?: number; ip6Tables?: number }): Machine {
  return { nftState: async (): Promise<NftState> => ({ ipTables: state().tables, ip6Tables: state().tables, ...state() }) } as unknown as Machine;
}

describe('rule dumps read again only when the rules changed', () => {
  it('an unchanged generation gives the stored dumps; a new one asks for a read', async () => {
    let gen = 7;
    const cache = new DumpCache(machineWith(() => ({ gen, tables: 3 })));
    const first = await cache.known('/ns', [SAVE, SAVE6]);
    expect(first).toEqual({ gen: 7, outs: [undefined, undefined] });
    cache.store('/ns', 7, [SAVE, SAVE6], ['*filter v4', '*filter v6']);
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 7, outs: ['*filter v4', '*filter v6'] });
    gen = 8;
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 8, outs: [undefined, undefined] });
  });

  it('a dump not read at that generation is read; namespaces are apart', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 2 })));
    cache.store('/ns', 1, [SAVE], ['v4']);
    expect(await cache.known('/ns', [SAVE, NFT])).toEqual({ gen: 1, outs: ['v4', undefined] });
    expect(await cache.known('/other', [SAVE])).toEqual({ gen: 1, outs: [undefined] });
  });

  it('no tables: iptables-nft dumps are empty without a read; nft -j still reads (it prints metainfo)', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 0 })));
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 1, outs: ['', ''] });
    expect(await cache.known('/ns', [SAVE, NFT])).toEqual({ gen: 1, outs: ['', undefined] });
  });

  it('a family without tables has an empty dump, the other is read (ip6tables unused beside iptables rules)', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 4, tables: 3, ipTables: 3, ip6Tables: 0 })));
    expect(await cache.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 4, outs: [undefined, ''] });
    const v6only = new DumpCache(machineWith(() => ({ gen: 4, tables: 1, ipTables: 0, ip6Tables: 1 })));
    expect(await v6only.known('/ns', [SAVE, SAVE6])).toEqual({ gen: 4, outs: ['', undefined] });
  });

  it('iptables-legacy, a machine that cannot tell, or a failed question: always read', async () => {
    const cache = new DumpCache(machineWith(() => ({ gen: 1, tables: 0 })));
    expect(await cache.known('/ns', [LEGACY])).toEqual({});
    expect(await new DumpCache({} as Machine).known('/ns', [SAVE])).toEqual({});
    const failing = new DumpCache({ nftState: async () => Promise.reject(new Error('no nf_tables')) } as unknown as Machine);
    expect(await failing.known('/ns', [SAVE])).toEqual({});
  });
});
