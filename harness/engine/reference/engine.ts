// The reference engine: the project's own implementation of Docker's bridge networking on the
// kernel, with no daemon and no images. Operations plan kernel work (namespaces, `ip` lines,
// sysctls, rule edits, userland proxies) and `sync()` applies it in a handful of batched
// commands, which is what makes a lab take milliseconds.
import { randomBytes } from 'node:crypto';
import type { ContainerSpec, DaemonOptions, NetworkSpec } from '../../scenario/types.js';
import type { Lab } from '../../lab/lab.js';
import { ProbeAgent } from '../../probe/agent.js';
import { RuleEditor } from '../../rules/editor.js';
import { parseIptablesSave, serializeRuleset } from '../../rules/ruleset.js';
import { EngineError, type ContainerInfo, type Engine, type EngineContext, type NetworkInfo, type PortBinding } from '../types.js';
import { AddressPool, PoolAllocator, inCidr, intToIp, macFor, networkOf, parseCidr } from './ipam.js';
import { PortAllocator } from './ports.js';
import { dockerBindingOrder } from './portorder.js';
import { Docker2010Firewall } from './firewall/docker-20.10.js';
import type { BridgeNet, FirewallDriver, LinkRule, PortForward } from './firewall/types.js';

const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
const OPT_ICC = 'com.docker.network.bridge.enable_icc';
const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';
const OPT_HOST_IPV4 = 'com.docker.network.host_ipv4';

interface NetState {
  info: NetworkInfo;
  fw: BridgeNet;
  pool: AddressPool;
  hostBinding?: string;
}

interface Endpoint {
  net: NetState;
  ip: string;
  ifname: string; // inside the container
  veth: string; // host end
}

interface ContState {
  spec: ContainerSpec;
  id: string;
  ns?: string; // lab namespace name when the container owns one
  info: ContainerInfo;
  endpoints: Endpoint[];
  forwards: PortForward[];
  links: LinkRule[];
  proxies: { proto: 'tcp' | 'udp'; port: number; bind: string }[];
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export class ReferenceEngine implements Engine {
  readonly name = 'reference';
  private ctx!: EngineContext;
  private lab!: Lab;
  private daemon!: DaemonOptions;
  private readonly firewall: FirewallDriver = new Docker2010Firewall();
  private readonly pools = new PoolAllocator();
  private readonly portAlloc = new PortAllocator();
  private readonly nets = new Map<string, NetState>();
  private readonly conts = new Map<string, ContState>();
  private hostAgent?: ProbeAgent;

  // planned kernel work, applied by sync()
  private pendingNs: string[] = [];
  private hostLines: string[] = [];
  private nsLines = new Map<string, string[]>();
  private hostSysctls: Record<string, string> = {};
  private pendingProxies: { proto: 'tcp' | 'udp'; port: number; bind: string; dst: string; dstPort: number }[] = [];
  private closeProxies: { proto: 'tcp' | 'udp'; port: number }[] = [];
  private rules?: RuleEditor; // loaded lazily from the lab host, written back by sync()
  private rulesDirty = false;

  describe(): string {
    return `reference ${this.firewall.profile}`;
  }

  async start(ctx: EngineContext): Promise<void> {
    this.ctx = ctx;
    this.lab = ctx.lab;
    this.daemon = ctx.daemon;
    const d = ctx.daemon;
    const iptables = d.iptables;
    if (d['ip-forward'] && (await this.lab.getSysctl(ctx.hostNs, 'net.ipv4.ip_forward')) !== '1') {
      // Docker turns forwarding on itself, and then closes the FORWARD policy.
      await this.lab.setSysctls(ctx.hostNs, { 'net.ipv4.ip_forward': '1' });
      if (iptables) (await this.editRules()).setPolicy('filter', 'FORWARD', 'DROP');
    }
    if (iptables) {
      this.hostSysctls['net.bridge.bridge-nf-call-iptables'] = '1';
      this.firewall.init(await this.editRules(), { hairpin: !d['userland-proxy'] });
    }
    await this.createDefaultBridge();
    await this.sync();
  }

  private async createDefaultBridge(): Promise<void> {
    const d = this.daemon;
    const bridge = d.bridge ?? 'docker0';
    const bip = d.bip ?? '172.17.0.1/16';
    const subnet = networkOf(bip);
    const gateway = bip.split('/')[0];
    this.pools.claim(subnet);
    await this.addNetwork({
      info: { name: 'bridge', bridge, subnet, gateway, internal: false },
      fw: { name: 'bridge', bridge, subnet, icc: d.icc, masquerade: d['ip-masq'], internal: false },
      pool: new AddressPool(subnet, gateway, d['fixed-cidr']),
      hostBinding: d.ip,
    });
  }

  private async addNetwork(st: NetState): Promise<void> {
    const { bridge, gateway, subnet } = st.info;
    this.hostLines.push(`link add ${bridge} type bridge`, `addr add ${gateway}/${parseCidr(subnet).prefix} dev ${bridge}`, `link set ${bridge} up`);
    if (!this.daemon['userland-proxy']) this.hostSysctls[`net.ipv4.conf.${bridge}.route_localnet`] = '1';
    if (this.daemon.iptables) this.firewall.setupNetwork(await this.editRules(), st.fw);
    this.nets.set(st.info.name, st);
  }

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    if (this.nets.has(spec.name)) throw new EngineError(`network with name ${spec.name} already exists`);
    const o = spec.options;
    const subnet = spec.subnet ? networkOf(spec.subnet) : this.pools.next();
    if (spec.subnet) this.pools.claim(subnet);
    const gateway = spec.gateway ?? intPlusOne(subnet);
    const bridge = o[OPT_BRIDGE_NAME] ?? `br-${hex(6)}`;
    const info: NetworkInfo = { name: spec.name, bridge, subnet, gateway, internal: spec.internal };
    await this.addNetwork({
      info,
      fw: {
        name: spec.name,
        bridge,
        subnet,
        icc: o[OPT_ICC] !== 'false',
        masquerade: o[OPT_MASQ] !== 'false',
        internal: spec.internal,
        // SNAT to a fixed source comes from com.docker.network.host_ipv4; host_binding_ipv4 is
        // only the default address of published ports (seen with dockerd 20.10.24, which
        // masquerades a network that has host_binding_ipv4)
        hostIp: o[OPT_HOST_IPV4],
      },
      pool: new AddressPool(subnet, gateway),
      hostBinding: o[OPT_HOST_BINDING],
    });
    return info;
  }

  async runContainer(spec: ContainerSpec): Promise<ContainerInfo> {
    if (this.conts.has(spec.name)) throw new EngineError(`Conflict. The container name "/${spec.name}" is already in use`);
    const st: ContState = {
      spec,
      id: hex(32),
      info: { name: spec.name, netnsPath: '', env: [], addresses: {}, mode: 'bridge' },
      endpoints: [],
      forwards: [],
      links: [],
      proxies: [],
    };
    const mode = spec.network === 'host' || spec.network === 'none' ? spec.network : spec.network.startsWith('container:') ? 'container' : 'bridge';
    // dockerd checks these at create time, before any network work (daemon/container_operations.go)
    if (spec.network === 'bridge' && spec.ip) throw new EngineError('user specified IP address is supported on user defined networks only');
    if (spec.network === 'bridge' && spec.aliases.length) throw new EngineError('network-scoped alias is supported only for containers in user defined networks');
    st.info.mode = mode;
    if (mode === 'host') {
      st.info.netnsPath = this.lab.nsPath(this.ctx.hostNs);
    } else if (mode === 'container') {
      const other = this.conts.get(spec.network.slice('container:'.length));
      if (!other) throw new EngineError(`No such container: ${spec.network.slice('container:'.length)}`);
      st.info.netnsPath = other.info.netnsPath;
      st.info.ip = other.info.ip;
      st.info.addresses = { ...other.info.addresses };
    } else {
      st.ns = `c-${spec.name}`;
      st.info.netnsPath = this.lab.nsPath(st.ns);
      this.pendingNs.push(st.ns);
      this.linesFor(st.ns).push('link set lo up');
    }
    if (mode === 'bridge') {
      try {
        const netNames = [spec.network, ...spec.networks];
        for (const [i, n] of netNames.entries()) this.attach(st, n, i === 0 ? spec.ip : undefined);
        await this.publish(st);
        this.linkTo(st);
      } catch (e) {
        this.release(st);
        if (e instanceof EngineError) throw new EngineError(`driver failed programming external connectivity on endpoint ${spec.name}: ${e.message}`);
        throw e;
      }
      const rules = await this.editRules();
      if (this.daemon.iptables) {
        for (const pf of st.forwards) this.firewall.addPortForward(rules, pf);
        for (const l of st.links) this.firewall.addLink(rules, l);
      }
    }
    this.conts.set(spec.name, st);
    return st.info;
  }

  private linesFor(ns: string): string[] {
    let l = this.nsLines.get(ns);
    if (!l) this.nsLines.set(ns, (l = []));
    return l;
  }

  private attach(st: ContState, netName: string, fixedIp?: string): Endpoint {
    const net = this.nets.get(netName);
    if (!net) throw new EngineError(`network ${netName} not found`);
    if (st.endpoints.some((e) => e.net === net)) throw new EngineError(`endpoint with name ${st.spec.name} already exists in network ${netName}`);
    if (fixedIp && !inCidr(fixedIp, net.info.subnet)) throw new EngineError(`Address ${fixedIp} is not in subnet ${net.info.subnet}`);
    const ip = net.pool.allocate(fixedIp);
    const used = new Set(st.endpoints.map((e) => e.ifname));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    const ep: Endpoint = { net, ip, ifname: `eth${n}`, veth: `veth${hex(4).slice(0, 7)}` };
    const prefix = parseCidr(net.info.subnet).prefix;
    this.hostLines.push(`link add ${ep.veth} type veth peer name ${ep.ifname} netns ${this.lab.ns(st.ns!)}`, `link set ${ep.veth} master ${net.info.bridge} up`);
    // Without the userland proxy a container reaches its own published port back through the bridge.
    if (!this.daemon['userland-proxy']) this.hostLines.push(`link set ${ep.veth} type bridge_slave hairpin on`);
    const lines = this.linesFor(st.ns!);
    lines.push(`link set ${ep.ifname} address ${macFor(ip)}`, `addr add ${ip}/${prefix} dev ${ep.ifname}`, `link set ${ep.ifname} up`);
    st.endpoints.push(ep);
    if (gatewayEndpoint(st.endpoints) === ep) lines.push(`route replace default via ${net.info.gateway} dev ${ep.ifname}`);
    st.info.addresses[netName] = ip;
    st.info.ip ??= ip;
    return ep;
  }

  private async publish(st: ContState): Promise<void> {
    const ep = st.endpoints.find((e) => !e.net.info.internal);
    // in the order dockerd allocates them, which is also the order of their rules
    const wanted = dockerBindingOrder(st.spec);
    if (wanted.length === 0 || !ep) return;
    for (const p of wanted) {
      const hostIp = p.hostIp ?? ep.net.hostBinding ?? this.daemon.ip ?? '0.0.0.0';
      const hostPort = this.allocatePort(st, hostIp, p.proto, p.hostPort);
      st.forwards.push({ net: ep.net.fw, containerIp: ep.ip, hostIp, hostPort, containerPort: p.containerPort, proto: p.proto });
      if (this.daemon['userland-proxy']) {
        st.proxies.push({ proto: p.proto, port: hostPort, bind: hostIp });
        this.pendingProxies.push({ proto: p.proto, port: hostPort, bind: hostIp, dst: ep.ip, dstPort: p.containerPort });
      }
    }
  }

  /**
   * A host port from the allocator whose proxy can bind. Like Docker's bridge driver, an
   * ephemeral port whose proxy fails to bind is given back and the next one tried (10 times).
   */
  private allocatePort(st: ContState, hostIp: string, proto: 'tcp' | 'udp', wanted?: number): number {
    for (let attempt = 1; ; attempt++) {
      const port = this.portAlloc.request(hostIp, proto, st.spec.name, wanted);
      if (!this.daemon['userland-proxy']) return port;
      try {
        this.checkProxyBind(st, hostIp, proto, port);
        return port;
      } catch (e) {
        this.portAlloc.release(hostIp, proto, port);
        if (wanted !== undefined || attempt >= 10) throw e;
      }
    }
  }

  /** docker-proxy binds the host port, so overlapping addresses collide like sockets do. */
  private checkProxyBind(st: ContState, hostIp: string, proto: string, port: number): void {
    for (const c of [...this.conts.values(), st]) {
      for (const p of c.proxies) {
        if (p.proto === proto && p.port === port && (p.bind === hostIp || p.bind === '0.0.0.0' || hostIp === '0.0.0.0')) {
          throw new EngineError(`Error starting userland proxy: listen ${proto}4 ${hostIp}:${port}: bind: address already in use`);
        }
      }
    }
  }

  private linkTo(st: ContState): void {
    for (const l of st.spec.links) {
      const target = this.conts.get(l.target);
      if (!target) throw new EngineError(`could not get container for ${l.target}`);
      const mine = st.endpoints.find((e) => e.net.info.name === 'bridge');
      const theirs = target.endpoints.find((e) => e.net.info.name === 'bridge');
      if (!mine || !theirs) throw new EngineError('links are only supported on the default bridge network');
      const ports = exposedPorts(target.spec);
      st.links.push({ net: mine.net.fw, fromIp: mine.ip, toIp: theirs.ip, ports });
    }
  }

  private release(st: ContState): void {
    for (const ep of st.endpoints) ep.net.pool.release(ep.ip);
    for (const f of st.forwards) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    this.pendingProxies = this.pendingProxies.filter((p) => !st.proxies.some((q) => q.port === p.port && q.proto === p.proto && q.bind === p.bind));
    // planned kernel lines for a refused container are dropped with its namespace
    if (st.ns) {
      this.pendingNs = this.pendingNs.filter((n) => n !== st.ns);
      this.nsLines.delete(st.ns);
      this.hostLines = this.hostLines.filter((l) => !st.endpoints.some((e) => l.includes(` ${e.veth} `)));
    }
  }

  async connect(container: string, network: string): Promise<void> {
    const st = this.mustGet(container);
    if (!st.ns) throw new EngineError(`container ${container} has no network namespace of its own (mode ${st.info.mode})`);
    this.attach(st, network);
  }

  async disconnect(container: string, network: string): Promise<void> {
    const st = this.mustGet(container);
    const i = st.endpoints.findIndex((e) => e.net.info.name === network);
    if (i < 0) throw new EngineError(`container ${container} is not connected to network ${network}`);
    const [ep] = st.endpoints.splice(i, 1);
    const rules = this.daemon.iptables ? await this.editRules() : undefined;
    for (const f of st.forwards.filter((f) => f.net === ep.net.fw)) {
      if (rules) this.firewall.removePortForward(rules, f);
    }
    st.forwards = st.forwards.filter((f) => f.net !== ep.net.fw);
    this.hostLines.push(`link del ${ep.veth}`);
    ep.net.pool.release(ep.ip);
    delete st.info.addresses[network];
    // the default route went with the interface: the next endpoint in line provides it
    const gw = gatewayEndpoint(st.endpoints);
    if (gw && gatewayEndpoint([...st.endpoints, ep]) === ep) this.linesFor(st.ns!).push(`route replace default via ${gw.net.info.gateway} dev ${gw.ifname}`);
  }

  async remove(container: string): Promise<void> {
    const st = this.mustGet(container);
    const rules = this.daemon.iptables ? await this.editRules() : undefined;
    if (rules) {
      for (const f of st.forwards) this.firewall.removePortForward(rules, f);
      for (const l of st.links) this.firewall.removeLink(rules, l);
      // links other containers hold to this one go with it
      for (const other of this.conts.values()) {
        const dead = other.links.filter((l) => st.endpoints.some((e) => e.ip === l.toIp));
        for (const l of dead) this.firewall.removeLink(rules, l);
        other.links = other.links.filter((l) => !dead.includes(l));
      }
    }
    for (const p of st.proxies) this.closeProxies.push({ proto: p.proto, port: p.port });
    for (const f of st.forwards) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    for (const ep of st.endpoints) {
      ep.net.pool.release(ep.ip);
      this.hostLines.push(`link del ${ep.veth}`);
    }
    this.conts.delete(container);
    await this.sync();
    if (st.ns) await this.lab.removeNamespace(st.ns);
  }

  async reloadRules(): Promise<void> {
    if (!this.daemon.iptables) return;
    const rules = await this.editRules();
    this.firewall.init(rules, { hairpin: !this.daemon['userland-proxy'], restart: true });
    // dockerd restores its networks; the default bridge is made anew (as a new network) only
    // when no live container is on it
    const live = new Set([...this.conts.values()].flatMap((c) => c.endpoints.map((e) => e.net)));
    const user = [...this.nets.values()].filter((n) => n.info.name !== 'bridge');
    const bridge = this.nets.get('bridge')!;
    for (const n of [...user, ...(live.has(bridge) ? [bridge] : [])]) (this.firewall.restoreNetwork ?? this.firewall.setupNetwork).call(this.firewall, rules, n.fw);
    if (!live.has(bridge)) this.firewall.setupNetwork(rules, bridge.fw);
    for (const c of this.conts.values()) {
      for (const f of c.forwards) this.firewall.addPortForward(rules, f);
      for (const l of c.links) this.firewall.addLink(rules, l);
    }
    await this.sync();
  }

  private mustGet(name: string): ContState {
    const st = this.conts.get(name);
    if (!st) throw new EngineError(`No such container: ${name}`);
    return st;
  }

  /** The rule editor over the lab host's current rules (read once, written by sync()). */
  private async editRules(): Promise<RuleEditor> {
    if (!this.rules) {
      const saved = await this.lab.exec(this.ctx.hostNs, 'iptables-save', []);
      this.rules = new RuleEditor(parseIptablesSave(saved.stdout));
    }
    this.rulesDirty = true;
    return this.rules;
  }

  /** Apply all planned kernel work. */
  async sync(): Promise<void> {
    const lab = this.lab;
    const host = this.ctx.hostNs;
    await lab.addNamespaces(this.pendingNs);
    this.pendingNs = [];
    const hostLines = this.hostLines;
    this.hostLines = [];
    await lab.ip(host, hostLines);
    const nsLines = [...this.nsLines];
    this.nsLines.clear();
    await Promise.all(nsLines.map(([ns, lines]) => lab.ip(ns, lines)));
    if (Object.keys(this.hostSysctls).length) {
      await lab.setSysctls(host, this.hostSysctls);
      this.hostSysctls = {};
    }
    if (this.rules && this.rulesDirty) {
      const text = serializeRuleset(this.rules.toRuleset());
      await lab.exec(host, 'iptables-restore', [], { input: text });
    }
    // Others (a scenario's administrator) may change rules between syncs: read afresh next time.
    this.rules = undefined;
    this.rulesDirty = false;
    await this.applyProxies();
  }

  private async applyProxies(): Promise<void> {
    if (this.pendingProxies.length === 0 && this.closeProxies.length === 0) return;
    if (!this.hostAgent) {
      this.hostAgent = await ProbeAgent.start({ netns: this.lab.nsPath(this.ctx.hostNs), label: 'docker-proxy' });
    }
    for (const c of this.closeProxies) await this.hostAgent.close(c.proto, c.port);
    this.closeProxies = [];
    const todo = this.pendingProxies;
    this.pendingProxies = [];
    await Promise.all(todo.map((p) => this.hostAgent!.proxy(p.proto, p.port, p.dst, p.dstPort, p.bind)));
  }

  networks(): NetworkInfo[] {
    return [...this.nets.values()].map((n) => n.info);
  }

  containers(): ContainerInfo[] {
    return [...this.conts.values()].map((c) => c.info);
  }

  ports(): PortBinding[] {
    return [...this.conts.values()].flatMap((c) =>
      c.forwards.map((f) => ({ container: c.spec.name, hostIp: f.hostIp, hostPort: f.hostPort, containerPort: f.containerPort, proto: f.proto })),
    );
  }

  async stop(): Promise<void> {
    await this.hostAgent?.stop();
    this.hostAgent = undefined;
  }
}

/**
 * The endpoint whose gateway is the container's default route, in libnetwork's endpoint order
 * (sandbox.go epHeap.Less): non-internal networks first, then by network name. Internal bridge
 * networks have a gateway too: seen with dockerd 20.10.24, a container on an --internal
 * network has `default via <gateway>` (its packets then meet the internal DROP rules).
 */
function gatewayEndpoint(eps: Endpoint[]): Endpoint | undefined {
  return [...eps].sort((a, b) => Number(a.net.info.internal) - Number(b.net.info.internal) || (a.net.info.name < b.net.info.name ? -1 : a.net.info.name > b.net.info.name ? 1 : 0))[0];
}

function intPlusOne(subnet: string): string {
  return intToIp(parseCidr(subnet).base + 1);
}

/** Ports a link opens: what the target exposes, including the container side of its -p. */
function exposedPorts(spec: ContainerSpec): { port: number; proto: 'tcp' | 'udp' }[] {
  const seen = new Map<string, { port: number; proto: 'tcp' | 'udp' }>();
  for (const x of [...spec.expose, ...spec.publish.map((p) => ({ port: p.containerPort, proto: p.proto }))]) seen.set(`${x.port}/${x.proto}`, { port: x.port, proto: x.proto });
  return [...seen.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}
