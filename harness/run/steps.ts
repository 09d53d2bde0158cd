// Steps between phases: what an operator does to a running lab (connect, disconnect, remove a
// container; administrator iptables, nft, ip or bridge commands on a host or the switch,
// ovs-vsctl on the lab's Open vSwitch; a daemon restart of the rules).
import type { Engine } from '../engine/types.js';
import type { Lab } from '../lab/lab.js';
import { WAN, bridgeCommands, hostNs, ipCommands, iptables, nft, ovsVsctl } from '../lab/topology.js';
import type { Scenario, Step } from '../scenario/types.js';
import type { containerIndex } from './endpoints.js';

/**
 * A phase's steps in order. Consecutive `ip` or `bridge` steps on one host go out as one batch
 * (one process, where each costs 100-300 ms in an emulated guest); `done` is told each step.
 */
export async function runSteps(steps: Step[], lab: Lab, engines: Map<string, Engine>, index: ReturnType<typeof containerIndex>, sc: Scenario, done: (s: Step) => void): Promise<void> {
  for (let i = 0; i < steps.length; ) {
    const step = steps[i];
    let j = i + 1;
    if (step.kind === 'ip' || step.kind === 'bridge') {
      const same = (s: Step) => s.kind === step.kind && s.host === step.host;
      while (j < steps.length && same(steps[j])) j++;
      const batch = steps.slice(i, j) as (typeof step)[];
      await engines.get(step.host)?.sync();
      await (step.kind === 'ip' ? ipCommands : bridgeCommands)(lab, nsOf(step.host), batch.map((b) => b.args));
    } else {
      await runStep(step, lab, engines, index, sc);
    }
    for (const s of steps.slice(i, j)) done(s);
    i = j;
  }
}

export async function runStep(step: Step, lab: Lab, engines: Map<string, Engine>, index: ReturnType<typeof containerIndex>, sc: Scenario): Promise<void> {
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
      await engines.get(step.host)?.sync();
      // the host's own iptables variant; the switch's is the first host's
      return iptables(lab, nsOf(step.host), step.args, (sc.hosts.find((h) => h.name === step.host) ?? sc.hosts[0]).iptables);
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
      return ovsVsctl(lab, step.args);
    case 'restart-rules':
      return engines.get(step.host)!.reloadRules();
  }
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
    case 'nft':
      return `nft ${step.args}${on(step.host)}`;
    case 'ip':
      return `ip ${step.args}${on(step.host)}`;
    case 'bridge':
      return `bridge ${step.args}${on(step.host)}`;
    case 'ovs-vsctl':
      return `ovs-vsctl ${step.args}${on(step.host)}`;
    case 'restart-rules':
      return `restart-rules${on(step.host)}`;
  }
}
