// The lab's own tracing table, loaded into every Docker host namespace: base chains of its
// own (never a rule in the engine's chains, so rule-set assertions, dumps and the engine
// comparison never see it) that mark probe packets for nftables tracing before any table of
// the engine sees them, and two chains at the very end of the postrouting and input hooks
// whose trace events say the packet left the host (and through which interface, after NAT)
// or was delivered to one of its sockets.
//
// Only the packets that start a probe are marked: a TCP SYN, a UDP datagram carrying the
// probe agent's "probe " payload, an ICMP echo request. Replies, DNS and the engines' own
// traffic stay untraced, which keeps the monitors' work to a few events per probe and host.

export const TRACE_TABLE = 'netconform_trace';
/** chains of the table, by what their events mean */
export const CHAIN = { pre: 'pre', out: 'out', left: 'left', delivered: 'delivered' } as const;

// Before raw (-300) and conntrack (-200): a DROP in raw PREROUTING (Docker 28's direct-access
// drop) is seen. After srcnat (100) and every filter priority: the packet as it leaves.
const FIRST = -350;
const LAST = 500;

const MARK = [
  'meta nfproto ipv4 tcp flags & (syn | ack) == syn meta nftrace set 1',
  'meta nfproto ipv4 udp length > 14 @th,64,48 0x70726f626520 meta nftrace set 1', // "probe "
  'meta nfproto ipv4 icmp type echo-request meta nftrace set 1',
];

/** An nft script that (re)creates the table in one transaction: loading it twice is harmless. */
export function traceTableScript(): string {
  const chain = (name: string, hook: string, priority: number, rules: string[]) =>
    [`  chain ${name} {`, `    type filter hook ${hook} priority ${priority}; policy accept;`, ...rules.map((r) => `    ${r}`), '  }'].join('\n');
  return [
    `table inet ${TRACE_TABLE}`,
    `delete table inet ${TRACE_TABLE}`,
    `table inet ${TRACE_TABLE} {`,
    chain(CHAIN.pre, 'prerouting', FIRST, MARK),
    chain(CHAIN.out, 'output', FIRST, MARK),
    chain(CHAIN.left, 'postrouting', LAST, []),
    chain(CHAIN.delivered, 'input', LAST, []),
    '}',
    '',
  ].join('\n');
}

export const DELETE_TRACE_TABLE = `delete table inet ${TRACE_TABLE}\n`;
