// Kernel work the reference engine has decided on but not yet done. Operations only plan
// (namespaces to create, `ip` lines per namespace, sysctls, rule edits); apply() then does it
// all in a handful of processes: one `ip -batch` per namespace (in parallel where they are
// independent) and one iptables-restore (plus one ip6tables-restore for profiles that write
// IPv6 rules). Spawning processes, not the kernel, is what costs
// time, so this is what keeps a lab in the tens of milliseconds.
import type { Lab } from '../../lab/lab.js';
import { RuleEditor } from '../../rules/editor.js';
import { parseIptablesSave, serializeRuleset } from '../../rules/ruleset.js';

export class KernelPlan {
  private namespaces: string[] = [];
  private lines = new Map<string, string[]>();
  private sysctls = new Map<string, Record<string, string>>();
  private rules?: RuleEditor;
  private rulesDirty = false;
  /** ip6tables, for the profiles that write IPv6 rules (27+ by default); read only when asked for */
  private rules6?: RuleEditor;
  private rules6Read = '';
  /** each table as it was read, to load only the tables that changed */
  private tablesRead = new Map<string, string>();

  constructor(
    private readonly lab: Lab,
    private readonly hostNs: string,
  ) {}

  addNamespace(ns: string): void {
    this.namespaces.push(ns);
  }

  /** `ip` commands (without the leading "ip") to run inside a lab namespace, in order. */
  ip(ns: string, ...lines: string[]): void {
    let l = this.lines.get(ns);
    if (!l) this.lines.set(ns, (l = []));
    l.push(...lines);
  }

  sysctl(ns: string, key: string, value: string): void {
    let s = this.sysctls.get(ns);
    if (!s) this.sysctls.set(ns, (s = {}));
    s[key] = value;
  }

  /** Forget planned work for a namespace that will not be made after all (a refused container). */
  dropNamespace(ns: string, hostLinesMentioning: string[] = []): void {
    this.namespaces = this.namespaces.filter((n) => n !== ns);
    this.lines.delete(ns);
    this.sysctls.delete(ns);
    const host = this.lines.get(this.hostNs);
    if (host) this.lines.set(this.hostNs, host.filter((l) => !hostLinesMentioning.some((w) => l.includes(` ${w} `) || l.endsWith(` ${w}`))));
  }

  /** Start from rules already read (saves a process when the caller read them anyway). */
  seedRules(iptablesSave: string): void {
    this.read(iptablesSave);
  }

  private read(iptablesSave: string): RuleEditor {
    const rs = parseIptablesSave(iptablesSave);
    this.tablesRead = new Map(rs.map((t) => [t.name, serializeRuleset([t])]));
    return (this.rules = new RuleEditor(rs));
  }

  /**
   * The tables that differ from what was read, as iptables-restore input (a table it is not
   * given is left alone). Each table costs iptables-nft a commit and its kernel grace period,
   * and most later syncs (a link, a connect) change only filter.
   */
  private changedTables(): string | undefined {
    if (!this.rulesDirty || !this.rules) return undefined;
    const changed = this.rules.toRuleset().filter((t) => serializeRuleset([t]) !== this.tablesRead.get(t.name));
    return changed.length ? serializeRuleset(changed) : undefined;
  }

  /** The rule editor over the lab host's rules (read once; written back by apply()). */
  async editRules(): Promise<RuleEditor> {
    const rules = this.rules ?? this.read((await this.lab.exec(this.hostNs, 'iptables-save', [])).stdout);
    this.rulesDirty = true;
    return rules;
  }

  /** The rule editor over the lab host's ip6tables (read on first use; written back by apply()). */
  async editRules6(): Promise<RuleEditor> {
    if (!this.rules6) {
      const rs = parseIptablesSave((await this.lab.exec(this.hostNs, 'ip6tables-save', [])).stdout);
      this.rules6Read = serializeRuleset(rs);
      this.rules6 = new RuleEditor(rs);
    }
    return this.rules6;
  }

  /**
   * Do the planned work. `whenLinksReady` runs as soon as every namespace's links are
   * configured, while the host's rules may still be loading (what needs only the links, such
   * as a container's DNS resolver socket, need not wait for iptables-nft's grace periods).
   */
  async apply(whenLinksReady?: () => Promise<unknown>): Promise<void> {
    const lab = this.lab;
    const host = this.hostNs;
    const namespaces = this.namespaces;
    const lines = this.lines;
    const sysctls = this.sysctls;
    const rulesText = this.changedTables();
    const rules6 = this.rules6 ? serializeRuleset(this.rules6.toRuleset()) : undefined;
    const rules6Text = rules6 !== undefined && rules6 !== this.rules6Read ? rules6 : undefined;
    this.rules6 = undefined;
    this.namespaces = [];
    this.lines = new Map();
    this.sysctls = new Map();
    // Others (a scenario's administrator) may change rules between applies: read afresh next time.
    this.rules = undefined;
    this.rulesDirty = false;

    await lab.addNamespaces(namespaces);
    // The host's lines come first: they create the links the other namespaces then configure,
    // and the bridges whose sysctls are set. iptables-nft pays a kernel grace period (≈10 ms)
    // when it closes its netlink sockets, so the rules load while the containers' links are
    // configured (rules name interfaces; they need not exist yet). Loading them during the
    // host's batch instead slows both: they contend for the same kernel locks.
    await lab.ip(host, lines.get(host) ?? []);
    const links = async () => {
      await Promise.all([
        ...[...lines].filter(([ns]) => ns !== host).map(([ns, l]) => lab.ip(ns, l)),
        ...[...sysctls].map(([ns, s]) => lab.configure(ns, { sysctls: s })),
      ]);
      await whenLinksReady?.();
    };
    await Promise.all([
      rulesText !== undefined ? lab.configure(host, { iptablesRestore: rulesText }) : undefined,
      rules6Text !== undefined ? lab.exec(host, 'ip6tables-restore', [], { input: rules6Text }) : undefined,
      links(),
    ]);
  }
}
