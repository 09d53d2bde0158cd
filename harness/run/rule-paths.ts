// After a phase's probes: each reach case gets the rule path its packet took (or the reason
// there is none), and expectations with `decided-by:` are held to it. A verdict that passed
// while the deciding rule is not the expected one fails; one whose path could not be traced
// is skipped with the reason, never passed.
import { checkDecidedBy } from '../assert/decided-by.js';
import type { CaseResult } from '../report/results.js';
import { expand } from '../rules/symbolic.js';
import type { ReachExpect } from '../scenario/types.js';
import { buildRulePath, unavailablePath, type ProbeFacts } from '../trace/path.js';
import { renderRulePath } from '../trace/render.js';
import type { Collected } from '../trace/tracer.js';
import type { EvalContext } from './evaluate.js';
import { containerIndex } from './endpoints.js';

export const RULE_PATHS_OFF = 'rule paths are off for this run (--no-rule-paths)';

function probeFacts(c: CaseResult, hostOf: (endpoint: string) => string | undefined): ProbeFacts {
  const r = c.reach!;
  return { proto: r.proto, dst: r.address, port: r.port, sent: r.sent, outcome: r.actual, detail: r.detail, fromHost: hostOf(r.from), toHost: hostOf(r.to) };
}

/** `collected` undefined: tracing is off, and only decided-by needs saying so. */
export function attachRulePaths(cases: CaseResult[], cx: EvalContext, collected: Collected | undefined): void {
  // the Docker host an endpoint is or runs on, where it is one of them
  const index = containerIndex(cx.sc);
  const hostOf = (name: string) => {
    const base = name.split('@')[0];
    return cx.sc.hosts.find((h) => h.name === base)?.name ?? index.get(base)?.host.name;
  };
  for (const c of cases) {
    if (c.kind !== 'reach' || !c.reach || c.status === 'skipped') continue;
    const e = cx.sc.expect[c.expectIndex] as ReachExpect;
    const path = !collected ? unavailablePath(RULE_PATHS_OFF) : collected.unavailable ? unavailablePath(collected.unavailable) : buildRulePath(probeFacts(c, hostOf), collected.hosts);
    if (collected) {
      c.trace = path;
      c.rulePath = renderRulePath(path);
    }
    if (!e.decidedBy || c.status === 'error') continue;
    if (path.unavailable) {
      const note = `decided-by not checked: ${path.end}`;
      if (c.status === 'passed') {
        c.status = 'skipped';
        c.message = `the verdict (${c.reach.actual}) is as expected; ${note}`;
      } else c.message = `${c.message}\n${note}`;
      continue;
    }
    const r = checkDecidedBy(e.decidedBy, path, (host, text) => expand(text, cx.rules.get(host)!.facts), cx.sc.hosts.length > 1);
    if (r.ok) continue;
    if (c.status === 'passed') {
      c.status = 'failed';
      const { from, to, address, proto, port } = c.reach;
      c.message = `${from} → ${to} (${address}) ${proto}${port ? '/' + port : ''}: ${c.reach.actual} as expected, but ${r.message}`;
    } else c.message = `${c.message}; ${r.message}`;
  }
}
