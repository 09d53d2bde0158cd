// Tracing for one lab: in every Docker host namespace one trace monitor (tracemon.c), which
// loads the lab's tracing table there, from the lab's build to its teardown; after each
// phase's probes, the events of every host cut into traversals, with the rule dump that
// names their rules.
//
// When the trace cannot be whole it says so, for the phase, and no path is shown as if it
// were: libnftables missing, a monitor that died or lost events, a marker that never showed,
// or iptables-legacy tables in a host (x_tables rules are invisible to nftables tracing).
import { spawnSync } from 'node:child_process';
import type { Lab } from '../lab/lab.js';
import type { Ruleset } from '../rules/iptables/save.js';
import { tracemonPath } from '../native.js';
import { TraceMonitor } from './monitor.js';
import { attachIptablesText, parseNftRuleset, type RuleDump } from './ruledump.js';
import { splitTraversals, type Traversal } from './path.js';
import { DELETE_TRACE_TABLE, traceTableScript } from './table.js';

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

export const NFT_MISSING = 'libnftables is not installed (apt-get install -y nftables, which ./scripts/setup.sh does)';

/** Whether the trace monitor finds libnftables: for `doctor` (a lab finds out by starting one). */
export function tracingReady(): { ok: boolean; detail: string } {
  const r = spawnSync(tracemonPath(), ['--check', '--libnftables', process.env.NETCONFORM_LIBNFTABLES || 'libnftables.so.1'], { encoding: 'utf8' });
  const out = (r.stdout ?? '').trim();
  return r.status === 0 ? { ok: true, detail: out.replace(/^ok /, '') } : { ok: false, detail: out.startsWith('error libnftables is not installed') ? NFT_MISSING : out || String(r.error ?? `exit ${r.status}`) };
}

/**
 * How long markers took, this process: the bound on the next wait grows with them. The floor is
 * far above a marker's time anywhere (milliseconds here, under a second in a loaded guest): a
 * marker that does not show means the trace is broken, and the phase's paths are then shown as
 * unavailable (decided-by cases skipped, saying why), never as a verdict.
 */
const markerMs: number[] = [];
const MARKER_FLOOR_MS = 30_000;
function markerBound(): number {
  return Math.max(MARKER_FLOOR_MS, 100 * Math.max(0, ...markerMs));
}

export class LabTracer {
  private readonly monitors = new Map<string, TraceMonitor>();
  /** a problem that makes every path of this lab unavailable */
  private broken?: string;

  private constructor(private readonly hosts: TracedHost[]) {}

  /** A monitor in every Docker host namespace, each with the tracing table loaded. */
  static async start(lab: Lab, hosts: TracedHost[]): Promise<LabTracer> {
    const t = new LabTracer(hosts);
    await Promise.all(
      hosts.map(async (h) => {
        // a namespace the lab does not own (a reused dockerd's) gets it removed at the end
        const table = { setup: traceTableScript(), ...(lab.isAdopted(h.ns) ? { cleanup: DELETE_TRACE_TABLE } : {}) };
        try {
          t.monitors.set(h.name, await TraceMonitor.start(lab.nsPath(h.ns), h.name, table));
        } catch (e) {
          const why = (e as Error).message;
          t.broken ??= why.startsWith('libnftables is not installed') ? NFT_MISSING : `the trace monitor on ${h.name} could not start: ${why}`;
        }
      }),
    );
    return t;
  }

  /**
   * After a phase's probes: every event they caused, per host, with the rules by handle
   * (iptables-save's text for iptables-nft's tables, from the phase's dump).
   */
  async collect(iptables: Map<string, Ruleset>): Promise<Collected> {
    const hosts: Collected['hosts'] = new Map();
    if (this.broken) return { unavailable: this.broken, hosts };
    const bound = markerBound();
    const per = await Promise.all(
      this.hosts.map(async (h) => {
        const s = await this.monitors.get(h.name)!.sync(bound);
        if ('problem' in s) {
          const figures = markerMs.length ? `markers before took ${Math.min(...markerMs)}–${Math.max(...markerMs)} ms; the bound is 100× the slowest, at least ${MARKER_FLOOR_MS} ms` : `the bound is at least ${MARKER_FLOOR_MS} ms`;
          return { h, why: `on ${h.name}: ${s.problem}${/^no marker/.test(s.problem) ? ` (${figures})` : ''}` };
        }
        markerMs.push(s.ms);
        const why =
          (s.lost ? `the trace monitor on ${h.name} lost events (its socket overflowed)` : undefined) ??
          (s.legacy.length ? `${h.name} has iptables-legacy tables (${s.legacy.join(', ')}): nftables tracing cannot see their rules` : undefined);
        const dump = parseNftRuleset(s.ruleset);
        const rs = iptables.get(h.name);
        if (rs) attachIptablesText(dump, rs);
        return { h, why, traversals: splitTraversals(s.events), dump };
      }),
    );
    for (const p of per) if (p.traversals) hosts.set(p.h.name, { traversals: p.traversals, dump: p.dump });
    const unavailable = per.find((p) => p.why)?.why;
    return { ...(unavailable ? { unavailable } : {}), hosts };
  }

  /** Monitors stopped (each removes the table from a namespace the lab does not own). */
  async stop(): Promise<void> {
    await Promise.all([...this.monitors.values()].map((m) => m.stop()));
  }
}
