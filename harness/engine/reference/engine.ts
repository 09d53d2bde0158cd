// The reference engine: the project's own implementation of Docker's networking on the kernel,
// with no daemon and no images. Operations plan kernel work (KernelPlan) through a network
// driver (bridge, …) and a firewall driver (the rule layout of one engine release); sync()
// applies it in a handful of batched commands, which is what makes a lab take milliseconds.
import { randomBytes } from 'node:crypto';
import type { ContainerSpec, DaemonOptions, NetworkSpec } from '../../scenario/types.js';
import type { Lab } from '../../lab/lab.js';
import { EngineError, type ContainerInfo, type Engine, type EngineContext, type NetworkInfo, type PortBinding } from '../types.js';
import { AddressPool, PoolAllocator, inCidr, intToIp, macFor, networkOf, parseCidr } from './ipam.js';
import { PortAllocator } from './ports.js';
import { KernelPlan } from './plan.js';
import { ProxyBindError, UserlandProxies, type ProxySpec } from './proxy.js';
import { BridgeDriver } from './drivers/bridge.js';
import type { EndpointPlan, NetworkDriver } from './drivers/types.js';
import { Docker2010Firewall } from './firewall/docker-20.10.js';
import type { BridgeNet, FirewallDriver, LinkRule, PortForward } from './firewall/types.js';

const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
const OPT_ICC = 'com.docker.network.bridge.enable_icc';
const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';

interface NetState {
  info: NetworkInfo;
  driver: NetworkDriver;
  fw: BridgeNet;
  pool: AddressPool;
  hostBinding?: string;
}

interface Endpoint extends EndpointPlan {
  net: NetState;
}

interface ContState {
  spec: ContainerSpec;
  id: string;
  ns?: string; // lab namespace name when the container owns one
  info: ContainerInfo;
  endpoints: Endpoint[];
  forwards: PortForward[];
  links: LinkRule[];
  proxies: ProxySpec[];
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export class ReferenceEngine implements Engine {
  readonly name = 'reference';
  private ctx!: EngineContext;
  private lab!: Lab;
  private daemon!: DaemonOptions;
  private plan!: KernelPlan;
  private proxies!: UserlandProxies;
  private bridgeDriver!: BridgeDriver;
  private readonly firewall: FirewallDriver = new Docker2010Firewall();
  private readonly pools = new PoolAllocator();
  private readonly portAlloc = new PortAllocator();
  private readonly nets = new Map<string, NetState>();
  private readonly conts = new Map<string, ContState>();

  describe(): string {
    return `reference ${this.firewall.profile}`;
  }

  /** Plans the daemon's start; nothing reaches the kernel before the first sync(). */
  async start(ctx: EngineContext): Promise<void> {
    this.ctx = ctx;
    this.lab = ctx.lab;
    this.daemon = ctx.daemon;
    this.plan = new KernelPlan(ctx.lab, ctx.hostNs);
    this.proxies = new UserlandProxies(ctx.lab, ctx.hostNs);
    this.bridgeDriver = new BridgeDriver(ctx.hostNs, !ctx.daemon['userland-proxy']);
    const d = ctx.daemon;
    const state = await this.lab.snapshot(ctx.hostNs, ['net.ipv4.ip_forward']);
    this.plan.seedRules(state.iptablesSave);
    if (d['ip-forward'] && state.sysctls['net.ipv4.ip_forward'] !== '1') {
      // Docker turns forwarding on itself, and then closes the FORWARD policy.
      this.plan.sysctl(ctx.hostNs, 'net.ipv4.ip_forward', '1');
      if (d.iptables) (await this.plan.editRules()).setPolicy('filter', 'FORWARD', 'DROP');
    }
    if (d.iptables) {
      this.plan.sysctl(ctx.hostNs, 'net.bridge.bridge-nf-call-iptables', '1');
      this.firewall.init(await this.plan.editRules(), { hairpin: !d['userland-proxy'] });
    }
    await this.createDefaultBridge();
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
      driver: this.bridgeDriver,
      fw: { name: 'bridge', bridge, subnet, icc: d.icc, masquerade: d['ip-masq'], internal: false },
      pool: new AddressPool(subnet, gateway, d['fixed-cidr']),
      hostBinding: d.ip,
    });
  }

  private async addNetwork(st: NetState): Promise<void> {
    st.driver.create(this.plan, { name: st.info.name, bridge: st.info.bridge, subnet: st.info.subnet, gateway: st.info.gateway });
    if (this.daemon.iptables) this.firewall.setupNetwork(await this.plan.editRules(), st.fw);
    this.nets.set(st.info.name, st);
  }

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    if (this.nets.has(spec.name)) throw new EngineError(`network with name ${spec.name} already exists`);
    const o = spec.options;
    const subnet = spec.subnet ? networkOf(spec.subnet) : this.pools.next();
    if (spec.subnet) this.pools.claim(subnet);
    const gateway = spec.gateway ?? intToIp(parseCidr(subnet).base + 1);
    const bridge = o[OPT_BRIDGE_NAME] ?? `br-${hex(6)}`;
    const info: NetworkInfo = { name: spec.name, bridge, subnet, gateway, internal: spec.internal };
    await this.addNetwork({
      info,
      driver: this.bridgeDriver,
      fw: { name: spec.name, bridge, subnet, icc: o[OPT_ICC] !== 'false', masquerade: o[OPT_MASQ] !== 'false', internal: spec.internal, hostIp: o[OPT_HOST_BINDING] },
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
      st.ns = `${this.ctx.hostNs}-c-${spec.name}`;
      st.info.netnsPath = this.lab.nsPath(st.ns);
      this.plan.addNamespace(st.ns);
      this.plan.ip(st.ns, 'link set lo up');
    }
    if (mode === 'bridge') {
      try {
        const netNames = [spec.network, ...spec.networks];
        for (const [i, n] of netNames.entries()) this.attach(st, n, i === 0 ? spec.ip : undefined);
        this.publish(st);
        this.linkTo(st);
      } catch (e) {
        this.release(st);
        if (e instanceof EngineError || e instanceof ProxyBindError) throw new EngineError(`driver failed programming external connectivity on endpoint ${spec.name}: ${e.message}`);
        throw e;
      }
      if (this.daemon.iptables) {
        const rules = await this.plan.editRules();
        for (const pf of st.forwards) this.firewall.addPortForward(rules, pf);
        for (const l of st.links) this.firewall.addLink(rules, l);
      }
      for (const p of st.proxies) this.proxies.open(p);
    }
    this.conts.set(spec.name, st);
    return st.info;
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
    const ep: Endpoint = { net, ip, mac: macFor(ip), ifname: `eth${n}`, hostIf: `veth${hex(4).slice(0, 7)}`, containerNsFull: this.lab.ns(st.ns!) };
    net.driver.attach(this.plan, { name: net.info.name, bridge: net.info.bridge, subnet: net.info.subnet, gateway: net.info.gateway }, ep);
    const prefix = parseCidr(net.info.subnet).prefix;
    this.plan.ip(st.ns!, `link set ${ep.ifname} address ${ep.mac}`, `addr add ${ip}/${prefix} dev ${ep.ifname}`, `link set ${ep.ifname} up`);
    // The first endpoint on a network with a gateway provides the default route.
    if (!net.info.internal && !st.endpoints.some((e) => !e.net.info.internal)) this.plan.ip(st.ns!, `route add default via ${net.info.gateway} dev ${ep.ifname}`);
    st.endpoints.push(ep);
    st.info.addresses[netName] = ip;
    st.info.ip ??= ip;
    return ep;
  }

  private publish(st: ContState): void {
    const ep = st.endpoints.find((e) => !e.net.info.internal);
    const wanted = [...st.spec.publish.map((p) => ({ ...p }))];
    if (st.spec.publishAll) {
      for (const x of st.spec.expose) wanted.push({ raw: `${x.port}/${x.proto}`, containerPort: x.port, proto: x.proto });
    }
    if (wanted.length === 0 || !ep) return;
    for (const p of wanted) {
      const hostIp = p.hostIp ?? ep.net.hostBinding ?? this.daemon.ip ?? '0.0.0.0';
      const hostPort = this.allocatePort(st, hostIp, p.proto, p.hostPort);
      st.forwards.push({ net: ep.net.fw, containerIp: ep.ip, hostIp, hostPort, containerPort: p.containerPort, proto: p.proto });
      if (this.daemon['userland-proxy']) st.proxies.push({ proto: p.proto, port: hostPort, bind: hostIp, dst: ep.ip, dstPort: p.containerPort });
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
        this.proxies.checkFree(proto, hostIp, port);
        // ports of this container's earlier mappings are not registered with the proxies yet
        if (st.proxies.some((p) => p.proto === proto && p.port === port && (p.bind === hostIp || p.bind === '0.0.0.0' || hostIp === '0.0.0.0'))) {
          throw new ProxyBindError(`Error starting userland proxy: listen ${proto}4 ${hostIp}:${port}: bind: address already in use`);
        }
        return port;
      } catch (e) {
        this.portAlloc.release(hostIp, proto, port);
        if (wanted !== undefined || attempt >= 10) throw e;
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
      st.links.push({ net: mine.net.fw, fromIp: mine.ip, toIp: theirs.ip, ports: exposedPorts(target.spec) });
    }
  }

  /** Undo the bookkeeping and planned kernel work of a container the engine refused. */
  private release(st: ContState): void {
    for (const ep of st.endpoints) ep.net.pool.release(ep.ip);
    for (const f of st.forwards) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    if (st.ns) this.plan.dropNamespace(st.ns, [...st.endpoints.map((e) => e.hostIf), this.lab.ns(st.ns)]);
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
    const gone = st.forwards.filter((f) => f.net === ep.net.fw);
    if (this.daemon.iptables) {
      const rules = await this.plan.editRules();
      for (const f of gone) this.firewall.removePortForward(rules, f);
    }
    for (const f of gone) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    st.forwards = st.forwards.filter((f) => f.net !== ep.net.fw);
    ep.net.driver.detach(this.plan, { name: ep.net.info.name, bridge: ep.net.info.bridge, subnet: ep.net.info.subnet, gateway: ep.net.info.gateway }, ep);
    ep.net.pool.release(ep.ip);
    delete st.info.addresses[network];
  }

  async remove(container: string): Promise<void> {
    const st = this.mustGet(container);
    if (this.daemon.iptables) {
      const rules = await this.plan.editRules();
      for (const f of st.forwards) this.firewall.removePortForward(rules, f);
      for (const l of st.links) this.firewall.removeLink(rules, l);
      // links other containers hold to this one go with it
      for (const other of this.conts.values()) {
        const dead = other.links.filter((l) => st.endpoints.some((e) => e.ip === l.toIp));
        for (const l of dead) this.firewall.removeLink(rules, l);
        other.links = other.links.filter((l) => !dead.includes(l));
      }
    }
    for (const p of st.proxies) this.proxies.close(p);
    for (const f of st.forwards) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    for (const ep of st.endpoints) {
      ep.net.pool.release(ep.ip);
      ep.net.driver.detach(this.plan, { name: ep.net.info.name, bridge: ep.net.info.bridge, subnet: ep.net.info.subnet, gateway: ep.net.info.gateway }, ep);
    }
    this.conts.delete(container);
    await this.sync();
    if (st.ns) await this.lab.removeNamespace(st.ns);
  }

  async reloadRules(): Promise<void> {
    if (!this.daemon.iptables) return;
    const rules = await this.plan.editRules();
    this.firewall.init(rules, { hairpin: !this.daemon['userland-proxy'] });
    for (const n of this.nets.values()) this.firewall.setupNetwork(rules, n.fw);
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

  /** Apply all planned kernel work. */
  async sync(): Promise<void> {
    await this.plan.apply();
    await this.proxies.apply();
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
    await this.proxies?.stop();
  }
}

/** Ports a link opens: what the target exposes, including the container side of its -p. */
function exposedPorts(spec: ContainerSpec): { port: number; proto: 'tcp' | 'udp' }[] {
  const seen = new Map<string, { port: number; proto: 'tcp' | 'udp' }>();
  for (const x of [...spec.expose, ...spec.publish.map((p) => ({ port: p.containerPort, proto: p.proto }))]) seen.set(`${x.port}/${x.proto}`, { port: x.port, proto: x.proto });
  return [...seen.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}
