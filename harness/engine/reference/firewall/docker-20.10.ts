// The rule layout of Docker 20.10 (Debian's docker.io), operation for operation: which rules
// are inserted (-I, so the newest network's rules come first) and which are appended (-A),
// with the same existence checks, so the resulting chains match the engine's rule for rule.
// Rules are written in the canonical form `iptables-save` prints (match order -s -d -i -o -p).
import type { RuleAccess } from '../../../rules/backend.js';
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import { IptablesLayout } from './iptables-layout.js';
import type { BridgeNet, FirewallDriver, FirewallOptions, LinkRule, PortForward } from './types.js';

const ISO1 = 'DOCKER-ISOLATION-STAGE-1';
const ISO2 = 'DOCKER-ISOLATION-STAGE-2';
const USER = 'DOCKER-USER';

/** -I unless present (Docker's programChainRule). */
function insertOnce(ed: RuleEditor, table: string, chain: string, rule: string, pos = 1): void {
  if (!ed.exists(table, chain, rule)) ed.insert(table, chain, rule, pos);
}

/** -A unless present (Docker's ProgramRule with Append). */
function appendOnce(ed: RuleEditor, table: string, chain: string, rule: string): void {
  if (!ed.exists(table, chain, rule)) ed.append(table, chain, rule);
}

/** Delete, then insert at the top (Docker's EnsureJumpRule). */
function ensureJumpFirst(ed: RuleEditor, chain: string, target: string): void {
  const rule = `-j ${target}`;
  while (ed.delete('filter', chain, rule)) {
    /* remove every copy */
  }
  ed.insert('filter', chain, rule, 1);
}

function dst(ip: string): string {
  return `-d ${ip}/32`;
}

export class Docker2010Firewall extends IptablesLayout implements FirewallDriver {
  readonly profile: string = 'docker-20.10';
  private hairpin = false;

  async init(rules: RuleAccess, opts: FirewallOptions): Promise<void> {
    this.hairpin = opts.hairpin;
    const ed = await this.begin(rules, opts);
    // At start dockerd first removes its chains (removeIPChains): a chain still jumped to
    // survives, emptied. Seen with dockerd 20.10.24: a restart rebuilds them from scratch.
    if (opts.restart) for (const [t, c] of [['nat', 'DOCKER'], ['filter', 'DOCKER'], ['filter', ISO1], ['filter', ISO2]]) if (ed.hasChain(t, c)) ed.flush(t, c);
    ed.ensureChain('nat', 'DOCKER');
    ed.ensureChain('filter', 'DOCKER');
    ed.ensureChain('filter', ISO1);
    ed.ensureChain('filter', ISO2);
    appendOnce(ed, 'filter', ISO1, '-j RETURN');
    appendOnce(ed, 'filter', ISO2, '-j RETURN');
    this.arrangeUserChain(ed);
  }

  /** DOCKER-USER exists, ends in RETURN if empty, and is jumped to first from FORWARD. */
  arrangeUserChain(ed: RuleEditor): void {
    ed.ensureChain('filter', USER);
    appendOnce(ed, 'filter', USER, '-j RETURN');
    ensureJumpFirst(ed, 'FORWARD', USER);
  }

  private masqRules(net: BridgeNet) {
    const snat = net.hostIp && net.hostIp !== '0.0.0.0' ? `-j SNAT --to-source ${net.hostIp}` : '-j MASQUERADE';
    return {
      nat: `-s ${net.subnet} ! -o ${net.bridge} ${snat}`,
      hairpinNat: `-o ${net.bridge} -m addrtype --src-type LOCAL ${snat}`,
      skipDnat: `-i ${net.bridge} -j RETURN`,
      out: `-i ${net.bridge} ! -o ${net.bridge} -j ACCEPT`,
      iccAccept: `-i ${net.bridge} -o ${net.bridge} -j ACCEPT`,
      iccDrop: `-i ${net.bridge} -o ${net.bridge} -j DROP`,
      toDocker: `-o ${net.bridge} -j DOCKER`,
      established: `-o ${net.bridge} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      internalIn: `! -d ${net.subnet} -i ${net.bridge} -j DROP`,
      internalOut: `! -s ${net.subnet} -o ${net.bridge} -j DROP`,
      iso1: `-i ${net.bridge} ! -o ${net.bridge} -j ${ISO2}`,
      iso2: `-o ${net.bridge} -j DROP`,
    };
  }

  private setIcc(ed: RuleEditor, net: BridgeNet): void {
    const r = this.masqRules(net);
    if (net.icc) {
      ed.delete('filter', 'FORWARD', r.iccDrop);
      insertOnce(ed, 'filter', 'FORWARD', r.iccAccept);
    } else {
      ed.delete('filter', 'FORWARD', r.iccAccept);
      appendOnce(ed, 'filter', 'FORWARD', r.iccDrop);
    }
  }

  async setupNetwork(net: BridgeNet): Promise<void> {
    const ed = await this.ed();
    this.restore(ed, net);
    // a new network moves DOCKER-USER back to the top of FORWARD (arrangeUserFilterRule)
    this.arrangeUserChain(ed);
  }

  /**
   * A network's rules without the DOCKER-USER arrangement: what dockerd does for networks it
   * restores at a restart. Seen with dockerd 20.10.24 (--live-restore, a container on
   * docker0): after the restart FORWARD starts with DOCKER-ISOLATION-STAGE-1, then DOCKER-USER.
   */
  async restoreNetwork(net: BridgeNet): Promise<void> {
    this.restore(await this.ed(), net);
  }

  private restore(ed: RuleEditor, net: BridgeNet): void {
    const r = this.masqRules(net);
    if (net.internal) {
      insertOnce(ed, 'filter', ISO1, r.internalIn);
      insertOnce(ed, 'filter', ISO1, r.internalOut);
      this.setIcc(ed, net);
    } else {
      if (net.masquerade) insertOnce(ed, 'nat', 'POSTROUTING', r.nat);
      if (net.masquerade && !this.hairpin) insertOnce(ed, 'nat', 'DOCKER', r.skipDnat);
      if (this.hairpin) insertOnce(ed, 'nat', 'POSTROUTING', r.hairpinNat);
      this.setIcc(ed, net);
      insertOnce(ed, 'filter', 'FORWARD', r.out);
      // ProgramChain(nat): local destinations enter DOCKER
      appendOnce(ed, 'nat', 'PREROUTING', '-m addrtype --dst-type LOCAL -j DOCKER');
      appendOnce(ed, 'nat', 'OUTPUT', this.hairpin ? '-m addrtype --dst-type LOCAL -j DOCKER' : '! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER');
      // ProgramChain(filter)
      insertOnce(ed, 'filter', 'FORWARD', r.toDocker);
      insertOnce(ed, 'filter', 'FORWARD', r.established);
    }
    ensureJumpFirst(ed, 'FORWARD', ISO1);
    // Internal networks get no isolation pair: their two DROP rules isolate them already.
    // Seen with dockerd 20.10.24: an --internal network adds nothing to DOCKER-ISOLATION-STAGE-2.
    if (!net.internal) {
      insertOnce(ed, 'filter', ISO1, r.iso1);
      insertOnce(ed, 'filter', ISO2, r.iso2);
    }
  }

  async teardownNetwork(net: BridgeNet): Promise<void> {
    const ed = await this.ed();
    const r = this.masqRules(net);
    ed.delete('filter', ISO1, r.iso1);
    ed.delete('filter', ISO2, r.iso2);
    for (const rule of [r.established, r.toDocker, r.out, r.iccAccept, r.iccDrop]) ed.delete('filter', 'FORWARD', rule);
    ed.delete('filter', ISO1, r.internalIn);
    ed.delete('filter', ISO1, r.internalOut);
    ed.delete('nat', 'POSTROUTING', r.nat);
    ed.delete('nat', 'POSTROUTING', r.hairpinNat);
    ed.delete('nat', 'DOCKER', r.skipDnat);
  }

  private forwardRules(pf: PortForward) {
    const p = `-p ${pf.proto} -m ${pf.proto}`;
    const hostDst = pf.hostIp === '0.0.0.0' ? '' : `${dst(pf.hostIp)} `;
    const notFromBridge = this.hairpin ? '' : `! -i ${pf.net.bridge} `;
    return {
      dnat: `${hostDst}${notFromBridge}${p} --dport ${pf.hostPort} -j DNAT --to-destination ${pf.containerIp}:${pf.containerPort}`,
      accept: `${dst(pf.containerIp)} ! -i ${pf.net.bridge} -o ${pf.net.bridge} ${p} --dport ${pf.containerPort} -j ACCEPT`,
      hairpinMasq: `-s ${pf.containerIp}/32 ${dst(pf.containerIp)} ${p} --dport ${pf.containerPort} -j MASQUERADE`,
    };
  }

  async addPortForward(pf: PortForward): Promise<void> {
    const ed = await this.ed();
    const r = this.forwardRules(pf);
    appendOnce(ed, 'nat', 'DOCKER', r.dnat);
    appendOnce(ed, 'filter', 'DOCKER', r.accept);
    appendOnce(ed, 'nat', 'POSTROUTING', r.hairpinMasq);
  }

  async removePortForward(pf: PortForward): Promise<void> {
    const ed = await this.ed();
    const r = this.forwardRules(pf);
    ed.delete('nat', 'DOCKER', r.dnat);
    ed.delete('filter', 'DOCKER', r.accept);
    ed.delete('nat', 'POSTROUTING', r.hairpinMasq);
  }

  private linkRules(l: LinkRule): string[] {
    const out: string[] = [];
    for (const { port, proto } of l.ports) {
      const io = `-i ${l.net.bridge} -o ${l.net.bridge} -p ${proto} -m ${proto}`;
      out.push(`-s ${l.fromIp}/32 -d ${l.toIp}/32 ${io} --dport ${port} -j ACCEPT`);
      out.push(`-s ${l.toIp}/32 -d ${l.fromIp}/32 ${io} --sport ${port} -j ACCEPT`);
    }
    return out;
  }

  // Links get rules only where icc is off (libnetwork's bridge driver programs them only then):
  // with icc on the bridge accepts the traffic anyway. Seen with dockerd 20.10.24: --link under
  // the default --icc=true adds nothing to filter/DOCKER.
  async addLink(link: LinkRule): Promise<void> {
    if (link.net.icc) return;
    const ed = await this.ed();
    for (const rule of this.linkRules(link)) appendOnce(ed, 'filter', 'DOCKER', rule);
  }

  async removeLink(link: LinkRule): Promise<void> {
    if (link.net.icc) return;
    const ed = await this.ed();
    for (const rule of this.linkRules(link)) ed.delete('filter', 'DOCKER', rule);
  }
}
