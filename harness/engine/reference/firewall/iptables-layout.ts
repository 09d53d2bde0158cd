// What every iptables layout shares: its backend (the host's iptables variant, IPv4; ip6tables
// beside it when a layout writes IPv6) and the editor it gets from the engine's plan for each
// operation. The layouts (docker-20.10.ts, docker-28.ts, …) say only which rules go where.
import type { RuleAccess } from '../../../rules/backend.js';
import { IptablesBackend } from '../../../rules/iptables/backend.js';
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import type { FirewallHost, FirewallOptions } from './types.js';

export abstract class IptablesLayout {
  protected readonly ipv4: IptablesBackend;
  /** ip6tables, for the layouts that write IPv6 rules (27+ enable ip6tables by default) */
  protected readonly ipv6?: IptablesBackend;
  private access?: RuleAccess;
  readonly enablesForwarding = true;

  constructor(host: FirewallHost, opts: { ipv6?: boolean } = {}) {
    this.ipv4 = new IptablesBackend(host.iptables, 'ipv4');
    if (opts.ipv6) this.ipv6 = new IptablesBackend(host.iptables, 'ipv6');
  }

  get backends(): IptablesBackend[] {
    return this.ipv6 ? [this.ipv4, this.ipv6] : [this.ipv4];
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

  /** The IPv6 editor (ip6tables) for the current batch; `rules` when called from a start. */
  protected ed6(rules?: RuleAccess): Promise<RuleEditor> {
    if (rules) this.access = rules;
    if (!this.ipv6) throw new Error(`${this.constructor.name} writes no IPv6 rules`);
    if (!this.access) throw new Error('firewall driver used before init()');
    return this.access.edit(this.ipv6);
  }
}
