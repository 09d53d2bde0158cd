// What the guest can do (its kernel's features, its iptables), found by trying in the guest
// and kept beside the saved guest it was found in: the next run restores the same kernel with
// the same modules, so it reads them back instead of spending a few seconds of emulated
// processes. The tools come from this machine's root, so their files are part of the key.
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { detectCapabilities, iptablesVersion, type Capability } from '../lab/capabilities.js';
import { onMachine } from '../machine/machine.js';
import type { Guest } from './guest.js';

export interface GuestCapabilities {
  capabilities: Capability[];
  iptables: string;
  /** read from the cache beside the saved guest */
  cached: boolean;
}

/** The programs whose answers the capabilities depend on (the guest sees this machine's root). */
const TOOLS = ['/usr/sbin/ip', '/usr/sbin/iptables', '/usr/sbin/nft', '/usr/sbin/xtables-nft-multi', '/usr/sbin/xtables-legacy-multi', '/usr/sbin/genl', '/usr/sbin/ovs-vswitchd', '/usr/sbin/ovsdb-server', '/usr/bin/ovs-vsctl', '/usr/bin/ovsdb-tool'];

function toolsKey(): string {
  const h = createHash('sha256');
  for (const t of TOOLS) {
    try {
      const st = statSync(t);
      h.update(`${t} ${st.size} ${st.mtimeMs}\n`);
    } catch {
      h.update(`${t} -\n`);
    }
  }
  return h.digest('hex').slice(0, 16);
}

export async function guestCapabilities(g: Guest): Promise<GuestCapabilities> {
  const file = g.snapshot ? `${g.snapshot}.caps-${toolsKey()}.json` : undefined;
  if (file && existsSync(file)) {
    try {
      return { ...(JSON.parse(readFileSync(file, 'utf8')) as Omit<GuestCapabilities, 'cached'>), cached: true };
    } catch {
      /* unreadable: found again below */
    }
  }
  const found = await onMachine(g.machine!, async () => ({ capabilities: await detectCapabilities(), iptables: await iptablesVersion() }));
  if (file) {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(found));
    renameSync(tmp, file);
  }
  return { ...found, cached: false };
}
