// The iptables rule backend: read with <variant>-save, edit in memory with iptables semantics
// (editor.ts), write the tables that changed with one <variant>-restore. One backend per
// address family (iptables, ip6tables) and per variant (nft, legacy).
import type { RuleBackend, Write } from '../backend.js';
import { RuleEditor } from './editor.js';
import { parseIptablesSave } from './save.js';
import { iptablesTools, type AddressFamily, type IptablesTools, type IptablesVariant } from './tools.js';

export class IptablesBackend implements RuleBackend<RuleEditor> {
  readonly tools: IptablesTools;

  constructor(variant: IptablesVariant, family: AddressFamily = 'ipv4') {
    this.tools = iptablesTools(variant, family);
  }

  get name(): string {
    return this.tools.iptables;
  }

  get dump() {
    return { file: this.tools.save, args: [] };
  }

  edit(dump = ''): RuleEditor {
    return new RuleEditor(parseIptablesSave(dump));
  }

  commit(editor: RuleEditor): Write | undefined {
    const input = editor.changes();
    return input === undefined ? undefined : { file: this.tools.restore, args: [], input };
  }
}
