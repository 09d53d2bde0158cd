// Kernel work the reference engine has decided on but not yet done. Operations only plan
// (namespaces to create, `ip` lines per namespace, sysctls, rule edits); apply() then does it
// all in a handful of processes: one `ip -batch` per namespace (in parallel where they are
// independent) and one write per rule backend that changed (iptables-restore, nft -f).
// Spawning processes, not the kernel, is what costs time, so this is what keeps a lab in the
// tens of milliseconds. The plan hands the firewall driver its backends' editors (RuleAccess):
// read once per batch, written back by apply().
import type { Lab } from '../../lab/lab.js';
import type { RuleAccess, RuleBackend } from '../../rules/backend.js';

export class KernelPlan implements RuleAccess {
  private namespaces: string[] = [];
  private lines = new Map<string, string[]>();
  private sysctls = new Map<string, Record<string, string>>();
  /** the editors handed out in this batch, by backend */
  private editors = new Map<RuleBackend<unknown>, unknown>();

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

  /** Start a backend's batch from a dump already read (saves a process when the caller read it anyway). */
  seed<E>(backend: RuleBackend<E>, dump: string): void {
    this.editors.set(backend, backend.edit(dump));
  }

  /** The editor of a backend for this batch: read once (unless it keeps its own tables), written back by apply(). */
  async edit<E>(backend: RuleBackend<E>): Promise<E> {
    if (this.editors.has(backend)) return this.editors.get(backend) as E;
    const dump = backend.dump ? (await this.lab.exec(this.hostNs, backend.dump.file, backend.dump.args)).stdout : undefined;
    // a concurrent caller may have read it meanwhile: one editor per batch
    if (!this.editors.has(backend)) this.editors.set(backend, backend.edit(dump));
    return this.editors.get(backend) as E;
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
    const writes = [...this.editors].flatMap(([backend, editor]) => backend.commit(editor) ?? []);
    this.namespaces = [];
    this.lines = new Map();
    this.sysctls = new Map();
    // Others (a scenario's administrator) may change rules between applies: read afresh next time.
    this.editors = new Map();

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
    await Promise.all([...writes.map((w) => lab.configure(host, { load: w })), links()]);
  }
}
