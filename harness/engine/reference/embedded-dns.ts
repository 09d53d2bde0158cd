// The embedded DNS of user-defined networks, as Docker 20.10 sets it up: a resolver socket
// on 127.0.0.11:<random port> in the container's network namespace (held by refd), and NAT
// rules in the container's own namespace that send 127.0.0.11:53 there and make the answers
// come from port 53 (libnetwork resolver_unix.go): in its iptables nat table, or with the
// nftables backend (Docker 29) in a table `ip docker-dns` of its own (setupNftablesNAT). Only
// UDP is served: no probe needs DNS over TCP, so no TCP rules are written either.
import type { Lab } from '../../lab/lab.js';
import type { Write } from '../../rules/backend.js';
import type { IptablesTools } from '../../rules/iptables/tools.js';
import type { FirewallBackend } from '../../targets.js';
import type { Refd } from './refd.js';

interface Resolver {
  sock: number;
  port: number;
  table: string; // last table sent, to skip unchanged ones
}

export function resolverRules(udpPort: number): string {
  return [
    '*nat',
    ':PREROUTING ACCEPT [0:0]',
    ':INPUT ACCEPT [0:0]',
    ':OUTPUT ACCEPT [0:0]',
    ':POSTROUTING ACCEPT [0:0]',
    ':DOCKER_OUTPUT - [0:0]',
    ':DOCKER_POSTROUTING - [0:0]',
    '-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT',
    '-A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING',
    `-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:${udpPort}`,
    `-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport ${udpPort} -j SNAT --to-source :53`,
    'COMMIT',
    '',
  ].join('\n');
}

/** The same NAT as Docker 29's nftables backend writes it (priorities as figures: nft 1.0 wants them at the output hook). */
export function nftResolverRules(udpPort: number): string {
  return [
    'table ip docker-dns {',
    '  chain dns-dnat {',
    '    type nat hook output priority -100; policy accept;',
    `    ip daddr 127.0.0.11 udp dport 53 counter dnat to 127.0.0.11:${udpPort}`,
    '  }',
    '  chain dns-snat {',
    '    type nat hook postrouting priority 100; policy accept;',
    `    ip saddr 127.0.0.11 udp sport ${udpPort} counter snat to :53`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The write that sets a container's resolver NAT up, with the engine's rule backend. */
export function resolverWrite(backend: FirewallBackend, iptables: IptablesTools, udpPort: number): Write {
  return backend === 'nftables' ? { file: 'nft', args: ['-f', '-'], input: nftResolverRules(udpPort) } : { file: iptables.restore, args: [], input: resolverRules(udpPort) };
}

export class EmbeddedDns {
  private readonly resolvers = new Map<string, Resolver>(); // by lab namespace of the container
  private wanted = new Set<string>();

  constructor(
    private readonly lab: Lab,
    private readonly refd: () => Promise<Refd>,
    /** the rule backend the engine writes with, and the host's iptables variant (used in the containers' namespaces too) */
    private readonly backend: FirewallBackend,
    private readonly iptables: IptablesTools,
  ) {}

  /** A container namespace that needs a resolver (set up by the next apply). */
  want(ns: string): void {
    if (!this.resolvers.has(ns)) this.wanted.add(ns);
  }

  has(ns: string): boolean {
    return this.resolvers.has(ns) || this.wanted.has(ns);
  }

  async drop(ns: string): Promise<void> {
    this.wanted.delete(ns);
    const r = this.resolvers.get(ns);
    if (!r) return;
    this.resolvers.delete(ns);
    await (await this.refd()).closeResolver(r.sock);
  }

  /** Open the wanted resolvers (their namespaces exist now), then send every changed table. */
  async apply(tables: (ns: string) => Map<string, string[]>): Promise<void> {
    const opening = [...this.wanted];
    this.wanted = new Set();
    if (opening.length === 0 && this.resolvers.size === 0) return;
    const refd = await this.refd();
    await Promise.all(
      opening.map(async (ns) => {
        const { sock, port } = await refd.openResolver(this.lab.nsPath(ns));
        this.resolvers.set(ns, { sock, port, table: '' });
        await this.lab.configure(ns, { load: resolverWrite(this.backend, this.iptables, port) });
      }),
    );
    await Promise.all(
      [...this.resolvers].map(async ([ns, r]) => {
        const names = tables(ns);
        const text = JSON.stringify([...names]);
        if (text === r.table) return;
        r.table = text;
        await refd.setNames(r.sock, names);
      }),
    );
  }
}
