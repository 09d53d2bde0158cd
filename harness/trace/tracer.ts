// Tracing for one lab: in every Docker host namespace the lab's tracing table and one trace
// monitor (tracemon.c), from the lab's build to its teardown; after each phase's probes, the
// events of every host, cut into traversals, with the rule dump that names their rules.
//
// When the trace cannot be whole it says so, for the phase, and no path is shown as if it
// were: nft missing, a monitor that died or lost events, a marker that never showed, or
// iptables-legacy tables in a host (x_tables rules are invisible to nftables tracing).
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../lab/lab.js';
import type { RunResult } from '../lab/exec.js';
import type { ProbeAgent } from '../probe/agent.js';
import type { Ruleset } from '../rules/ruleset.js';
import { TraceMonitor } from './monitor.js';
import { attachIptablesText, parseNftRuleset, type RuleDump } from './ruledump.js';
import { splitTraversals, type Traversal } from './path.js';
import { CHAIN, DELETE_TRACE_TABLE, TRACE_TABLE, traceTableScript } from './table.js';

export interface TracedHost {
  /** the Docker host's name in the scenario */
  name: string;
  /** its lab namespace name */
  ns: string;
}

export interface Collected {
  /** why this phase's paths cannot be whole (then none is shown) */
  unavailable?: string;
  hosts: Map<string, { traversals: Traversal[]; dump?: RuleDump }>;
}

/** Whether `nft` (Debian's nftables) is on PATH: looked up once per process, without a process. */
let nftFound: boolean | undefined;
export function haveNft(): boolean {
  nftFound ??= (process.env.PATH ?? '').split(':').some((dir) => {
    try {
      accessSync(join(dir || '.', 'nft'), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  return nftFound;
}

export const NFT_MISSING = 'nft is not installed (apt-get install -y nftables, which ./scripts/setup.sh does)';

/** How long markers took to show, this process: the bound on the next wait comes from them. */
const markerMs: number[] = [];
const MARKER_FLOOR_MS = 5000;
function markerBound(): number {
  return Math.max(MARKER_FLOOR_MS, 100 * Math.max(0, ...markerMs));
}

let markerPort = 0;

export class LabTracer {
  private readonly monitors = new Map<string, TraceMonitor>();
  /** a problem that makes every path of this lab unavailable */
  private broken?: string;
  /** this phase's rule dumps, taken while its probes run */
  private dumps = new Map<string, Promise<RunResult>>();

  private constructor(
    private readonly lab: Lab,
    private readonly hosts: TracedHost[],
  ) {}

  /** Load the tracing table and start a monitor in every Docker host namespace. */
  static async start(lab: Lab, hosts: TracedHost[]): Promise<LabTracer> {
    const t = new LabTracer(lab, hosts);
    if (!haveNft()) {
      t.broken = NFT_MISSING;
      return t;
    }
    await Promise.all(
      hosts.map(async (h) => {
        t.monitors.set(h.name, TraceMonitor.start(lab.nsPath(h.ns), h.name));
        const r = await lab.exec(h.ns, 'nft', ['-f', '-'], { input: traceTableScript(), allowFail: true });
        if (r.exitCode !== 0) t.broken ??= `loading the tracing table into ${h.name} failed: ${r.stderr.trim()}`;
      }),
    );
    return t;
  }

  /**
   * A packet the host itself sends to 127.0.0.1, traced like a probe: once its event is read,
   * so is every event before it. Resolves with a problem, or undefined.
   */
  private async marker(h: TracedHost, agent: ProbeAgent): Promise<string | undefined> {
    const monitor = this.monitors.get(h.name)!;
    if (monitor.failure) return `the trace monitor on ${h.name} ${monitor.failure}`;
    const t0 = performance.now();
    // the packet is traced while send() runs: the agent need not wait for an answer
    const r = await agent.udp('127.0.0.1', 9, 1, { token: `marker-${++markerPort}` });
    if (r.sent?.kind !== 'port') return `the marker packet could not be sent on ${h.name}: ${r.outcome} ${r.detail ?? ''}`.trim();
    const port = r.sent.port;
    const bound = markerBound();
    let timer: NodeJS.Timeout | undefined;
    const seen = await Promise.race([
      monitor.waitFor((e) => e.table === TRACE_TABLE && e.chain === CHAIN.out && e.kind === 'packet' && e.packet.sport === port && e.packet.daddr === '127.0.0.1').then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), bound))),
    ]);
    clearTimeout(timer);
    const took = performance.now() - t0;
    if (monitor.failure) return `the trace monitor on ${h.name} ${monitor.failure}`;
    if (!seen) {
      const range = markerMs.length ? `${Math.min(...markerMs).toFixed(1)}–${Math.max(...markerMs).toFixed(1)} ms` : 'none seen yet';
      return `the trace monitor on ${h.name} showed no marker packet within ${bound} ms (markers before took ${range}; the bound is 100× the slowest, at least ${MARKER_FLOOR_MS} ms)`;
    }
    markerMs.push(took);
    return undefined;
  }

  /** Before the first probes: every monitor is listening (its marker came through). */
  async ready(agents: Map<string, ProbeAgent>): Promise<void> {
    if (this.broken) return;
    const problems = await Promise.all(this.hosts.map((h) => this.marker(h, agents.get(h.name)!)));
    this.broken ??= problems.find(Boolean);
  }

  /**
   * A phase's rules are settled (its steps ran, the engines synced): dump them by handle while
   * its probes run, so that the dump costs the phase no time of its own.
   */
  phaseStarted(): void {
    if (this.broken) return;
    for (const h of this.hosts) {
      const p = this.lab.exec(h.ns, 'nft', ['-a', 'list', 'ruleset'], { allowFail: true });
      p.catch(() => {}); // awaited in collect()
      this.dumps.set(h.name, p);
    }
  }

  /**
   * After a phase's probes: every event they caused, per host, with the rules by handle
   * (iptables-save's text for iptables-nft's tables, from the phase's dump).
   */
  async collect(agents: Map<string, ProbeAgent>, iptables: Map<string, Ruleset>): Promise<Collected> {
    const hosts: Collected['hosts'] = new Map();
    if (this.broken) return { unavailable: this.broken, hosts };
    const per = await Promise.all(
      this.hosts.map(async (h) => {
        const agent = agents.get(h.name)!;
        const [problem, legacy, listed] = await Promise.all([
          this.marker(h, agent),
          agent.readFile('/proc/net/ip_tables_names').catch(() => ''),
          this.dumps.get(h.name) ?? this.lab.exec(h.ns, 'nft', ['-a', 'list', 'ruleset'], { allowFail: true }),
        ]);
        this.dumps.delete(h.name);
        const { events, lost } = this.monitors.get(h.name)!.take();
        const legacyTables = legacy.split('\n').filter(Boolean);
        const why =
          problem ??
          (lost ? `the trace monitor on ${h.name} lost events (its socket overflowed)` : undefined) ??
          (legacyTables.length ? `${h.name} has iptables-legacy tables (${legacyTables.join(', ')}): nftables tracing cannot see their rules` : undefined) ??
          (listed.exitCode !== 0 ? `nft list ruleset failed on ${h.name}: ${listed.stderr.trim()}` : undefined);
        const dump = parseNftRuleset(listed.stdout);
        const rs = iptables.get(h.name);
        if (rs) attachIptablesText(dump, rs);
        return { h, why, traversals: splitTraversals(events), dump };
      }),
    );
    for (const p of per) hosts.set(p.h.name, { traversals: p.traversals, dump: p.dump });
    const unavailable = per.find((p) => p.why)?.why;
    return { ...(unavailable ? { unavailable } : {}), hosts };
  }

  /** Monitors stopped by pid; the table removed from namespaces the lab does not own. */
  async stop(): Promise<void> {
    await Promise.all([...this.monitors.values()].map((m) => m.stop()));
    await Promise.all(this.hosts.filter((h) => this.lab.isAdopted(h.ns)).map((h) => this.lab.exec(h.ns, 'nft', ['-f', '-'], { input: DELETE_TRACE_TABLE, allowFail: true })));
  }
}
