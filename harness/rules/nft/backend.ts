// The nftables rule backend of a table a driver owns: edited in memory (editor.ts), written
// with one `nft -f -` that replaces the whole table atomically when it changed. And the
// reading of a namespace's nft rule set for dumps and assertions (`nft -j list ruleset`),
// leaving out the tables that are not a container engine's nor an administrator's.
import type { Command, RuleBackend, Write } from '../backend.js';
import { NftTableEditor } from './editor.js';
import type { NftFamily, NftRuleset } from './model.js';
import { parseNftJson } from './json.js';
import { deleteTableScript, replaceTableScript } from './text.js';

export class NftTableBackend implements RuleBackend<NftTableEditor> {
  private readonly editor: NftTableEditor;
  /** the table is to go (written as a delete) */
  private dropped = false;

  constructor(family: NftFamily, table: string) {
    this.editor = new NftTableEditor(family, table);
  }

  get name(): string {
    return `nft ${this.editor.family} ${this.editor.name}`;
  }

  edit(): NftTableEditor {
    this.dropped = false;
    return this.editor;
  }

  /** The table goes from the kernel at the next commit (an engine that stops writing rules). */
  drop(): void {
    this.dropped = true;
    this.editor.dirty = true;
  }

  commit(editor: NftTableEditor): Write | undefined {
    if (!editor.dirty) return undefined;
    editor.dirty = false;
    const t = editor.toTable();
    return { file: 'nft', args: ['-f', '-'], input: this.dropped ? deleteTableScript(t) : replaceTableScript(t) };
  }
}

/** `nft -j list ruleset`: the whole nftables rule set of the namespace it runs in. */
export const NFT_DUMP: Command = { file: 'nft', args: ['-j', 'list', 'ruleset'] };

// Tables iptables-nft (and ebtables/arptables-nft) manage: their rules are read through
// iptables-save, in iptables' own terms. Issue 14's packet tracing adds a table of its own
// (named netconform…): tooling of the harness, not the host's rules.
const XTABLES = new Set(['filter', 'nat', 'raw', 'mangle', 'security', 'broute']);

/** Whether a table is the host's rule set proper: an engine's or an administrator's. */
export function isHostTable(t: { family: string; name: string }): boolean {
  if (t.name.startsWith('netconform')) return false;
  return !(['ip', 'ip6', 'arp', 'bridge'].includes(t.family) && XTABLES.has(t.name));
}

/** The model of a `nft -j list ruleset` dump, without iptables-nft's and the harness's tables. */
export function parseNftDump(json: string): NftRuleset {
  return json.trim() ? parseNftJson(json).filter(isHostTable) : [];
}
