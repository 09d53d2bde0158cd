// Rule dumps of a lab namespace, read again only when its rules changed. In an emulated guest
// every dump is a few hundred milliseconds of process starts, and a scenario dumps every Docker
// host after each phase. nftables stamps each committed change (iptables-nft's included) with a
// new generation, and the guest's agent reads it without a process: an unchanged generation
// means unchanged dumps, and a family without tables (ip6, when nothing writes ip6tables) has
// an empty iptables-nft dump. Machines that cannot tell (this host: a dump costs milliseconds)
// and iptables-legacy always read.
import type { Machine, NftState } from '../machine/machine.js';
import type { Command } from '../rules/backend.js';

const NFT_BACKED = /^(ip6?tables-nft-save|nft)$/;

const key = (d: Command) => [d.file, ...d.args].join(' ');

/** An iptables-nft dump of a family without tables prints nothing. */
function emptyFamily(d: Command, state: NftState): boolean {
  return (d.file === 'iptables-nft-save' && state.ipTables === 0) || (d.file === 'ip6tables-nft-save' && state.ip6Tables === 0);
}

export class DumpCache {
  private readonly byNs = new Map<string, { gen: number; outs: Map<string, string> }>();

  constructor(private readonly machine: Machine) {}

  /**
   * The dumps' outputs the kernel says cannot have changed, or are empty (`outs`, undefined
   * where a dump must be read), and the generation to `store` fresh reads under (read before
   * them: a change during the read moves the generation again, so a stored read is never taken
   * for a later state). Nothing known: {}.
   */
  async known(nsPath: string, dumps: Command[]): Promise<{ outs?: (string | undefined)[]; gen?: number }> {
    if (!this.machine.nftState || dumps.length === 0 || !dumps.every((d) => NFT_BACKED.test(d.file))) return {};
    const state = await this.machine.nftState(nsPath).catch(() => undefined);
    if (!state) return {};
    const seen = this.byNs.get(nsPath);
    const unchanged = seen?.gen === state.gen;
    return { outs: dumps.map((d) => (emptyFamily(d, state) ? '' : unchanged ? seen!.outs.get(key(d)) : undefined)), gen: state.gen };
  }

  store(nsPath: string, gen: number, dumps: Command[], outs: string[]): void {
    const seen = this.byNs.get(nsPath);
    const entry = seen?.gen === gen ? seen : { gen, outs: new Map<string, string>() };
    dumps.forEach((d, i) => entry.outs.set(key(d), outs[i]));
    this.byNs.set(nsPath, entry);
  }
}
