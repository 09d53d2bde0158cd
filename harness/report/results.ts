// What a run produces, independent of how it is shown (terminal, JUnit, upgrade diff).
import type { Expectation, Loc, Outcome, Proto } from '../scenario/types.js';
import type { Ruleset } from '../rules/iptables/save.js';
import type { NftRuleset } from '../rules/nft/model.js';
import type { Facts } from '../rules/symbolic.js';
import type { PacketIdentity } from '../probe/agent.js';
import type { RulePath } from '../trace/path.js';

export type Status = 'passed' | 'failed' | 'skipped' | 'error';

export interface ReachDetail {
  from: string;
  to: string;
  address: string;
  proto: Proto;
  port?: number;
  expected: Outcome;
  actual: Outcome | 'error';
  expectedSeen?: string;
  seen?: string;
  /** what identifies the packet the probe sent (absent when none left the sender) */
  sent?: PacketIdentity;
  /** the sender's words beside its outcome ("EHOSTUNREACH") */
  detail?: string;
}

export interface CaseResult {
  id: string; // catalogue ID
  name: string; // "EG-01 container egress is masqueraded to the host address"
  kind: Expectation['kind'] | 'scenario';
  status: Status;
  message?: string;
  diff?: string;
  loc: Loc;
  timeMs: number;
  reach?: ReachDetail;
  /** position of the expectation in Scenario.expect */
  expectIndex: number;
  /** what this case did (the probe line for a reach case) */
  transcript?: string;
  /** a passed case that confirms an exposure the scenario calls a compliance finding: why */
  finding?: string;
  /** run --repeat: the verdicts of the rounds when they were not all the same */
  flaky?: string;
  /**
   * A reach case's rule path, for people: per Docker host the packet crossed, the
   * table:chain:rule steps with verdicts, NAT, and how it ended (or why no path could be traced).
   */
  rulePath?: string;
  /** the same path as data (the engine comparison lines two of them up) */
  trace?: RulePath;
  /** advisories (CVE, GHSA) the expectation demonstrates, on findings and failures */
  advisories?: string[];
}

export interface ScenarioResult {
  scenarioId: string;
  title: string;
  file: string;
  engine: string; // engine name as given on the command line
  engineDescription: string;
  cases: CaseResult[];
  /** the lab host's rules at the end of each phase (iptables-save, and nft list ruleset where read) */
  ruleDump: string;
  /** one line per probe and step */
  transcript: string[];
  timeMs: number;
  probes: number;
  /** where the time went: lab + engine + agents, probes and assertions, teardown */
  phaseMs: { build: number; probe: number; teardown: number; /** inside the engines' own calls */ engine?: number };
  properties: Record<string, string>;
  /** per phase and Docker host: its rules and the engine's names (upgrade diff, engine comparison) */
  snapshots?: Snapshot[];
  /** the guest kernel's label ("6.12") when the run is one column of a kernel matrix (--kernel A,B) */
  kernel?: string;
  /** properties repeated on every test case (a microVM run names its guest kernel there) */
  caseProperties?: Record<string, string>;
  /**
   * What the engine logged during this scenario (a real daemon's log, a guest's console), kept
   * under reports/ when the scenario fails or its comparison disagrees (report/evidence.ts)
   */
  evidence?: { name: string; text: string }[];
}

/** What one Docker host looked like at the end of a phase. */
export interface Snapshot {
  phase: number;
  host: string;
  /** iptables-save */
  rules: Ruleset;
  /** ip6tables-save of the same host (27+ write IPv6 rules by default) */
  rules6?: Ruleset;
  /** the nftables rule set, where it was read */
  nft?: NftRuleset;
  facts: Facts;
  /** container reference → path → content: /etc/hosts, /etc/resolv.conf, /etc/hostname as its processes read them */
  files?: Record<string, Record<string, string>>;
  /** container reference → its processes' environment (NAME=VALUE, as the engine gave it) */
  env?: Record<string, string[]>;
}

export function scenarioStatus(r: ScenarioResult): Status {
  if (r.cases.some((c) => c.status === 'error')) return 'error';
  if (r.cases.some((c) => c.status === 'failed')) return 'failed';
  if (r.cases.length > 0 && r.cases.every((c) => c.status === 'skipped')) return 'skipped';
  return 'passed';
}
