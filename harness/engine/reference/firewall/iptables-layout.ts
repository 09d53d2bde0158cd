// What every iptables layout shares: its backend (the host's iptables variant, IPv4; ip6tables
// beside it when a layout writes IPv6) and the editor it gets from the engine's plan for each
// operation. The layouts (docker-20.10.ts, docker-28.ts, …) say only which rules go where.
import type { RuleAccess } from '../../../rules/backend.js';
import { IptablesBackend } from '../../../rules/iptables/backend.js';
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import type { FirewallHost, FirewallOptions } from './types.js';

export abstract class IptablesLayout {
  protected readonly ipv4: IptablesBackend;
  private access?: RuleAccess;
  readonly enablesForwarding = true;

  constructor(host: FirewallHost) {
    this.ipv4 = new IptablesBackend(host.iptables, 'ipv4');
  }

  get backends(): IptablesBackend[] {
    return [this.ipv4];
  }

  /** Remember where the editors come from; Docker closes FORWARD when it enabled forwarding. */
  protected async begin(rules: RuleAccess, opts: FirewallOptions): Promise<RuleEditor> {
    this.access = rules;
    const ed = await this.ed();
    if (opts.enabledForwarding) ed.setPolicy('filter', 'FORWARD', 'DROP');
    return ed;
  }

  /** The IPv4 editor for the current batch of edits. */
  protected ed(): Promise<RuleEditor> {
    if (!this.access) throw new Error('firewall driver used before init()');
    return this.access.edit(this.ipv4);
  }
}
