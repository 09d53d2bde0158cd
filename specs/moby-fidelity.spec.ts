// The docker-28 and docker-29 profiles against Moby's own documents: for each scenario Moby's
// generated iptables documentation describes (new daemon, user network with a published port,
// port on 127.0.0.1, no userland proxy, enable_icc=false, internal networks), the reference
// engine builds the same thing in a lab, the lab host's iptables-save is read back, both sides
// are normalized (bridge names, subnets, addresses) and must match rule for rule.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarioFile } from '../harness/scenario/load.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { listingDiff } from '../harness/rules/textdiff.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { MOBY_DIR, normalizedListing, readMobyFixture } from './support/moby-fixture.js';

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
