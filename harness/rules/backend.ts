// The boundary between a firewall driver and the rules it writes, as netavark and moby draw
// it: a driver takes plain data (network, endpoint, port binding, link) and owns a rule
// backend; a backend knows how one kind of rule set (iptables, ip6tables, nftables) is read
// from a namespace, edited in memory and written back in one batch. The reference engine's
// plan (engine/reference/plan.ts) hands drivers their editors and writes what changed.

/** A program and its arguments, run inside a lab namespace. */
export interface Command {
  file: string;
  args: string[];
}

/** What a backend writes: a command fed with a batch on its standard input. */
export interface Write extends Command {
  input: string;
}

export interface RuleBackend<E> {
  /** for messages and bookkeeping: "iptables-nft", "ip6tables-legacy", "nft" */
  readonly name: string;
  /**
   * The command that prints the namespace's rules, read once per batch of edits (others, an
   * administrator, may change them between batches). Absent: the backend keeps its tables
   * in memory, as moby's nftables backend does with the tables it owns.
   */
  readonly dump?: Command;
  /** An editor over the rules as `dump` printed them (or over the backend's own tables). */
  edit(dump?: string): E;
  /** What writes the editor's changes, or undefined when nothing changed. */
  commit(editor: E): Write | undefined;
}

/** Where a firewall driver gets the editor of one of its backends (the reference engine's plan). */
export interface RuleAccess {
  edit<E>(backend: RuleBackend<E>): Promise<E>;
}

/** A command as one shell line (for scripts that run several in one process). */
export function shellLine(c: Command): string {
  return [c.file, ...c.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}
