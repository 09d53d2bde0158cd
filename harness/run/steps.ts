// Steps between phases: what an operator does to a running lab (connect, disconnect, remove a
// container; administrator iptables, nft, ip or bridge commands on a host or the switch,
// ovs-vsctl on the lab's Open vSwitch; a daemon restart of the rules; recovery: a flush of
// every rule table, a host firewall reload, a daemon restart).
import type { Engine } from '../engine/types.js';
import type { Lab } from '../lab/lab.js';
import { WAN, bridgeCommands, hostNs, ipCommands, iptables, nft, ovsVsctl } from '../lab/topology.js';
import { flushAllTables } from '../lab/flush.js';
import { firewalldOf } from '../lab/firewalld.js';
import type { Scenario, Step } from '../scenario/types.js';
import type { containerIndex } from './endpoints.js';

/** A step this engine cannot take in this lab: the cases from here on are skipped with the reason. */
export class StepNotSupported extends Error {}

/** An `ip` or `bridge` step that stays in its own namespace (one naming another moves links between them). */
const local = (s: Step): s is Extract<Step, { kind: 'ip' | 'bridge' }> => (s.kind === 'ip' || s.kind === 'bridge') && !/\bnetns\b/.test(s.args);

/**
 * A phase's steps in order. Consecutive `ip` or `bridge` steps on one host, and consecutive
 * `ovs-vsctl` steps, go out as one batch (one process, where each costs 100-300 ms in an
 * emulated guest), and a run of them on several hosts goes out to each host at once (each host's
 * in its order: the namespaces are apart, so the kernel ends in the same state); `done` is
 * told each step.
 */
export async function runSteps(
  steps: Step[],
  lab: Lab,
  engines: Map<string, Engine>,
  index: ReturnType<typeof containerIndex>,
  sc: Scenario,
  done: (s: Step) => void,
  log: (line: string) => void = () => {},
): Promise<void> {
  for (let i = 0; i < steps.length; ) {
    const step = steps[i];
    let j = i + 1;
    if (local(step)) {
      while (j < steps.length && local(steps[j])) j++;
      const run = steps.slice(i, j) as Extract<Step, { kind: 'ip' | 'bridge' }>[];
      const hosts = [...new Set(run.map((s) => s.host))];
      await Promise.all(hosts.map((h) => hostSteps(run.filter((s) => s.host === h), lab, engines)));
    } else if (step.kind === 'ovs-vsctl') {
      while (j < steps.length && steps[j].kind === 'ovs-vsctl') j++;
      await ovsVsctl(lab, (steps.slice(i, j) as (typeof step)[]).map((s) => s.args));
    } else {
      await runStep(step, lab, engines, index, sc, log);
    }
    for (const s of steps.slice(i, j)) done(s);
    i = j;
  }
}

/** One host's `ip` and `bridge` steps in order, consecutive ones of a kind in one batch. */
async function hostSteps(steps: Extract<Step, { kind: 'ip' | 'bridge' }>[], lab: Lab, engines: Map<string, Engine>): Promise<void> {
  await engines.get(steps[0].host)?.sync();
  for (let i = 0; i < steps.length; ) {
    let j = i + 1;
    while (j < steps.length && steps[j].kind === steps[i].kind) j++;
    await (steps[i].kind === 'ip' ? ipCommands : bridgeCommands)(lab, nsOf(steps[i].host), steps.slice(i, j).map((b) => b.args));
    i = j;
  }
}

export async function runStep(step: Step, lab: Lab, engines: Map<string, Engine>, index: ReturnType<typeof containerIndex>, sc: Scenario, log: (line: string) => void = () => {}): Promise<void> {
  const owner = (ref: string) => {
    const at = index.get(ref);
    if (!at) throw new Error(`no container ${ref}`);
    return { engine: engines.get(at.host.name)!, name: at.name };
  };
  switch (step.kind) {
    case 'connect': {
      const { engine, name } = owner(step.container);
      return engine.connect(name, step.network);
    }
    case 'disconnect': {
      const { engine, name } = owner(step.container);
      return engine.disconnect(name, step.network);
    }
    case 'remove': {
      const { engine, name } = owner(step.container);
      return engine.remove(name);
    }
    case 'unlink': {
      const { engine, name } = owner(step.container);
      return engine.unlink(name, step.alias);
    }
    case 'iptables':
    case 'ip6tables':
      await engines.get(step.host)?.sync();
      // the host's own iptables variant; the switch's is the first host's
      return iptables(lab, nsOf(step.host), step.args, (sc.hosts.find((h) => h.name === step.host) ?? sc.hosts[0]).iptables, step.kind === 'ip6tables' ? 'ipv6' : 'ipv4');
    case 'nft':
      await engines.get(step.host)?.sync();
      return nft(lab, nsOf(step.host), step.args);
    case 'ip':
      await engines.get(step.host)?.sync();
      return ipCommands(lab, nsOf(step.host), [step.args]);
    case 'bridge':
      await engines.get(step.host)?.sync();
      return bridgeCommands(lab, nsOf(step.host), [step.args]);
    case 'ovs-vsctl':
      return ovsVsctl(lab, [step.args]);
    case 'restart-rules':
    case 'restart-daemon':
      return engines.get(step.host)!.reloadRules();
    case 'flush-rules': {
      await engines.get(step.host)?.sync();
      const h = sc.hosts.find((x) => x.name === step.host)!;
      return flushAllTables(lab, hostNs(h), h.iptables);
    }
    case 'reload-firewall':
      return reloadFirewall(step.host, lab, engines.get(step.host)!, sc, log);
  }
}

/**
 * The host firewall reloads. With the lab's firewalld on this host (`firewalld: true`), a
 * real `firewall-cmd --reload` (a real dockerd hears its Reloaded signal on the lab's bus).
 * Without, its documented equivalent (firewalld's iptables backend on reload: every table
 * flushed, chains deleted, built-in policies ACCEPT, then the Reloaded signal). The reference
 * engine is told of the signal either way; a real dockerd only hears a real firewalld.
 */
async function reloadFirewall(host: string, lab: Lab, engine: Engine, sc: Scenario, log: (line: string) => void): Promise<void> {
  await engine.sync();
  const h = sc.hosts.find((x) => x.name === host)!;
  const fwd = firewalldOf(lab, hostNs(h));
  if (fwd) {
    // a real dockerd rewrites its rules when the signal reaches it: the reload ends after that
    await fwd.reload(log, { daemonRewrites: !engine.firewallReloaded });
  } else {
    if (!engine.firewallReloaded) throw new StepNotSupported(`reload-firewall on ${engine.describe()} needs firewalld in the lab (host: { firewalld: true }): a real daemon only hears firewalld's own Reloaded signal`);
    await flushAllTables(lab, hostNs(h), h.iptables);
  }
  await engine.firewallReloaded?.();
}

/** A host's namespace, or the switch's ("lan": the wan namespace holds the lan's bridges). */
const nsOf = (host: string) => (host === 'lan' ? WAN : hostNs(host));

export function describeStep(step: Step, multiHost: boolean): string {
  const on = (h: string) => (multiHost || h === 'lan' ? ` (on ${h})` : '');
  switch (step.kind) {
    case 'connect':
    case 'disconnect':
      return `${step.kind} ${step.container} ${step.network}`;
    case 'remove':
      return `remove ${step.container}`;
    case 'unlink':
      return `unlink ${step.container}/${step.alias}`;
    case 'iptables':
      return `iptables ${step.args}${on(step.host)}`;
    case 'ip6tables':
      return `ip6tables ${step.args}${on(step.host)}`;
    case 'nft':
      return `nft ${step.args}${on(step.host)}`;
    case 'ip':
      return `ip ${step.args}${on(step.host)}`;
    case 'bridge':
      return `bridge ${step.args}${on(step.host)}`;
    case 'ovs-vsctl':
      return `ovs-vsctl ${step.args}${on(step.host)}`;
    case 'restart-rules':
    case 'restart-daemon':
    case 'flush-rules':
    case 'reload-firewall':
      return `${step.kind}${on(step.host)}`;
  }
}
