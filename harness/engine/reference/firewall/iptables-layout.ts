// What every iptables layout shares: its backend (the host's iptables variant, IPv4; or
// ip6tables: the engine runs a second instance of a layout for IPv6, given the networks'
// IPv6 subnets and the containers' IPv6 addresses) and the editor it gets from the engine's plan for each
// operation. The layouts (docker-20.10.ts, docker-28.ts, …) say only which rules go where.
import type { RuleAccess } from '../../../rules/backend.js';
import { IptablesBackend } from '../../../rules/iptables/backend.js';
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import type { FirewallHost, FirewallOptions } from './types.js';

export abstract class IptablesLayout {
  /** the layout's backend: iptables, or ip6tables for the IPv6 instance (the name is historical) */
  protected readonly ipv4: IptablesBackend;
  protected readonly family: 'ipv4' | 'ipv6';
  /** ip6tables, for the layouts that write IPv6 rules (27+ enable ip6tables by default) */
  protected readonly ipv6?: IptablesBackend;
  private access?: RuleAccess;
  readonly enablesForwarding = true;

  constructor(host: FirewallHost, opts: { ipv6?: boolean } = {}) {
    this.family = host.family ?? 'ipv4';
    // the IPv6 instance writes through the IPv4 instance's ip6tables backend when it has one
    // (one editor, one ip6tables-restore per batch)
    this.ipv4 = host.backend ?? new IptablesBackend(host.iptables, this.family);
    if (opts.ipv6 && this.family === 'ipv4') this.ipv6 = new IptablesBackend(host.iptables, 'ipv6');
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

  /** the loopback network nat OUTPUT leaves to the userland proxy */
  protected get loopbackNet(): string {
    return this.family === 'ipv6' ? '::1/128' : '127.0.0.0/8';
  }

  /** The editor for the current batch of edits. */
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
