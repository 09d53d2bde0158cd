// Rule dumps of a lab namespace, read again only when its rules changed. In an emulated guest
// every dump is a few hundred milliseconds of process starts, and a scenario dumps every Docker
// host after each phase. nftables stamps each committed change (iptables-nft's included) with a
// new generation, and the guest's agent reads it without a process: an unchanged generation
// means unchanged dumps, and a namespace without tables has empty iptables-nft dumps. Machines
// that cannot tell (this host: a dump costs milliseconds) and iptables-legacy always read.
import type { Machine } from '../machine/machine.js';
import type { Command } from '../rules/backend.js';

const NFT_BACKED = /^(ip6?tables-nft-save|nft)$/;
const IPTABLES_NFT_SAVE = /^ip6?tables-nft-save$/;

const key = (d: Command) => [d.file, ...d.args].join(' ');

export class DumpCache {
  private readonly byNs = new Map<string, { gen: number; outs: Map<string, string> }>();

  constructor(private readonly machine: Machine) {}

  /**
   * The dumps' outputs when the kernel says they cannot have changed (`outs`), else the
   * generation to `store` a fresh read under (read before it: a change during the read moves
   * the generation again, so a stored read is never taken for a later state).
   */
  async known(nsPath: string, dumps: Command[]): Promise<{ outs?: string[]; gen?: number }> {
    if (!this.machine.nftState || dumps.length === 0 || !dumps.every((d) => NFT_BACKED.test(d.file))) return {};
    const state = await this.machine.nftState(nsPath).catch(() => undefined);
    if (!state) return {};
    if (state.tables === 0 && dumps.every((d) => IPTABLES_NFT_SAVE.test(d.file))) return { outs: dumps.map(() => '') };
    const seen = this.byNs.get(nsPath);
    if (seen?.gen === state.gen && dumps.every((d) => seen.outs.has(key(d)))) return { outs: dumps.map((d) => seen.outs.get(key(d))!) };
    return { gen: state.gen };
  }

  store(nsPath: string, gen: number, dumps: Command[], outs: string[]): void {
    const seen = this.byNs.get(nsPath);
    const entry = seen?.gen === gen ? seen : { gen, outs: new Map<string, string>() };
    dumps.forEach((d, i) => entry.outs.set(key(d), outs[i]));
    this.byNs.set(nsPath, entry);
  }
}
