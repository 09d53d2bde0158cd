// The nftables backend: the parser of `nft -j list ruleset` held to nft's own text listing on
// the real kernel (every construct the engines' layouts and the scenarios' administrators
// write), the text parser, the table editor's rule groups, the backend's atomic replacement
// of a table it owns (leaving the administrator's alone), and rule checks on nft rule sets.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkRules } from '../harness/assert/rules.js';
import { Lab } from '../harness/lab/lab.js';
import { NftTableBackend, NFT_DUMP, parseNftDump } from '../harness/rules/nft/backend.js';
import { NftTableEditor } from '../harness/rules/nft/editor.js';
import { parseNftJson } from '../harness/rules/nft/json.js';
import { canonicalNftListing } from '../harness/rules/nft/listing.js';
import { normalizeNft, priorityValue } from '../harness/rules/nft/model.js';
import { parseNftText, tableText } from '../harness/rules/nft/text.js';
import type { HostRules } from '../harness/rules/snapshot.js';
import { MOBY_DIR } from './support/moby-fixture.js';
import { ReferenceEngine } from '../harness/engine/reference/engine.js';
import { EngineError } from '../harness/engine/types.js';

const isRoot = process.getuid?.() === 0;

// What Docker 29's layout writes (moby's usernet-portmap-noproxy and -lo documents together),
// plus what administrators write: their own table at another priority, sets, marks, tracing.
const SCRIPT = `
table ip docker-bridges {
  map filter-forward-in-jumps {
    type ifname : verdict
    elements = { "docker0" : jump filter-forward-in__docker0, "br-1a2b3c4d5e6f" : jump filter-forward-in__br-1a2b3c4d5e6f }
  }
  chain filter-FORWARD {
    type filter hook forward priority filter; policy accept;
    oifname vmap @filter-forward-in-jumps
  }
  chain nat-OUTPUT {
    type nat hook output priority -100; policy accept;
    ip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output
  }
  chain nat-POSTROUTING {
    type nat hook postrouting priority srcnat; policy accept;
    oifname != "docker0" ip saddr 172.17.0.0/16 counter masquerade comment "MASQUERADE"
    oifname != "br-1a2b3c4d5e6f" ip saddr 192.0.2.0/24 counter snat to 203.0.113.9 comment "SNAT"
    fib saddr type local counter masquerade comment "MASQUERADE FROM HOST"
    ip saddr 192.0.2.2 ip daddr 192.0.2.2 tcp dport 80 counter masquerade comment "MASQ TO OWN PORT"
  }
  chain nat-prerouting-and-output {
    iifname != "br-1a2b3c4d5e6f" ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment "DNAT"
    udp dport 5353 counter dnat to 192.0.2.3:53 comment "DNAT"
  }
  chain raw-PREROUTING {
    type filter hook prerouting priority raw; policy accept;
    ip daddr 192.0.2.2 iifname != "br-1a2b3c4d5e6f" counter drop comment "DROP DIRECT ACCESS"
    iifname != "lo" ip daddr 127.0.0.1 tcp dport 8080 counter drop comment "DROP REMOTE LOOPBACK"
  }
  chain filter-forward-in__docker0 {
    ct state established,related counter accept
    ip saddr 172.17.0.2 ip daddr 172.17.0.3 tcp dport 5432 counter accept
    ip saddr 172.17.0.3 tcp sport 5432 ip daddr 172.17.0.2 counter accept
    iifname "docker0" counter drop comment "ICC"
    counter drop comment "UNPUBLISHED PORT DROP"
  }
  chain filter-forward-in__br-1a2b3c4d5e6f {
    iifname != "br-1a2b3c4d5e6f" counter drop comment "INTERNAL NETWORK INGRESS"
  }
}
table inet admin {
  set blocked {
    type ipv4_addr
    elements = { 198.51.100.8, 198.51.100.9 }
  }
  chain forward {
    type filter hook forward priority -1; policy accept;
    meta mark 0x00000001 counter accept
    ip saddr @blocked counter drop
    iifname "eth0" oifname "br-*" ip saddr != 192.0.2.0/24 counter drop
    tcp dport { 22, 8080 } meta nftrace set 1
    ip protocol icmp limit rate 10/second accept
    tcp flags syn log prefix "admin: " counter reject with tcp reset
  }
}
`;

describe('nft text parser and listings', () => {
  it('reads every document of moby nftablesdoc that the fidelity spec uses, and writes it back the same', () => {
    const dir = join(MOBY_DIR, 'docker-29-nftables');
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.nft'))) {
      const rs = parseNftText(readFileSync(join(dir, f), 'utf8'));
      expect(rs.map((t) => `${t.family} ${t.name}`), f).toEqual(['ip docker-bridges']);
      expect(rs[0].chains.find((c) => c.name === 'filter-FORWARD')?.base, f).toEqual({ type: 'filter', hook: 'forward', priority: 0, policy: 'accept' });
      expect(parseNftText(tableText(rs[0])), f).toEqual(rs);
    }
  });

  it('takes priorities by name or figure, per family', () => {
    expect(priorityValue('dstnat', 'ip')).toBe(-100);
    expect(priorityValue('filter - 1', 'inet')).toBe(-1);
    expect(priorityValue('-300', 'ip')).toBe(-300);
    expect(priorityValue('filter', 'bridge')).toBe(-200);
    expect(() => priorityValue('soon', 'ip')).toThrow(/unknown nftables priority/);
  });

  it('says which line it cannot read', () => {
    expect(() => parseNftText('table ip t {\n  bogus\n}\n')).toThrow(/line 2: expected "chain NAME \{"/);
    expect(() => parseNftText('table ip t {\n  chain c {\n')).toThrow(/unterminated/);
  });

  it('spells a rule one way: counters without figures, words unquoted, no handle', () => {
    expect(normalizeNft('iifname "docker0"  counter packets 12 bytes 720 accept comment "ICC" # handle 7')).toBe('iifname docker0 counter accept comment ICC');
    expect(normalizeNft('counter drop comment "UNPUBLISHED PORT DROP"')).toBe('counter drop comment "UNPUBLISHED PORT DROP"');
  });
});

describe('the nft table editor', () => {
  it('lists a chain group by group, each group in the order rules were added (moby rule groups)', () => {
    const t = new NftTableEditor('ip', 'x');
    t.addChain('c');
    t.addRule('c', 5, 'counter drop');
    t.addRule('c', 0, 'ct state established,related counter accept');
    t.addRule('c', 4, 'ip daddr 192.0.2.2 tcp dport 80 counter accept');
    t.addRule('c', 4, 'ip daddr 192.0.2.3 tcp dport 80 counter accept');
    t.addRule('c', 4, 'ip daddr 192.0.2.2 tcp dport 80 counter accept', { ignoreExist: true });
    expect(() => t.addRule('c', 0, 'ct state established,related counter accept')).toThrow(/rule exists/);
    expect(t.toTable().chains[0].rules).toEqual([
      'ct state established,related counter accept',
      'ip daddr 192.0.2.2 tcp dport 80 counter accept',
      'ip daddr 192.0.2.3 tcp dport 80 counter accept',
      'counter drop',
    ]);
    expect(() => t.deleteChain('c')).toThrow(/not empty/);
    expect(t.deleteRule('c', 4, 'ip daddr 192.0.2.9 tcp dport 80 counter accept')).toBe(false);
  });
});

describe('rule checks on nftables rule sets', () => {
  const rules: HostRules = { iptables: [], nft: parseNftText(SCRIPT) };
  const chain = { family: 'ip', table: 'docker-bridges', chain: 'filter-forward-in__docker0' };

  it('passes contains in order, absent, exact, policy, and set elements in any order', () => {
    expect(checkRules(rules, { ...chain, contains: ['ct state established,related counter accept', 'counter drop comment "UNPUBLISHED PORT DROP"'] }).ok).toBe(true);
    expect(checkRules(rules, { ...chain, absent: ['iifname docker0 counter accept comment ICC'] }).ok).toBe(true);
    expect(checkRules(rules, { family: 'ip', table: 'docker-bridges', chain: 'filter-FORWARD', exact: ['oifname vmap @filter-forward-in-jumps'], policy: 'accept' }).ok).toBe(true);
    expect(checkRules(rules, { family: 'inet', table: 'admin', set: 'blocked', exact: ['198.51.100.9', '198.51.100.8'] }).ok).toBe(true);
    expect(checkRules(rules, { family: 'ip', table: 'docker-bridges', set: 'filter-forward-in-jumps', contains: ['docker0 : jump filter-forward-in__docker0'] }).ok).toBe(true);
    expect(checkRules(rules, { family: 'ip', table: 'docker-nothing', exists: false }).ok).toBe(true);
  });

  it('fails with a readable diff when a rule is missing', () => {
    const r = checkRules(rules, { ...chain, contains: ['ct state established,related counter accept', 'ip daddr 172.17.0.9 tcp dport 80 counter accept'] });
    expect(r.ok).toBe(false);
    expect(r.message).toBe('rule missing from ip docker-bridges/filter-forward-in__docker0: ip daddr 172.17.0.9 tcp dport 80 counter accept');
    expect(r.diff).toContain('--- expected');
    expect(r.diff).toContain('+++ actual (ip docker-bridges/filter-forward-in__docker0)');
    expect(r.diff).toMatch(/^-ip daddr 172\.17\.0\.9 tcp dport 80 counter accept$/m);
    expect(r.diff).toMatch(/^\+counter drop comment "UNPUBLISHED PORT DROP"$/m);
  });

  it('writes and compares golden files of nftables chains', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncf-golden-'));
    try {
      const golden = join(dir, 'in.nft');
      expect(checkRules(rules, { ...chain, golden }).message).toMatch(/does not exist \(write it with --update-golden\)/);
      expect(checkRules(rules, { ...chain, golden }, { updateGolden: true }).ok).toBe(true);
      expect(readFileSync(golden, 'utf8')).toContain('counter drop comment "UNPUBLISHED PORT DROP"\n');
      expect(checkRules(rules, { ...chain, golden }).ok).toBe(true);
      const fewer: HostRules = { iptables: [], nft: parseNftText(SCRIPT.replace('    iifname "docker0" counter drop comment "ICC"\n', '')) };
      const r = checkRules(fewer, { ...chain, golden });
      expect(r.message).toBe(`ip docker-bridges/filter-forward-in__docker0 differs from golden file ${golden}`);
      expect(r.diff).toMatch(/^-iifname docker0 counter drop comment ICC$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails on a missing element, a wrong policy, a table that should not exist, and a rule set never read', () => {
    expect(checkRules(rules, { family: 'inet', table: 'admin', set: 'blocked', contains: ['198.51.100.7'] }).message).toBe('element missing from inet admin @blocked: 198.51.100.7');
    expect(checkRules(rules, { family: 'inet', table: 'admin', chain: 'forward', policy: 'drop' }).message).toBe('policy of inet admin/forward is accept, expected drop');
    expect(checkRules(rules, { family: 'inet', table: 'admin', exists: false }).message).toMatch(/^table inet admin exists, but should not \(it has 1 chains\)/);
    expect(checkRules({ iptables: [] }, { ...chain, contains: ['counter drop'] }).message).toMatch(/no nftables rule set was read/);
  });
});

describe.skipIf(!isRoot)('nft -j list ruleset on the real kernel', () => {
  const labs: Lab[] = [];
  afterAll(() => Promise.all(labs.map((l) => l.destroy())));
  const lab = async () => {
    const l = Lab.create();
    labs.push(l);
    await l.addNamespaces(['h']);
    return l;
  };

  it('the nftables layout never enables forwarding: it refuses to start without it, as Docker 29 does', async () => {
    const daemon = { icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true };
    const host = async (forward: string) => {
      const l = await lab();
      await l.setSysctls('h', { 'net.ipv4.ip_forward': forward });
      return l;
    };
    const run = async (l: Lab, profile: 'docker-29' | 'docker-29-nftables', d: typeof daemon) => {
      const e = new ReferenceEngine(profile);
      try {
        await e.start({ lab: l, hostNs: 'h', daemon: d, iptables: 'nft', log: () => {} });
        await e.sync();
      } finally {
        await e.stop();
      }
    };
    const refused = run(await host('0'), 'docker-29-nftables', daemon);
    await expect(refused).rejects.toThrow(EngineError);
    await expect(refused).rejects.toThrow(/IPv4 forwarding is disabled: .* set sysctl net.ipv4.ip_forward=1, or disable this check using daemon option --ip-forward=false/);
    // with --ip-forward=false it starts, and forwarding stays off
    const off = await host('0');
    await run(off, 'docker-29-nftables', { ...daemon, 'ip-forward': false });
    expect(await off.getSysctl('h', 'net.ipv4.ip_forward')).toBe('0');
    // while the iptables layout turns it on itself (and closes FORWARD)
    const on = await host('0');
    await run(on, 'docker-29', daemon);
    expect(await on.getSysctl('h', 'net.ipv4.ip_forward')).toBe('1');
    expect((await on.exec('h', 'iptables-nft-save', ['-t', 'filter'])).stdout).toContain(':FORWARD DROP');
  });

  it('renders every rule as nft lists it', async () => {
    const l = await lab();
    await l.exec('h', 'nft', ['-f', '-'], { input: SCRIPT });
    const text = parseNftText((await l.exec('h', 'nft', ['list', 'ruleset'])).stdout.replace(/^# Warning.*$/gm, ''));
    const json = parseNftJson((await l.exec('h', NFT_DUMP.file, NFT_DUMP.args)).stdout);
    const tables = [
      { family: 'ip', name: 'docker-bridges' },
      { family: 'inet', name: 'admin' },
    ];
    expect(canonicalNftListing(json, tables)).toBe(canonicalNftListing(text, tables));
    // and the listing is not empty words: the rules are there, figures and all
    expect(canonicalNftListing(json, tables)).toContain('  iifname != br-1a2b3c4d5e6f ip daddr 127.0.0.1 tcp dport 8080 counter dnat to 192.0.2.2:80 comment DNAT');
    expect(canonicalNftListing(json, tables)).toContain('  tcp dport { 22, 8080 } meta nftrace set 1');
  });

  it('replaces a table it owns in one transaction and leaves the others (iptables-nft\'s, the administrator\'s, the harness\'s) alone', async () => {
    const l = await lab();
    await l.exec('h', 'iptables-nft', ['-A', 'FORWARD', '-s', '198.51.100.8', '-j', 'DROP']);
    await l.exec('h', 'nft', ['-f', '-'], { input: 'table inet admin {\n chain forward {\n type filter hook forward priority -1; policy accept;\n ip saddr 198.51.100.9 drop\n }\n}\ntable inet netconform-trace {\n}\n' });
    const backend = new NftTableBackend('ip', 'docker-bridges');
    const t = backend.edit();
    t.baseChain('filter-FORWARD', { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' });
    t.addMap('filter-forward-in-jumps', 'ifname : verdict');
    t.addRule('filter-FORWARD', 0, 'oifname vmap @filter-forward-in-jumps');
    for (let round = 0; round < 2; round++) {
      const w = backend.commit(t)!;
      await l.exec('h', w.file, w.args, { input: w.input });
      t.addChain(`c${round}`);
      t.addElement('filter-forward-in-jumps', `"br${round}"`, `jump c${round}`);
    }
    expect(backend.commit(t)).toBeDefined();
    expect(backend.commit(t)).toBeUndefined(); // nothing changed since
    const rs = parseNftDump((await l.exec('h', NFT_DUMP.file, NFT_DUMP.args)).stdout);
    expect(rs.map((x) => `${x.family} ${x.name}`).sort()).toEqual(['inet admin', 'ip docker-bridges']);
    expect(rs.find((x) => x.name === 'docker-bridges')!.sets[0].elements).toEqual(['"br0" : jump c0']);
    expect(rs.find((x) => x.name === 'admin')!.chains[0].rules).toEqual(['ip saddr 198.51.100.9 drop']);
    // iptables-nft's table is still there, read through iptables-save
    expect((await l.exec('h', 'iptables-nft-save', [])).stdout).toContain('-A FORWARD -s 198.51.100.8/32 -j DROP');
  });
});
