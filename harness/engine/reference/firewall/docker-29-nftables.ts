// The rule layout of Docker 29 with `--firewall-backend=nftables`, operation for operation.
//
// Where it comes from (moby/moby, unchanged from docker-v29.0.0 to v29.7.2):
// - integration/network/bridge/nftablesdoc/generated/*.md, the documents moby generates from
//   a running daemon (new-daemon, usernet-portmap, -lo, -noproxy, -noicc, usernet-internal);
// - daemon/libnetwork/drivers/bridge/internal/nftabler (nftabler.go, network.go, endpoint.go,
//   port.go, link.go) for what the documents leave open: rule groups, which rules a network
//   without containers has, links, SNAT, teardown;
// - docs.docker.com "Docker with nftables": no DOCKER-USER (an administrator's own table and
//   base chain replace it), and the daemon never enables IP forwarding itself.
// Everything lives in `ip docker-bridges`, re-created at every daemon start, and, as ip6tables
// is on by default (a flag of its own, so also with --iptables=false), the same base chains and
// verdict maps in `ip6 docker-bridges` (measured on 29.7.2: written even with no IPv6 network;
// IPv6 networks under this backend are not modelled, their scenarios skip). The iptables tables
// are left alone. Rules are written as `nft list` prints them.
import type { RuleAccess } from '../../../rules/backend.js';
import type { NftTableEditor } from '../../../rules/nft/editor.js';
import { NftTableBackend } from '../../../rules/nft/backend.js';
import type { BridgeNet, EndpointRule, FirewallDriver, FirewallHost, FirewallOptions, LinkRule, PortForward } from './types.js';

const FORWARD = 'filter-FORWARD';
const POSTROUTING = 'nat-POSTROUTING';
const PREROUTING = 'nat-PREROUTING';
const OUTPUT = 'nat-OUTPUT';
const NAT = 'nat-prerouting-and-output';
const RAW = 'raw-PREROUTING';
const FWD_IN_MAP = 'filter-forward-in-jumps';
const FWD_OUT_MAP = 'filter-forward-out-jumps';
const POST_OUT_MAP = 'nat-postrouting-out-jumps';
const POST_IN_MAP = 'nat-postrouting-in-jumps';

// rule groups (nftabler.go): a chain lists its groups in this order
const INITIAL = 0;
const FWD_IN_LINKS = 2; // after ACCEPT FW MARK (1)
const FWD_IN_ICC = 3;
const FWD_IN_PORTS = 4;
const FWD_IN_FINAL = 5;
const RAW_PORTS = 1;

const fwdIn = (br: string) => `filter-forward-in__${br}`;
const fwdOut = (br: string) => `filter-forward-out__${br}`;
const postIn = (br: string) => `nat-postrouting-in__${br}`;
const postOut = (br: string) => `nat-postrouting-out__${br}`;
const name = (br: string) => `"${br}"`;
const isLoopback = (ip: string) => ip.startsWith('127.');

export class Docker29NftablesFirewall implements FirewallDriver {
  readonly profile: string = 'docker-29-nftables';
  readonly enablesForwarding = false;
  private readonly table = new NftTableBackend('ip', 'docker-bridges');
  private readonly table6 = new NftTableBackend('ip6', 'docker-bridges');
  private access?: RuleAccess;
  private hairpin = false;

  // the host's iptables is not this layout's business (moby's cleaner removes its iptables rules)
  constructor(_host: FirewallHost) {}

  get backends(): NftTableBackend[] {
    return [this.table, this.table6];
  }

  private t(): Promise<NftTableEditor> {
    if (!this.access) throw new Error('firewall driver used before init()');
    return this.access.edit(this.table);
  }

  // NewNftabler → init(IPv4): base chains with their verdict-map jumps, at every start afresh
  async init(rules: RuleAccess, opts: FirewallOptions): Promise<void> {
    this.access = rules;
    this.hairpin = opts.hairpin;
    baseChains(await this.t(), opts.hairpin, 'ip daddr != 127.0.0.0/8');
  }

  // init(IPv6): the same, in the ip6 table, with IPv6's loopback
  async init6(rules: RuleAccess, opts: FirewallOptions): Promise<void> {
    baseChains(await rules.edit(this.table6), opts.hairpin, 'ip6 daddr != ::1');
  }

  // network.go configure(): four chains per bridge, reached through the verdict maps
  async setupNetwork(net: BridgeNet): Promise<void> {
    const t = await this.t();
    const br = net.bridge;
    t.addChain(fwdIn(br));
    t.addChain(fwdOut(br));
    t.addElement(FWD_IN_MAP, name(br), `jump ${fwdIn(br)}`);
    t.addElement(FWD_OUT_MAP, name(br), `jump ${fwdOut(br)}`);
    t.addChain(postIn(br));
    t.addElement(POST_IN_MAP, name(br), `jump ${postIn(br)}`);
    t.addChain(postOut(br));
    t.addElement(POST_OUT_MAP, name(br), `jump ${postOut(br)}`);
    t.addRule(fwdIn(br), INITIAL, 'ct state established,related counter accept');
    t.addRule(fwdOut(br), INITIAL, 'ct state established,related counter accept');
    const icc = net.icc ? 'accept' : 'drop';
    if (net.internal) {
      t.addRule(fwdIn(br), INITIAL, `iifname != ${name(br)} counter drop comment "INTERNAL NETWORK INGRESS"`);
      t.addRule(fwdOut(br), INITIAL, `oifname != ${name(br)} counter drop comment "INTERNAL NETWORK EGRESS"`);
      t.addRule(fwdIn(br), FWD_IN_ICC, `counter ${icc} comment "ICC"`);
      return;
    }
    t.addRule(fwdIn(br), FWD_IN_ICC, `iifname ${name(br)} counter ${icc} comment "ICC"`);
    t.addRule(fwdOut(br), INITIAL, 'counter accept comment "OUTGOING"');
    t.addRule(fwdIn(br), FWD_IN_FINAL, 'counter drop comment "UNPUBLISHED PORT DROP"');
    // masquerade picks the source by next hop; SNAT uses the network's host_ipv4
    const snat = net.hostIp && net.hostIp !== '0.0.0.0';
    const verdict = snat ? `snat to ${net.hostIp}` : 'masquerade';
    const comment = snat ? 'SNAT' : 'MASQUERADE';
    if (net.masquerade) t.addRule(postOut(br), INITIAL, `oifname != ${name(br)} ip saddr ${net.subnet} counter ${verdict} comment "${comment}"`);
    if (this.hairpin) t.addRule(postIn(br), INITIAL, `fib saddr type local counter ${verdict} comment "${comment} FROM HOST"`);
  }

  // DelNetworkLevelRules undoes configure(); what endpoints and ports left goes with the chains
  async teardownNetwork(net: BridgeNet): Promise<void> {
    const t = await this.t();
    const br = net.bridge;
    for (const [map, chain] of [
      [FWD_IN_MAP, fwdIn(br)],
      [FWD_OUT_MAP, fwdOut(br)],
      [POST_IN_MAP, postIn(br)],
      [POST_OUT_MAP, postOut(br)],
    ]) {
      t.deleteElement(map, name(br));
      if (t.hasChain(chain)) {
        t.flushChain(chain);
        t.deleteChain(chain);
      }
    }
  }

  // endpoint.go filterDirectAccess: nothing from outside the bridge may address the container
  private directAccessDrop(ep: EndpointRule): string {
    return `ip daddr ${ep.ip} iifname != ${name(ep.net.bridge)} counter drop comment "DROP DIRECT ACCESS"`;
  }

  async addEndpoint(ep: EndpointRule): Promise<void> {
    if (!ep.net.internal) (await this.t()).addRule(RAW, RAW_PORTS, this.directAccessDrop(ep));
  }

  async removeEndpoint(ep: EndpointRule): Promise<void> {
    (await this.t()).deleteRule(RAW, RAW_PORTS, this.directAccessDrop(ep));
  }

  // port.go setPerPortRules: open the port, DNAT, hairpin masquerade, drop remote loopback
  private portRules(pf: PortForward) {
    const br = pf.net.bridge;
    const hostDst = pf.hostIp === '0.0.0.0' ? '' : `ip daddr ${pf.hostIp} `;
    const notFromBridge = this.hairpin ? '' : `iifname != ${name(br)} `;
    const p = pf.proto;
    return {
      open: `ip daddr ${pf.containerIp} ${p} dport ${pf.containerPort} counter accept`,
      dnat: `${notFromBridge}${hostDst}${p} dport ${pf.hostPort} counter dnat to ${pf.containerIp}:${pf.containerPort} comment "DNAT"`,
      hairpinMasq: `ip saddr ${pf.containerIp} ip daddr ${pf.containerIp} ${p} dport ${pf.containerPort} counter masquerade comment "MASQ TO OWN PORT"`,
      loopbackDrop: `iifname != "lo" ip daddr ${pf.hostIp} ${p} dport ${pf.hostPort} counter drop comment "DROP REMOTE LOOPBACK"`,
    };
  }

  async addPortForward(pf: PortForward): Promise<void> {
    if (pf.net.internal) return;
    const t = await this.t();
    const r = this.portRules(pf);
    // one container port behind several host ports gives the same rule: kept once
    t.addRule(fwdIn(pf.net.bridge), FWD_IN_PORTS, r.open, { ignoreExist: true });
    t.addRule(NAT, INITIAL, r.dnat);
    if (this.hairpin) t.addRule(postIn(pf.net.bridge), INITIAL, r.hairpinMasq);
    if (isLoopback(pf.hostIp)) t.addRule(RAW, RAW_PORTS, r.loopbackDrop);
  }

  async removePortForward(pf: PortForward): Promise<void> {
    if (pf.net.internal) return;
    const t = await this.t();
    const r = this.portRules(pf);
    t.deleteRule(fwdIn(pf.net.bridge), FWD_IN_PORTS, r.open);
    t.deleteRule(NAT, INITIAL, r.dnat);
    t.deleteRule(postIn(pf.net.bridge), INITIAL, r.hairpinMasq);
    t.deleteRule(RAW, RAW_PORTS, r.loopbackDrop);
  }

  // link.go: the linked container's exposed ports, both directions, ahead of the ICC verdict
  private linkRules(l: LinkRule): string[] {
    return l.ports.flatMap(({ port, proto }) => [
      `ip saddr ${l.fromIp} ip daddr ${l.toIp} ${proto} dport ${port} counter accept`,
      `ip saddr ${l.toIp} ${proto} sport ${port} ip daddr ${l.fromIp} counter accept`,
    ]);
  }

  // only where icc is off: bridge_linux.go calls d.link under !EnableICC, for either backend
  // (measured on 29.7.2: a --link under the default --icc=true adds nothing)
  async addLink(link: LinkRule): Promise<void> {
    if (link.net.icc) return;
    const t = await this.t();
    for (const rule of this.linkRules(link)) t.addRule(fwdIn(link.net.bridge), FWD_IN_LINKS, rule);
  }

  async removeLink(link: LinkRule): Promise<void> {
    if (link.net.icc) return;
    const t = await this.t();
    for (const rule of this.linkRules(link)) t.deleteRule(fwdIn(link.net.bridge), FWD_IN_LINKS, rule);
  }
}

/** A family's table afresh: the base chains, their verdict maps, and the jumps into them. */
function baseChains(t: NftTableEditor, hairpin: boolean, notLoopback: string): void {
  t.reset();
  t.baseChain(FORWARD, { type: 'filter', hook: 'forward', priority: 0, policy: 'accept' });
  t.addMap(FWD_IN_MAP, 'ifname : verdict');
  t.addRule(FORWARD, INITIAL, `oifname vmap @${FWD_IN_MAP}`);
  t.addMap(FWD_OUT_MAP, 'ifname : verdict');
  t.addRule(FORWARD, INITIAL, `iifname vmap @${FWD_OUT_MAP}`);
  t.baseChain(POSTROUTING, { type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' });
  t.addMap(POST_OUT_MAP, 'ifname : verdict');
  t.addRule(POSTROUTING, INITIAL, `iifname vmap @${POST_OUT_MAP}`);
  t.addMap(POST_IN_MAP, 'ifname : verdict');
  t.addRule(POSTROUTING, INITIAL, `oifname vmap @${POST_IN_MAP}`);
  t.addChain(NAT);
  t.baseChain(PREROUTING, { type: 'nat', hook: 'prerouting', priority: -100, policy: 'accept' });
  t.addRule(PREROUTING, INITIAL, `fib daddr type local counter jump ${NAT}`);
  t.baseChain(OUTPUT, { type: 'nat', hook: 'output', priority: -100, policy: 'accept' });
  // with the userland proxy, loopback destinations are the proxy's (no DNAT from lo)
  t.addRule(OUTPUT, INITIAL, `${hairpin ? '' : `${notLoopback} `}fib daddr type local counter jump ${NAT}`);
  t.baseChain(RAW, { type: 'filter', hook: 'prerouting', priority: -300, policy: 'accept' });
}
