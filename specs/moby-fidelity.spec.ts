// The docker-28 and docker-29 profiles against Moby's own documents: for each scenario Moby's
// generated iptables documentation describes (new daemon, user network with a published port,
// port on 127.0.0.1, no userland proxy, enable_icc=false, internal networks), the reference
// engine builds the same thing in a lab, the lab host's iptables-save is read back, both sides
// are normalized (bridge names, subnets, addresses) and must match rule for rule. The same for
// docker-29-nftables against moby's nftablesdoc documents of the same scenarios: the lab's
// `nft -j list ruleset`, table `ip docker-bridges`, rule for rule and element for element.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarioFile } from '../harness/scenario/load.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { listingDiff } from '../harness/rules/textdiff.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { MOBY_DIR, normalizedListing, normalizedNftListing, readMobyFixture, readMobyNftFixture } from './support/moby-fixture.js';

const isRoot = process.getuid?.() === 0;
const DOCS = ['new-daemon', 'usernet-portmap', 'usernet-portmap-lo', 'usernet-portmap-noproxy', 'usernet-portmap-noicc', 'usernet-internal'];

async function build(doc: string, engine: string): Promise<ScenarioResult> {
  const sc = loadScenarioFile(join(MOBY_DIR, `${doc}.yaml`));
  return runScenario(sc, { engineName: engine, makeEngine: engineFactory(engine), environment: {} });
}

/** The lab's rules against a profile's document; the unified diff when they differ. */
function compare(r: ScenarioResult, profile: string, doc: string): string | undefined {
  const snap = r.snapshots!.at(-1)!;
  const fixture = readMobyFixture(profile, doc);
  return listingDiff(normalizedListing(fixture.rules, fixture.names), normalizedListing(snap.rules, snap.facts), {
    expected: `moby ${profile}/${doc}`,
    actual: `${r.engine} lab`,
  });
}

describe.skipIf(!isRoot)("profiles reproduce moby's documented rule sets", () => {
  for (const profile of ['docker-28', 'docker-29']) {
    for (const doc of DOCS) {
      it(`${profile}: ${doc}`, async () => {
        const r = await build(doc, `reference:${profile}`);
        // the lab was really built and its packets went where the document says
        for (const c of r.cases) expect(c.status, `${c.name}: ${c.message ?? ''}`).toBe('passed');
        const diff = compare(r, profile, doc);
        expect(diff, diff).toBeUndefined();
      });
    }
  }

  it('fails, with a diff, when a profile is held to another release’s document', async () => {
    const r = await build('usernet-portmap', 'reference:docker-28');
    const diff = compare(r, 'docker-29', 'usernet-portmap');
    expect(diff).toBeDefined();
    expect(diff).toMatch(/^-\s*-N DOCKER-INTERNAL$/m);
    expect(diff).toMatch(/^\+\s*-N DOCKER-ISOLATION-STAGE-1$/m);
    expect(diff).toMatch(/^\+-A DOCKER -i \$\{bridge:bridge1\} -j RETURN$/m);
  });

  it('fails when the engine writes what the 20.10 layout writes', async () => {
    const r = await build('new-daemon', 'reference:docker-20.10');
    const diff = compare(r, 'docker-29', 'new-daemon');
    expect(diff).toMatch(/^-\s*-A FORWARD -j DOCKER-FORWARD$/m);
    expect(diff).toMatch(/^\+\s*-A DOCKER-USER -j RETURN$/m);
  });
});

/** The lab's nftables table against a document of moby's nftablesdoc; the unified diff when they differ. */
function compareNft(r: ScenarioResult, profile: string, doc: string, edit: (fixture: string) => string = (x) => x): string | undefined {
  const snap = r.snapshots!.at(-1)!;
  const fixture = readMobyNftFixture(profile, doc);
  return listingDiff(edit(normalizedNftListing(fixture.rules, fixture.names)), normalizedNftListing(snap.nft ?? [], snap.facts), {
    expected: `moby ${profile}/${doc}`,
    actual: `${r.engine} lab`,
  });
}

describe.skipIf(!isRoot)("the nftables profile reproduces moby's nftablesdoc documents", () => {
  for (const doc of DOCS) {
    it(`docker-29-nftables: ${doc}`, async () => {
      const r = await build(doc, 'reference:docker-29-nftables');
      for (const c of r.cases) expect(c.status, `${c.name}: ${c.message ?? ''}`).toBe('passed');
      const diff = compareNft(r, 'docker-29-nftables', doc);
      expect(diff, diff).toBeUndefined();
      // NF-01: and nothing in iptables (the backend is nftables)
      const iptables = r.snapshots!.at(-1)!.rules.flatMap((t) => t.chains.filter((c) => c.rules.length || c.policy === undefined).map((c) => `${t.name}/${c.name}`));
      expect(iptables).toEqual([]);
    });
  }

  it('fails, with a diff naming the rule, when the lab lacks one the document has', async () => {
    const r = await build('usernet-portmap', 'reference:docker-29-nftables');
    // the no-proxy document: hairpin NAT for the host's and the container's own traffic
    const diff = compareNft(r, 'docker-29-nftables', 'usernet-portmap-noproxy');
    expect(diff).toMatch(/^-\s+fib saddr type local counter masquerade comment "MASQUERADE FROM HOST"$/m);
    expect(diff).toMatch(/^-\s+ip saddr \$\{c1\} ip daddr \$\{c1\} tcp dport 80 counter masquerade comment "MASQ TO OWN PORT"$/m);
    expect(diff).toMatch(/^\+\s+iifname != \$\{bridge:bridge1\} tcp dport 8080 counter dnat to \$\{c1\}:80 comment DNAT$/m);
    // one element of a verdict map taken out of the document is missed too
    const noElement = compareNft(r, 'docker-29-nftables', 'usernet-portmap', (f) => f.replace(/^ {2}element \$\{bridge:bridge1\} : jump filter-forward-in__\$\{bridge:bridge1\}\n/m, ''));
    expect(noElement).toMatch(/^\+\s+element \$\{bridge:bridge1\} : jump filter-forward-in__\$\{bridge:bridge1\}$/m);
  });

  it('fails when the engine writes iptables instead', async () => {
    const r = await build('new-daemon', 'reference:docker-29');
    const diff = compareNft(r, 'docker-29-nftables', 'new-daemon');
    expect(diff).toMatch(/^\+table ip docker-bridges \(absent\)$/m);
    expect(diff).toMatch(/^-chain filter-FORWARD: type filter hook forward priority 0; policy accept;$/m);
  });
});
