// A fingerprint of the namespace the tests start in: links, addresses, routes, forwarding
// sysctls and every rule set. A run must leave it exactly as it found it.
import { execa } from 'execa';

async function out(cmd: string, args: string[]): Promise<string> {
  const r = await execa(cmd, args, { reject: false });
  return `$ ${cmd} ${args.join(' ')}\n${r.stdout}\n${r.exitCode === 0 ? '' : `(exit ${r.exitCode})`}`;
}

export async function fingerprintStartingNamespace(): Promise<string> {
  const parts = await Promise.all([
    out('ip', ['-details', 'link', 'show']),
    out('ip', ['addr', 'show']),
    out('ip', ['route', 'show', 'table', 'all']),
    out('ip', ['rule', 'show']),
    out('sh', ['-c', 'for f in /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/forwarding /proc/sys/net/ipv4/conf/*/route_localnet /proc/sys/net/bridge/*; do echo "$f=$(cat $f 2>/dev/null)"; done']),
    out('iptables-save', []),
    out('sh', ['-c', 'command -v iptables-legacy-save >/dev/null && iptables-legacy-save || true']),
    out('sh', ['-c', 'command -v nft >/dev/null && nft list ruleset || true']),
  ]);
  // counters move with unrelated traffic; they are not state we could have changed
  return parts.join('\n').replace(/\[\d+:\d+\]/g, '[c]').replace(/packets \d+ bytes \d+/g, 'packets _ bytes _');
}

export async function labNamespaces(pid = process.pid): Promise<string[]> {
  const r = await execa('ip', ['netns', 'list'], { reject: false });
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter((n) => n.startsWith(`ncf-${pid}-`));
}
