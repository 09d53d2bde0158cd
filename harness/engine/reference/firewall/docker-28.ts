// The rule layout of Docker 28 (28.2.2 … 28.5.x), operation for operation.
//
// Where it comes from (moby/moby):
// - integration/network/bridge/iptablesdoc/generated/*.md, the documents moby generates from a
//   running daemon: the 28.x line (DOCKER-FORWARD with the isolation chains, swarm-portmap.md
//   of 28.0.1+) and 28.0.0 (new-daemon, usernet-*: isolation, per-network nat RETURN);
// - libnetwork/drivers/bridge/setup_ip_tables_linux.go of 28.0.1+ (setupIPChains, setINC,
//   setupNonInternalNetworkRules, setupInternalNetworkRules) and the iptabler of 28.2+
//   (endpoint.go filterDirectAccess, port.go setPerPortIptables) for what the documents leave
//   open: which rule is inserted (-I) and which appended (-A);
// - release notes: 28.0.1 moved the rules out of FORWARD into DOCKER-FORWARD/-CT/-BRIDGE
//   (moby#49518, #49530); 28.0.2 drops packets routed directly to a container in raw
//   PREROUTING per endpoint; 28.2.2 creates DOCKER-USER without its RETURN (moby#50098).
// Docker 29 changes a handful of these operations: docker-29.ts overrides exactly those.
import type { RuleAccess } from '../../../rules/backend.js';
import type { RuleEditor } from '../../../rules/iptables/editor.js';
import { IptablesLayout } from './iptables-layout.js';
import { appendOnce, ensureJumpFirst, insertOnce } from './ops.js';
import type { BridgeNet, EndpointRule, FirewallDriver, FirewallHost, FirewallOptions, LinkRule, PortForward } from './types.js';

export const FORWARD = 'DOCKER-FORWARD';
export const BRIDGE = 'DOCKER-BRIDGE';
export const CT = 'DOCKER-CT';
export const USER = 'DOCKER-USER';
const ISO1 = 'DOCKER-ISOLATION-STAGE-1';
const ISO2 = 'DOCKER-ISOLATION-STAGE-2';

const dst = (ip: string) => `-d ${ip}/32`;
const isLoopback = (ip: string) => ip.startsWith('127.');

export class Docker28Firewall extends IptablesLayout implements FirewallDriver {
  readonly profile: string = 'docker-28';
  protected hairpin = false;

  /** filter chains the daemon creates at start */
  protected filterChains(): string[] {
    return ['DOCKER', FORWARD, BRIDGE, CT, ISO1, ISO2];
  }

  /** the chain DOCKER-FORWARD passes every packet through between DOCKER-CT and DOCKER-BRIDGE */
  protected middleChain(): string {
    return ISO1;
  }

  /** where an --internal network's two DROP rules go */
  protected internalChain(): string {
    return ISO1;
  }

  constructor(host: FirewallHost) {
    super(host, { ipv6: true });
  }

  async init(rules: RuleAccess, opts: FirewallOptions): Promise<void> {
    this.initChains(await this.begin(rules, opts), opts, '127.0.0.0/8');
  }

  // Measured on dockerd 28.5.2 (ip6tables is on by default since 27): the same chains and
  // jumps in ip6tables, with IPv6's loopback; a network without IPv6 adds nothing there.
  async init6(rules: RuleAccess, opts: FirewallOptions): Promise<void> {
    this.initChains(await this.ed6(rules), opts, '::1/128');
  }

  private initChains(ed: RuleEditor, opts: FirewallOptions, loopback: string): void {
    this.hairpin = opts.hairpin;
    // setupIPChains: chains, nat jumps, then the FORWARD → DOCKER-FORWARD jump and the
    // DOCKER-FORWARD jumps (each re-inserted at the top, in reverse order)
    ed.ensureChain('nat', 'DOCKER');
    for (const c of this.filterChains()) ed.ensureChain('filter', c);
    appendOnce(ed, 'nat', 'PREROUTING', '-m addrtype --dst-type LOCAL -j DOCKER');
    appendOnce(ed, 'nat', 'OUTPUT', this.hairpin ? '-m addrtype --dst-type LOCAL -j DOCKER' : `! -d ${loopback} -m addrtype --dst-type LOCAL -j DOCKER`);
    ensureJumpFirst(ed, 'FORWARD', FORWARD);
    ensureJumpFirst(ed, FORWARD, BRIDGE);
    ensureJumpFirst(ed, FORWARD, this.middleChain());
    ensureJumpFirst(ed, FORWARD, CT);
    // setupUserChain: DOCKER-USER is left empty for the administrator and jumped to first
    ed.ensureChain('filter', USER);
    ensureJumpFirst(ed, 'FORWARD', USER);
  }

  protected netRules(net: BridgeNet) {
    const br = net.bridge;
    const to = net.hostIp && net.hostIp !== '0.0.0.0' ? `-j SNAT --to-source ${net.hostIp}` : '-j MASQUERADE';
    return {
      masq: `-s ${net.subnet} ! -o ${br} ${to}`,
      localMasq: `-o ${br} -m addrtype --src-type LOCAL ${to}`,
      skipDnat: `-i ${br} -j RETURN`,
      iccDrop: `-i ${br} -o ${br} -j DROP`,
      iccAccept: `-i ${br} -o ${br} -j ACCEPT`,
      out: `-i ${br} -j ACCEPT`,
      outNoIcc: `-i ${br} ! -o ${br} -j ACCEPT`,
      defaultDrop: `! -i ${br} -o ${br} -j DROP`,
      related: `-o ${br} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`,
      toDocker: `-o ${br} -j DOCKER`,
      internalIn: `! -d ${net.subnet} -i ${br} -j DROP`,
      internalOut: `! -s ${net.subnet} -o ${br} -j DROP`,
      iso1: `-i ${br} ! -o ${br} -j ${ISO2}`,
      iso2: `-o ${br} -j DROP`,
    };
  }

  async setupNetwork(net: BridgeNet): Promise<void> {
    const ed = await this.ed();
    const r = this.netRules(net);
    if (net.internal) {
      // setupInternalNetworkRules: the in-rule, then the out-rule, both inserted; then setIcc
      insertOnce(ed, 'filter', this.internalChain(), r.internalIn);
      insertOnce(ed, 'filter', this.internalChain(), r.internalOut);
      appendOnce(ed, 'filter', FORWARD, net.icc ? r.iccAccept : r.iccDrop);
      return;
    }
    // setupNonInternalNetworkRules
    if (net.masquerade) insertOnce(ed, 'nat', 'POSTROUTING', r.masq);
    this.skipDnat(ed, net);
    if (this.hairpin) insertOnce(ed, 'nat', 'POSTROUTING', r.localMasq);
    if (!net.icc) appendOnce(ed, 'filter', FORWARD, r.iccDrop);
    appendOnce(ed, 'filter', FORWARD, net.icc ? r.out : r.outNoIcc);
    // setDefaultForwardRule, then the per-bridge conntrack and DOCKER jumps
    appendOnce(ed, 'filter', 'DOCKER', r.defaultDrop);
    appendOnce(ed, 'filter', CT, r.related);
    appendOnce(ed, 'filter', BRIDGE, r.toDocker);
    this.isolate(ed, net);
  }

  /** nat DOCKER returns early for packets from the bridge (not in hairpin mode) */
  protected skipDnat(ed: RuleEditor, net: BridgeNet): void {
    if (net.masquerade && !this.hairpin) insertOnce(ed, 'nat', 'DOCKER', this.netRules(net).skipDnat);
  }

  /** setINC: stage 1 is appended, stage 2 inserted */
  protected isolate(ed: RuleEditor, net: BridgeNet): void {
    const r = this.netRules(net);
    appendOnce(ed, 'filter', ISO1, r.iso1);
    insertOnce(ed, 'filter', ISO2, r.iso2);
  }

  async teardownNetwork(net: BridgeNet): Promise<void> {
    const ed = await this.ed();
    const r = this.netRules(net);
    for (const rule of [r.masq, r.localMasq]) ed.delete('nat', 'POSTROUTING', rule);
    ed.delete('nat', 'DOCKER', r.skipDnat);
    for (const rule of [r.iccDrop, r.iccAccept, r.out, r.outNoIcc]) ed.delete('filter', FORWARD, rule);
    ed.delete('filter', 'DOCKER', r.defaultDrop);
    ed.delete('filter', CT, r.related);
    ed.delete('filter', BRIDGE, r.toDocker);
    for (const rule of [r.internalIn, r.internalOut]) ed.delete('filter', this.internalChain(), rule);
    if (ed.hasChain('filter', ISO1)) {
      ed.delete('filter', ISO1, r.iso1);
      ed.delete('filter', ISO2, r.iso2);
    }
  }

  /** filterDirectAccess: nothing from outside the bridge may address the container directly */
  private directAccessDrop(ep: EndpointRule): string {
    return `${dst(ep.ip)} ! -i ${ep.net.bridge} -j DROP`;
  }

  async addEndpoint(ep: EndpointRule): Promise<void> {
    const ed = await this.ed();
    if (!ep.net.internal) appendOnce(ed, 'raw', 'PREROUTING', this.directAccessDrop(ep));
  }

  async removeEndpoint(ep: EndpointRule): Promise<void> {
    const ed = await this.ed();
    ed.delete('raw', 'PREROUTING', this.directAccessDrop(ep));
  }

  private portRules(pf: PortForward) {
    const p = `-p ${pf.proto} -m ${pf.proto}`;
    const hostDst = pf.hostIp === '0.0.0.0' ? '' : `${dst(pf.hostIp)} `;
    const notFromBridge = this.hairpin ? '' : `! -i ${pf.net.bridge} `;
    return {
      loopbackDrop: `${dst(pf.hostIp)} ! -i lo ${p} --dport ${pf.hostPort} -j DROP`,
      dnat: `${hostDst}${notFromBridge}${p} --dport ${pf.hostPort} -j DNAT --to-destination ${pf.containerIp}:${pf.containerPort}`,
      hairpinMasq: `-s ${pf.containerIp}/32 ${dst(pf.containerIp)} ${p} --dport ${pf.containerPort} -j MASQUERADE`,
      accept: `${dst(pf.containerIp)} ! -i ${pf.net.bridge} -o ${pf.net.bridge} ${p} --dport ${pf.containerPort} -j ACCEPT`,
    };
  }

  // setPerPortIptables: loopback filter, DNAT, hairpin MASQUERADE (hairpin mode only), open port
  async addPortForward(pf: PortForward): Promise<void> {
    const ed = await this.ed();
    if (pf.net.internal) return;
    const r = this.portRules(pf);
    if (isLoopback(pf.hostIp)) appendOnce(ed, 'raw', 'PREROUTING', r.loopbackDrop);
    appendOnce(ed, 'nat', 'DOCKER', r.dnat);
    if (this.hairpin) appendOnce(ed, 'nat', 'POSTROUTING', r.hairpinMasq);
    insertOnce(ed, 'filter', 'DOCKER', r.accept);
  }

  async removePortForward(pf: PortForward): Promise<void> {
    const ed = await this.ed();
    const r = this.portRules(pf);
    ed.delete('raw', 'PREROUTING', r.loopbackDrop);
    ed.delete('nat', 'DOCKER', r.dnat);
    ed.delete('nat', 'POSTROUTING', r.hairpinMasq);
    ed.delete('filter', 'DOCKER', r.accept);
  }

  private linkRules(l: LinkRule): string[] {
    return l.ports.flatMap(({ port, proto }) => {
      const io = `-i ${l.net.bridge} -o ${l.net.bridge} -p ${proto} -m ${proto}`;
      return [`-s ${l.fromIp}/32 -d ${l.toIp}/32 ${io} --dport ${port} -j ACCEPT`, `-s ${l.toIp}/32 -d ${l.fromIp}/32 ${io} --sport ${port} -j ACCEPT`];
    });
  }

  // AddLink: appended to DOCKER (link traffic stays on the bridge, so the per-network DROP,
  // which only matches packets from elsewhere, never sees it); only where icc is off, as in
  // 20.10 (bridge_linux.go calls d.link under !EnableICC; measured on 28.5.2: a --link under
  // the default --icc=true adds nothing)
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
