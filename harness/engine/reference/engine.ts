// The reference engine: the project's own implementation of Docker's networking on the kernel,
// with no daemon and no images. Operations plan kernel work (KernelPlan) through a network
// driver (bridge, …) and a firewall driver (the rule layout of one engine release); sync()
// applies it in a handful of batched commands, which is what makes a lab take milliseconds.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname as machineHostname } from 'node:os';
import { join } from 'node:path';
import type { ContainerSpec, DaemonOptions, NetworkSpec } from '../../scenario/types.js';
import type { Lab } from '../../lab/lab.js';
import { EngineError, type ContainerInfo, type Engine, type EngineContext, type NetworkInfo, type PortBinding } from '../types.js';
import { AddressPool, PoolAllocator, inCidr, intToIp, macFor, networkOf, parseCidr } from './ipam.js';
import { OverlappingPortAllocator, PortAllocator } from './ports.js';
import { dockerBindingOrder, exactFirstOrder, type Binding } from './portorder.js';
import { RELEASES, type ReleaseBehaviour } from './releases.js';

/** dockerd's environment variable that keeps 29's legacy-link variables (daemon/container_operations_unix.go) */
const KEEP_LINK_ENV = 'DOCKER_KEEP_DEPRECATED_LEGACY_LINKS_ENV_VARS';
import { AddressPool6, Pool6Allocator, network6Of } from './ipam6.js';
import { IptablesBackend } from '../../rules/iptables/backend.js';
import { KernelPlan } from './plan.js';
import { ProxyBindError, UserlandProxies, type ProxySpec } from './proxy.js';
import { BridgeDriver } from './drivers/bridge.js';
import { MacvlanDriver, type MacvlanMode } from './drivers/macvlan.js';
import type { EndpointPlan, NetworkDriver } from './drivers/types.js';
import { createFirewall } from './firewall/registry.js';
import { iptablesTools } from '../../rules/iptables/tools.js';
import type { BridgeNet, FirewallDriver, LinkRule, PortForward } from './firewall/types.js';
import { DEFAULT_PROFILE, firewallBackend, type Profile } from '../../targets.js';
import { Refd } from './refd.js';
import { EmbeddedDns } from './embedded-dns.js';
import { DEFAULT_PATH, generatedResolvConf, hostsFile, linkEnv, resolvConf, type HostsRecord } from './container-files.js';

const OPT_BRIDGE_NAME = 'com.docker.network.bridge.name';
const OPT_ICC = 'com.docker.network.bridge.enable_icc';
const OPT_MASQ = 'com.docker.network.bridge.enable_ip_masquerade';
const OPT_HOST_BINDING = 'com.docker.network.bridge.host_binding_ipv4';
const OPT_SNAT_SOURCE = 'com.docker.network.host_ipv4';

interface NetState {
  info: NetworkInfo;
  driver: NetworkDriver;
  /** the firewall's view of a bridge network; macvlan networks have no rules */
  fw?: BridgeNet;
  pool: AddressPool;
  hostBinding?: string;
  /** an --ipv6 network: its IPv6 addresses, and the ip6tables view of it (when ip6tables is on) */
  pool6?: AddressPool6;
  fw6?: BridgeNet;
}

interface Endpoint extends EndpointPlan {
  net: NetState;
  /** names this container also answers to on this network (--network-alias) */
  aliases: string[];
  /** its IPv6 address on an --ipv6 network */
  ip6?: string;
}

/** The files a container's processes see over /etc, as the engine wrote them. */
interface EtcFiles {
  hosts: string;
  resolv: string;
  hostname: string;
}

interface ContState {
  spec: ContainerSpec;
  id: string;
  hostname: string;
  ns?: string; // lab namespace name when the container owns one
  files?: EtcFiles; // paths; shared with the other container in container: mode
  /** --add-host and legacy link records of /etc/hosts, before the container's own */
  extraHosts: HostsRecord[];
  /** the container's own records (an address per network it joined), as the engine keeps them */
  ownHosts: HostsRecord[];
  /**
   * joined a user-defined network once: its resolv.conf names the embedded DNS from then on,
   * also after it left (seen with 20.10.24, 26.1.5 and 28.5.2: leaving rewrites nothing)
   */
  embeddedDns?: boolean;
  info: ContainerInfo;
  endpoints: Endpoint[];
  forwards: PortForward[];
  /** the IPv6 bindings of its published ports that ip6tables NATs (containers with IPv6) */
  forwards6: PortForward[];
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
  private readonly profile?: Profile;
  /** made at start(), for the host's iptables variant */
  private firewall!: FirewallDriver;
  /** the same layout on ip6tables, when the daemon writes ip6tables rules */
  private firewall6?: FirewallDriver;
  private readonly pools6 = new Pool6Allocator();
  /** the host's IPv6 forwarding was off at start; the first IPv6 network turns it on */
  private forwarding6Off = false;
  private forwarding6Done = false;
  private readonly pools = new PoolAllocator();
  private readonly portAlloc: PortAllocator | OverlappingPortAllocator;
  /** what the profile's release does besides its rule layout */
  private readonly behaviour: ReleaseBehaviour;
  private readonly nets = new Map<string, NetState>();
  private readonly conts = new Map<string, ContState>();
  private refd?: Promise<Refd>;
  private pendingMounts: Promise<void>[] = [];
  private dns!: EmbeddedDns;
  private hostResolvConf = '';
  /** the host's link names as last read; forgotten at every sync (the kernel changes then) */
  private hostLinks?: Promise<Set<string>>;

  /** profile: the rule layout of one Docker release (default docker-20.10) */
  constructor(profile: Profile = DEFAULT_PROFILE) {
    this.profile = profile;
    this.behaviour = RELEASES[profile];
    this.portAlloc = this.behaviour.overlappingAllocator ? new OverlappingPortAllocator() : new PortAllocator();
  }

  describe(): string {
    return `reference ${this.profile ?? DEFAULT_PROFILE}`;
  }

  /** Plans the daemon's start; nothing reaches the kernel before the first sync(). */
  async start(ctx: EngineContext): Promise<void> {
    this.ctx = ctx;
    this.lab = ctx.lab;
    this.daemon = ctx.daemon;
    this.plan = new KernelPlan(ctx.lab, ctx.hostNs);
    this.proxies = new UserlandProxies(ctx.lab, ctx.hostNs);
    this.bridgeDriver = new BridgeDriver(ctx.hostNs, !ctx.daemon['userland-proxy']);
    this.dns = new EmbeddedDns(ctx.lab, () => this.helper(), firewallBackend(this.profile ?? DEFAULT_PROFILE), iptablesTools(ctx.iptables));
    this.hostResolvConf = readOptional('/etc/resolv.conf');
    this.helper().catch(() => {}); // starts while the daemon is planned; errors surface on use
    const d = ctx.daemon;
    this.firewall = createFirewall(this.profile, { iptables: ctx.iptables });
    if (d.iptables && writesIp6tables(this.profile ?? DEFAULT_PROFILE, d)) {
      // the layout again, on ip6tables, for IPv6 networks, ports and endpoints (27+ layouts
      // already hold an ip6tables backend for their start chains: the instance shares it)
      const shared = this.firewall.backends.find((b): b is IptablesBackend => b instanceof IptablesBackend && b.tools.family === 'ipv6');
      this.firewall6 = createFirewall(this.profile, { iptables: ctx.iptables, family: 'ipv6', ...(shared ? { backend: shared } : {}) });
    }
    // the host's forwarding and the rules the drivers edit, read in one process
    const read = [...new Set([...this.firewall.backends, ...(this.firewall6?.backends ?? [])])].filter((b) => b.dump);
    const state = await this.lab.snapshot(ctx.hostNs, ['net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding'], read.map((b) => b.dump!));
    this.forwarding6Off = d['ip-forward'] && state.sysctls['net.ipv6.conf.all.forwarding'] !== '1';
    read.forEach((b, i) => this.plan.seed(b, state.dumps[i]));
    const forwardingOff = d['ip-forward'] && state.sysctls['net.ipv4.ip_forward'] !== '1';
    if (forwardingOff && !this.firewall.enablesForwarding) {
      // Docker 29's nftables backend leaves forwarding to the administrator (setup_ip_forwarding.go)
      throw new EngineError("IPv4 forwarding is disabled: check your host's firewalling and set sysctl net.ipv4.ip_forward=1, or disable this check using daemon option --ip-forward=false");
    }
    // The iptables layouts turn forwarding on themselves, and then close the FORWARD policy.
    if (forwardingOff) this.plan.sysctl(ctx.hostNs, 'net.ipv4.ip_forward', '1');
    if (d.iptables) {
      this.plan.sysctl(ctx.hostNs, 'net.bridge.bridge-nf-call-iptables', '1');
      await this.firewall.init(this.plan, { hairpin: !d['userland-proxy'], enabledForwarding: forwardingOff });
      await this.firewall6?.init(this.plan, { hairpin: !d['userland-proxy'] });
    }
    // --ip6tables is a flag of its own (on by default since 27): dockerd 28.5.2 writes its IPv6
    // chains even with --iptables=false (measured)
    if (this.firewall.init6) await this.firewall.init6(this.plan, { hairpin: !d['userland-proxy'] });
    await this.createDefaultBridge();
  }

  private async createDefaultBridge(): Promise<void> {
    const d = this.daemon;
    const bridge = d.bridge ?? 'docker0';
    const bip = d.bip ?? '172.17.0.1/16';
    const subnet = networkOf(bip);
    const gateway = bip.split('/')[0];
    this.pools.claim(subnet);
    const fw: BridgeNet = { name: 'bridge', bridge, subnet, icc: d.icc, masquerade: d['ip-masq'], internal: false };
    await this.addNetwork({
      info: { name: 'bridge', driver: 'bridge', bridge, subnet, gateway, internal: false },
      driver: this.bridgeDriver,
      fw,
      pool: new AddressPool(subnet, gateway, d['fixed-cidr']),
      hostBinding: d.ip,
      ...(d.ipv6 && d['fixed-cidr-v6'] ? this.ipv6Of(fw, network6Of(d['fixed-cidr-v6'])) : {}),
    });
  }

  /** An --ipv6 network's IPv6 side: addresses from its subnet, and its ip6tables view. */
  private ipv6Of(fw: BridgeNet, subnet6: string): Pick<NetState, 'pool6' | 'fw6'> {
    this.pools6.claim(subnet6);
    // an SNAT source (com.docker.network.host_ipv4) is IPv4's: IPv6 masquerades
    return { pool6: new AddressPool6(subnet6), fw6: { ...fw, subnet: subnet6, hostIp: undefined } };
  }

  /**
   * The first IPv6 network turns IPv6 forwarding on (setupIPv6Forwarding: all and default);
   * when it writes ip6tables, Docker then also closes ip6tables' FORWARD.
   */
  private async ensureIpv6Forwarding(): Promise<void> {
    if (this.forwarding6Done || !this.forwarding6Off) return;
    this.forwarding6Done = true;
    this.plan.sysctl(this.ctx.hostNs, 'net.ipv6.conf.default.forwarding', '1');
    this.plan.sysctl(this.ctx.hostNs, 'net.ipv6.conf.all.forwarding', '1');
    // (seen with 20.10.24 and 26.1.5 --experimental --ip6tables, and 28.5.2)
    if (this.firewall6) {
      const ed = await this.plan.edit(this.firewall6.backends[0] as IptablesBackend);
      ed.setPolicy('filter', 'FORWARD', 'DROP');
    }
  }

  private async addNetwork(st: NetState): Promise<void> {
    st.driver.create(this.plan, { name: st.info.name, bridge: st.info.bridge, subnet: st.info.subnet, gateway: st.info.gateway });
    if (this.daemon.iptables && st.fw) await this.firewall.setupNetwork(st.fw);
    if (st.pool6) {
      st.info.subnet6 = st.pool6.subnet;
      st.info.gateway6 = st.pool6.gateway;
      this.plan.ip(this.ctx.hostNs, `addr add ${st.pool6.gateway}/${st.pool6.subnet.split('/')[1]} dev ${st.info.bridge} nodad`);
      await this.ensureIpv6Forwarding();
      if (st.fw6) await this.firewall6?.setupNetwork(st.fw6);
    } else if (this.daemon.iptables && st.fw) {
      await this.firewall6?.setupNetwork(ip6View(st)!);
    }
    this.nets.set(st.info.name, st);
  }

  async createNetwork(spec: NetworkSpec): Promise<NetworkInfo> {
    if (this.nets.has(spec.name)) throw new EngineError(`network with name ${spec.name} already exists`);
    const o = spec.options;
    const subnet = spec.subnet ? networkOf(spec.subnet) : this.pools.next();
    if (spec.subnet) this.pools.claim(subnet);
    const gateway = spec.gateway ?? intToIp(parseCidr(subnet).base + 1);
    if (spec.driver === 'macvlan') return this.createMacvlan(spec, subnet, gateway);
    const bridge = o[OPT_BRIDGE_NAME] ?? `br-${hex(6)}`;
    const info: NetworkInfo = { name: spec.name, driver: 'bridge', bridge, subnet, gateway, internal: spec.internal };
    const fw: BridgeNet = { name: spec.name, bridge, subnet, icc: o[OPT_ICC] !== 'false', masquerade: o[OPT_MASQ] !== 'false', internal: spec.internal, hostIp: o[OPT_SNAT_SOURCE] };
    await this.addNetwork({
      info,
      driver: this.bridgeDriver,
      fw,
      pool: new AddressPool(subnet, gateway, spec.ipRange),
      hostBinding: o[OPT_HOST_BINDING],
      ...(spec.ipv6 ? this.ipv6Of(fw, spec.subnet6 ? network6Of(spec.subnet6) : this.pools6.allocate()) : {}),
    });
    return info;
  }

  /** docker network create -d macvlan -o parent=eth0 [-o macvlan_mode=bridge] … */
  private async createMacvlan(spec: NetworkSpec, subnet: string, gateway: string): Promise<NetworkInfo> {
    const parent = spec.options.parent;
    // Without a parent Docker makes a dummy interface; this kernel may lack the dummy driver.
    if (!parent) throw new EngineError('the reference engine needs a parent for macvlan networks (-o parent=eth0)');
    const mode = (spec.options.macvlan_mode ?? 'bridge') as MacvlanMode;
    if (!['bridge', 'private', 'vepa', 'passthru'].includes(mode)) throw new EngineError(`unknown macvlan mode: ${mode}`);
    const vlan = MacvlanDriver.vlanOf(parent);
    // one read of the host's links per sync: each process costs (and far more in a microVM)
    this.hostLinks ??= this.lab.ipJson(this.ctx.hostNs, ['link', 'show']).then((ls) => new Set(ls.map((l) => l.ifname as string)));
    const links = await this.hostLinks;
    const exists = async (dev: string) => links.has(dev);
    let makesParent = false;
    if (!(await exists(parent))) {
      // Docker's words, then what this engine saw (a flaky case in a guest said eth1 was missing: keep the evidence)
      if (!vlan || !(await exists(vlan.link))) throw new EngineError(`-o parent interface was not found on the host: ${vlan ? vlan.link : parent} (the links of ${this.ctx.hostNs} were: ${[...links].join(', ') || 'none'})`);
      makesParent = true;
    }
    const info: NetworkInfo = { name: spec.name, driver: 'macvlan', bridge: parent, subnet, gateway, internal: spec.internal };
    await this.addNetwork({ info, driver: new MacvlanDriver(this.ctx.hostNs, parent, mode, makesParent), pool: new AddressPool(subnet, gateway, spec.ipRange) });
    return info;
  }

  /** The helper process holding mount namespaces and resolver sockets, started on first use. */
  private helper(): Promise<Refd> {
    this.refd ??= Refd.start(this.lab.nsPath(this.ctx.hostNs));
    return this.refd;
  }

  async runContainer(spec: ContainerSpec): Promise<ContainerInfo> {
    if (this.conts.has(spec.name)) throw new EngineError(`Conflict. The container name "/${spec.name}" is already in use`);
    const mode = spec.network === 'host' || spec.network === 'none' ? spec.network : spec.network.startsWith('container:') ? 'container' : 'bridge';
    refuseConflictingOptions(spec, mode);
    // dockerd checks these at create time, before any network work (daemon/container_operations.go)
    if (spec.network === 'bridge' && spec.ip) throw new EngineError('user specified IP address is supported on user defined networks only');
    if (spec.network === 'bridge' && spec.aliases.length) throw new EngineError('network-scoped alias is supported only for containers in user defined networks');
    const id = hex(32);
    const st: ContState = {
      spec,
      id,
      hostname: spec.hostname ?? (mode === 'host' ? machineHostname() : id.slice(0, 12)),
      extraHosts: spec.addHosts.map((h) => ({ ip: h.ip, names: h.host })),
      ownHosts: [],
      info: { name: spec.name, netnsPath: '', env: [], addresses: {}, mode },
      endpoints: [],
      forwards: [],
      forwards6: [],
      links: [],
      proxies: [],
    };
    let joined: ContState | undefined;
    if (mode === 'host') {
      st.info.netnsPath = this.lab.nsPath(this.ctx.hostNs);
    } else if (mode === 'container') {
      joined = this.conts.get(spec.network.slice('container:'.length));
      if (!joined) throw new EngineError(`No such container: ${spec.network.slice('container:'.length)}`);
      st.info.netnsPath = joined.info.netnsPath;
      st.info.ip = joined.info.ip;
      st.info.addresses = { ...joined.info.addresses };
      st.hostname = joined.hostname;
    } else {
      st.ns = `${this.ctx.hostNs}-c-${spec.name}`;
      st.info.netnsPath = this.lab.nsPath(st.ns);
      this.plan.addNamespace(st.ns);
      this.plan.ip(st.ns, 'link set lo up');
    }
    if (mode === 'bridge') {
      try {
        const netNames = [spec.network, ...spec.networks];
        for (const [i, n] of netNames.entries()) this.attach(st, n, i === 0 ? spec.ip : undefined, i === 0 ? spec.aliases : []);
        this.publish(st);
        this.linkTo(st);
      } catch (e) {
        this.release(st);
        if (e instanceof EngineError || e instanceof ProxyBindError) throw new EngineError(`driver failed programming external connectivity on endpoint ${spec.name}: ${e.message}`);
        throw e;
      }
      if (this.daemon.iptables) {
        for (const ep of st.endpoints) await this.addEndpointRules(ep);
        for (const pf of st.forwards) await this.firewall.addPortForward(pf);
        for (const pf of st.forwards6) await this.firewall6?.addPortForward(pf);
        for (const l of st.links) await this.firewall.addLink(l);
      }
      for (const p of st.proxies) this.proxies.open(p);
    }
    st.info.hostname = st.hostname;
    // HOME: runc sets it for a process that has none, from the user's passwd entry, else / (the
    // suite's busybox image has no /etc/passwd): seen in /proc/1/environ on 20.10 to 29
    st.info.env = [`PATH=${DEFAULT_PATH}`, `HOSTNAME=${st.hostname}`, 'HOME=/', ...st.links.flatMap((l) => l.env)];
    st.files = joined?.files ?? this.writeEtcFiles(st);
    // the mount namespace is made in the background; sync() waits for it
    const files = st.files;
    this.pendingMounts.push(
      this.helper()
        .then((h) => h.mountNamespace(files))
        .then((path) => {
          st.info.mntnsPath = path;
        }),
    );
    this.conts.set(spec.name, st);
    return st.info;
  }

  /** /etc/hosts, /etc/resolv.conf and /etc/hostname of a container, in the lab's state folder. */
  private writeEtcFiles(st: ContState): EtcFiles {
    const dir = join(this.lab.stateDir(), this.ctx.hostNs, st.spec.name);
    mkdirSync(dir, { recursive: true });
    const files = { hosts: join(dir, 'hosts'), resolv: join(dir, 'resolv.conf'), hostname: join(dir, 'hostname') };
    if (st.info.mode === 'host') {
      // a host-mode container sees the host's own files (26+ generate resolv.conf from the
      // host's, untransformed: seen with 28.5.2)
      writeFileSync(files.hosts, readOptional('/etc/hosts'));
      const release = this.behaviour.generatedResolvConf;
      writeFileSync(files.resolv, release ? generatedResolvConf(this.hostResolvConf, { dns: st.spec.dns, dnsSearch: st.spec.dnsSearch, transform: 'none', release }).text : this.hostResolvConf);
    } else {
      this.refreshEtc(st, files);
    }
    writeFileSync(files.hostname, `${st.hostname}\n`);
    return files;
  }

  /** Rewrite /etc/hosts and /etc/resolv.conf in place (same inode: the bind mounts see it). */
  private refreshEtc(st: ContState, files = st.files): void {
    if (!files || st.info.mode === 'host' || st.info.mode === 'container') return;
    writeFileSync(files.hosts, hostsFile(st.extraHosts, st.ownHosts, { netipDefaults: this.behaviour.netipHosts }));
    st.embeddedDns ||= st.endpoints.some((ep) => ep.net.info.name !== 'bridge');
    const embedded = st.embeddedDns;
    const o = { dns: st.spec.dns, dnsSearch: st.spec.dnsSearch };
    const release = this.behaviour.generatedResolvConf;
    const resolv = release ? generatedResolvConf(this.hostResolvConf, { ...o, transform: embedded ? 'internal resolver' : 'legacy', release }) : resolvConf(this.hostResolvConf, { ...o, embedded });
    writeFileSync(files.resolv, resolv.text);
    if (embedded && st.ns) this.dns.want(st.ns);
  }

  private attach(st: ContState, netName: string, fixedIp?: string, aliases: string[] = []): Endpoint {
    const net = this.nets.get(netName);
    if (!net) throw new EngineError(`network ${netName} not found`);
    if (st.endpoints.some((e) => e.net === net)) throw new EngineError(`endpoint with name ${st.spec.name} already exists in network ${netName}`);
    if (fixedIp && !inCidr(fixedIp, net.info.subnet)) throw new EngineError(`Address ${fixedIp} is not in subnet ${net.info.subnet}`);
    const ip = net.pool.allocate(fixedIp);
    const used = new Set(st.endpoints.map((e) => e.ifname));
    let n = 0;
    while (used.has(`eth${n}`)) n++;
    if (net.driver instanceof MacvlanDriver && net.driver.mode === 'passthru' && [...this.conts.values()].some((c) => c.endpoints.some((e) => e.net === net))) {
      // the kernel refuses a second passthru macvlan on one parent; dockerd passes its error on
      throw new EngineError('failed to create the macvlan port: invalid argument');
    }
    const ep: Endpoint = { net, ip, mac: macFor(ip), ifname: `eth${n}`, hostIf: `veth${hex(4).slice(0, 7)}`, containerNs: st.ns!, containerNsFull: this.lab.ns(st.ns!), aliases };
    net.driver.attach(this.plan, { name: net.info.name, bridge: net.info.bridge, subnet: net.info.subnet, gateway: net.info.gateway }, ep);
    const prefix = parseCidr(net.info.subnet).prefix;
    this.plan.ip(st.ns!, `link set ${ep.ifname} address ${ep.mac}`, `addr add ${ip}/${prefix} dev ${ep.ifname}`, `link set ${ep.ifname} up`);
    st.endpoints.push(ep);
    st.ownHosts.push({ ip, names: st.hostname });
    if (gatewayEndpoint(st.endpoints, this.behaviour) === ep) this.plan.ip(st.ns!, `route replace default via ${net.info.gateway} dev ${ep.ifname}`);
    if (net.pool6) {
      ep.ip6 = net.pool6.allocate();
      const first = Object.keys(st.info.addresses6 ?? {}).length === 0;
      this.plan.ip(st.ns!, `addr add ${ep.ip6}/${net.pool6.subnet.split('/')[1]} dev ${ep.ifname} nodad`);
      if (first) this.plan.ip(st.ns!, `route replace ::/0 via ${net.pool6.gateway} dev ${ep.ifname}`);
      (st.info.addresses6 ??= {})[netName] = ep.ip6;
      // /etc/hosts names the container at its IPv6 address too (seen with dockerd 28.5.2)
      st.ownHosts.push({ ip: ep.ip6, names: st.hostname });
    }
    st.info.addresses[netName] = ip;
    (st.info.macs ??= {})[netName] = ep.mac;
    st.info.ip ??= ip;
    return ep;
  }

  private publish(st: ContState): void {
    // ports are published through a bridge network's NAT; macvlan endpoints are reached directly
    const ep = st.endpoints.find((e) => !e.net.info.internal && e.net.fw);
    // in the order dockerd allocates them, which is also the order of their rules
    const exactFirst = this.behaviour.bindingOrder === 'exact-first';
    const wanted = exactFirst ? exactFirstOrder(st.spec) : dockerBindingOrder(st.spec);
    if (wanted.length === 0 || !ep) return;
    // 28 allocates one port for bindings that differ only in their host address (needSamePort)
    const groups: Binding[][] = [];
    for (const p of wanted) {
      if (p.hostIp?.includes(':')) {
        this.publish6(st, ep, p.hostIp, this.allocatePort(st, [p.hostIp], p.proto, p.hostPort), p);
        continue;
      }
      const g = groups.at(-1);
      if (exactFirst && g && g[0].containerPort === p.containerPort && g[0].proto === p.proto && g[0].hostPort === p.hostPort) g.push(p);
      else groups.push([p]);
    }
    for (const g of groups) {
      const hostIps = g.map((p) => p.hostIp ?? ep.net.hostBinding ?? this.daemon.ip ?? '0.0.0.0');
      const hostPort = this.allocatePort(st, hostIps, g[0].proto, g[0].hostPort);
      for (const [i, p] of g.entries()) {
        const hostIp = hostIps[i];
        st.forwards.push({ net: ep.net.fw!, containerIp: ep.ip, hostIp, hostPort, containerPort: p.containerPort, proto: p.proto });
        st.proxies.push({ proto: p.proto, port: hostPort, bind: hostIp, dst: ep.ip, dstPort: p.containerPort, dummy: !this.daemon['userland-proxy'], drops: this.behaviour.heldPortDrops });
        // a binding to all addresses is made for IPv6 too ([::], the same port)
        if (hostIp === '0.0.0.0') this.publish6(st, ep, '::', hostPort, p);
      }
    }
  }

  /**
   * The IPv6 side of a published port (libnetwork's allocatePorts, 20.10 … 28): to the
   * container's IPv6 address, through ip6tables when the daemon writes it; a container
   * without IPv6 is still served on [::] by the userland proxy, relaying to its IPv4 address
   * (kept "for backward compatibility"); without the proxy it gets no IPv6 binding at all.
   * (The probe agent has no IPv6 UDP: UDP bindings get their rules, not a [::] proxy.)
   */
  private publish6(st: ContState, ep: Endpoint, hostIp: string, hostPort: number, p: { containerPort: number; proto: 'tcp' | 'udp' }): void {
    const proxy = this.daemon['userland-proxy'];
    if (!ep.ip6 && !proxy) return;
    if (ep.ip6 && ep.net.fw6) st.forwards6.push({ net: ep.net.fw6, containerIp: ep.ip6, hostIp, hostPort, containerPort: p.containerPort, proto: p.proto });
    if (p.proto === 'udp') return;
    st.proxies.push({ proto: p.proto, port: hostPort, bind: hostIp, dst: ep.ip6 ?? ep.ip, dstPort: p.containerPort, dummy: !proxy, drops: this.behaviour.heldPortDrops });
  }

  /**
   * A host port from the allocator whose proxy can bind on every one of the host addresses.
   * Like Docker's bridge driver, an ephemeral port whose proxy fails to bind is given back and
   * the next one tried (10 times).
   */
  private allocatePort(st: ContState, hostIps: string[], proto: 'tcp' | 'udp', wanted?: number): number {
    for (let attempt = 1; ; attempt++) {
      const port = this.portAlloc.requestAll(hostIps, proto, wanted);
      if (!this.daemon['userland-proxy']) return port;
      try {
        for (const hostIp of hostIps) {
          this.proxies.checkFree(proto, hostIp, port);
          // ports of this container's earlier mappings are not registered with the proxies yet
          const sameFamily = (p: ProxySpec) => p.bind.includes(':') === hostIp.includes(':');
          if (st.proxies.some((p) => p.proto === proto && p.port === port && sameFamily(p) && (p.bind === hostIp || isAny(p.bind) || isAny(hostIp)))) {
            throw new ProxyBindError(`Error starting userland proxy: listen ${proto}4 ${hostIp}:${port}: bind: address already in use`);
          }
        }
        return port;
      } catch (e) {
        for (const hostIp of hostIps) this.portAlloc.release(hostIp, proto, port);
        if (wanted !== undefined || attempt >= 10) throw e;
      }
    }
  }

  /** Legacy links: ACCEPT rules for the target's exposed ports, /etc/hosts records, variables. */
  private linkTo(st: ContState): void {
    for (const l of st.spec.links) {
      const target = this.conts.get(l.target);
      if (!target) throw new EngineError(`could not get container for ${l.target}`);
      const mine = st.endpoints.find((e) => e.net.info.name === 'bridge');
      const theirs = target.endpoints.find((e) => e.net.info.name === 'bridge');
      if (!mine || !theirs) throw new EngineError('links are only supported on the default bridge network');
      const ports = exposedPorts(target.spec);
      const names = l.alias === target.spec.name ? `${l.alias} ${target.hostname}` : `${l.alias} ${target.hostname} ${target.spec.name}`;
      st.extraHosts.push({ ip: theirs.ip, names });
      // 29 writes the variables only when dockerd's own environment keeps them
      const env = !this.behaviour.linkEnvOptIn || this.ctx.daemonEnv?.[KEEP_LINK_ENV] === '1' ? linkEnv({ parent: st.spec.name, alias: l.alias, childIp: theirs.ip, ports }) : [];
      st.links.push({ net: mine.net.fw!, fromIp: mine.ip, toIp: theirs.ip, ports, alias: l.alias, target: l.target, env });
    }
  }

  /** `docker rm --link /<container>/<alias>`: the link's rules and records go. */
  async unlink(container: string, alias: string): Promise<void> {
    const st = this.mustGet(container);
    const link = st.links.find((l) => l.alias === alias);
    if (!link) throw new EngineError(`Cannot get parent /${container} for alias ${alias}`);
    if (this.daemon.iptables) await this.firewall.removeLink(link);
    st.links = st.links.filter((l) => l !== link);
    st.extraHosts = st.extraHosts.filter((r) => !(r.ip === link.toIp && r.names.split(' ')[0] === alias));
    this.refreshEtc(st);
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
    const ep = this.attach(st, network);
    if (this.daemon.iptables) await this.addEndpointRules(ep);
    this.refreshEtc(st);
  }

  // moby's AddEndpoint/DelEndpoint: per-address rules of newer layouts (bridge networks only)
  private async addEndpointRules(ep: Endpoint): Promise<void> {
    if (ep.net.fw) await this.firewall.addEndpoint?.({ net: ep.net.fw, ip: ep.ip });
    if (ep.net.fw6 && ep.ip6) await this.firewall6?.addEndpoint?.({ net: ep.net.fw6, ip: ep.ip6 });
  }

  private async removeEndpointRules(ep: Endpoint): Promise<void> {
    if (ep.net.fw) await this.firewall.removeEndpoint?.({ net: ep.net.fw, ip: ep.ip });
    if (ep.net.fw6 && ep.ip6) await this.firewall6?.removeEndpoint?.({ net: ep.net.fw6, ip: ep.ip6 });
  }

  async disconnect(container: string, network: string): Promise<void> {
    const st = this.mustGet(container);
    const i = st.endpoints.findIndex((e) => e.net.info.name === network);
    if (i < 0) throw new EngineError(`container ${container} is not connected to network ${network}`);
    const [ep] = st.endpoints.splice(i, 1);
    const gone = st.forwards.filter((f) => f.net === ep.net.fw);
    const gone6 = st.forwards6.filter((f) => f.net === ep.net.fw6);
    if (this.daemon.iptables) {
      for (const f of gone) await this.firewall.removePortForward(f);
      for (const f of gone6) await this.firewall6?.removePortForward(f);
      await this.removeEndpointRules(ep);
    }
    st.forwards6 = st.forwards6.filter((f) => !gone6.includes(f));
    if (ep.ip6) {
      ep.net.pool6?.release(ep.ip6);
      delete st.info.addresses6?.[network];
    }
    for (const f of gone) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    st.forwards = st.forwards.filter((f) => f.net !== ep.net.fw);
    ep.net.driver.detach(this.plan, { name: ep.net.info.name, bridge: ep.net.info.bridge, subnet: ep.net.info.subnet, gateway: ep.net.info.gateway }, ep);
    ep.net.pool.release(ep.ip);
    st.ownHosts = st.ownHosts.filter((r) => (this.behaviour.hostsDeleteByName ? r.names !== st.hostname : r.ip !== ep.ip));
    delete st.info.addresses[network];
    delete st.info.macs?.[network];
    if (st.info.ip === ep.ip) st.info.ip = st.endpoints[0]?.ip;
    // the default route went with the interface: the next endpoint in line provides it
    const gw = gatewayEndpoint(st.endpoints, this.behaviour);
    if (gw && gatewayEndpoint([...st.endpoints, ep], this.behaviour) === ep) this.plan.ip(st.ns!, `route replace default via ${gw.net.info.gateway} dev ${gw.ifname}`);
    this.refreshEtc(st);
  }

  async remove(container: string): Promise<void> {
    const st = this.mustGet(container);
    if (this.daemon.iptables) {
      for (const f of st.forwards) await this.firewall.removePortForward(f);
      for (const f of st.forwards6) await this.firewall6?.removePortForward(f);
      for (const l of st.links) await this.firewall.removeLink(l);
      for (const ep of st.endpoints) await this.removeEndpointRules(ep);
      // the rules of links other containers hold to this one go with it (their /etc/hosts
      // records stay, as Docker leaves them)
      for (const other of this.conts.values()) {
        const dead = other.links.filter((l) => l.target === container);
        for (const l of dead) await this.firewall.removeLink(l);
        other.links = other.links.filter((l) => !dead.includes(l));
      }
    }
    for (const p of st.proxies) this.proxies.close(p);
    for (const f of st.forwards) this.portAlloc.release(f.hostIp, f.proto, f.hostPort);
    for (const ep of st.endpoints) {
      ep.net.pool.release(ep.ip);
      if (ep.ip6) ep.net.pool6?.release(ep.ip6);
      ep.net.driver.detach(this.plan, { name: ep.net.info.name, bridge: ep.net.info.bridge, subnet: ep.net.info.subnet, gateway: ep.net.info.gateway }, ep);
    }
    this.conts.delete(container);
    await this.sync();
    if (st.ns) await this.dns.drop(st.ns);
    if (st.info.mntnsPath) await (await this.helper()).releaseMountNamespace(st.info.mntnsPath);
    if (st.ns) await this.lab.removeNamespace(st.ns);
  }

  async reloadRules(): Promise<void> {
    const opts = { hairpin: !this.daemon['userland-proxy'], restart: true };
    if (this.firewall.init6) await this.firewall.init6(this.plan, opts);
    if (!this.daemon.iptables) return this.sync();
    await this.firewall.init(this.plan, opts);
    // the IPv6 instance of a layout without init6 (20.10 and 26 with --experimental --ip6tables)
    if (this.firewall6 && !this.firewall.init6) await this.firewall6.init(this.plan, opts);
    // dockerd restores its networks; the default bridge is made anew (as a new network) only
    // when no live container is on it
    const live = new Set([...this.conts.values()].flatMap((c) => c.endpoints.map((e) => e.net)));
    const user = [...this.nets.values()].filter((n) => n.info.name !== 'bridge' && n.fw);
    const bridge = this.nets.get('bridge')!;
    for (const n of [...user, ...(live.has(bridge) ? [bridge] : [])]) {
      await (this.firewall.restoreNetwork ?? this.firewall.setupNetwork).call(this.firewall, n.fw!);
      const fw6 = ip6View(n);
      if (fw6 && this.firewall6) await (this.firewall6.restoreNetwork ?? this.firewall6.setupNetwork).call(this.firewall6, fw6);
    }
    if (!live.has(bridge)) {
      await this.firewall.setupNetwork(bridge.fw!);
      if (bridge.fw6) await this.firewall6?.setupNetwork(bridge.fw6);
    }
    await this.restoreContainerRules();
    await this.sync();
  }

  /** Every container's endpoint, port and link rules, written again. */
  private async restoreContainerRules(): Promise<void> {
    for (const c of this.conts.values()) {
      for (const ep of c.endpoints) await this.addEndpointRules(ep);
      for (const f of c.forwards) await this.firewall.addPortForward(f);
      for (const f of c.forwards6) await this.firewall6?.addPortForward(f);
      for (const l of c.links) await this.firewall.addLink(l);
    }
  }

  /**
   * firewalld reloaded (its Reloaded signal, after it flushed the host's tables): the daemon
   * writes its rules again, as far as its release does. The firewall driver says what its
   * release re-creates (`onFirewalldReload`; unset: its networks as at a restart); the
   * containers' ports, links and endpoints follow (portmapper ReMapAll, link re-enable).
   * `restore: false` stands for a daemon that missed the signal (the negative check).
   */
  async firewallReloaded(opts: { restore: boolean } = { restore: true }): Promise<void> {
    if (!this.daemon.iptables || !opts.restore) return;
    const o = { hairpin: !this.daemon['userland-proxy'], restart: true };
    const nets = [...this.nets.values()];
    for (const [fw, list] of [
      [this.firewall, nets.flatMap((n) => n.fw ?? [])],
      [this.firewall6, nets.flatMap((n) => ip6View(n) ?? [])],
    ] as const) {
      if (!fw) continue;
      if (fw.onFirewalldReload) {
        await fw.onFirewalldReload(this.plan, list, o);
        continue;
      }
      await fw.init(this.plan, o);
      for (const n of list) await (fw.restoreNetwork ?? fw.setupNetwork).call(fw, n);
    }
    await this.restoreContainerRules();
    await this.sync();
  }

  private mustGet(name: string): ContState {
    const st = this.conts.get(name);
    if (!st) throw new EngineError(`No such container: ${name}`);
    return st;
  }

  /** Apply all planned kernel work. */
  async sync(): Promise<void> {
    this.hostLinks = undefined;
    const mounts = this.pendingMounts;
    this.pendingMounts = [];
    // the proxies and the embedded DNS need the links, not the host's rules
    await Promise.all([this.plan.apply(() => Promise.all([this.proxies.apply(), this.dns.apply((ns) => this.namesSeenFrom(ns))])), ...mounts]);
  }

  /**
   * What the embedded DNS answers a container: the names (container name, short id, network
   * aliases) of every container on each user-defined network it is on, with their addresses
   * on that network.
   */
  private namesSeenFrom(ns: string): Map<string, string[]> {
    const me = [...this.conts.values()].find((c) => c.ns === ns);
    const names = new Map<string, string[]>();
    const add = (name: string, ip: string) => {
      const ips = names.get(name) ?? [];
      if (!ips.includes(ip)) ips.push(ip);
      names.set(name, ips);
    };
    for (const mine of me?.endpoints ?? []) {
      if (mine.net.info.name === 'bridge') continue;
      for (const other of this.conts.values()) {
        const ep = other.endpoints.find((e) => e.net === mine.net);
        if (!ep) continue;
        for (const n of [other.spec.name, other.id.slice(0, 12), ...ep.aliases]) add(n, ep.ip);
      }
    }
    return names;
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
    const refd = this.refd;
    this.refd = undefined;
    await (await refd?.catch(() => undefined))?.stop();
  }
}

/**
 * The endpoint whose gateway is the container's default route, in libnetwork's endpoint order
 * (sandbox.go epHeap.Less): non-internal networks first, then by network name. Up to 20.10
 * internal bridge networks have a gateway too: seen with dockerd 20.10.24, a container on an
 * --internal network has `default via <gateway>` (its packets then meet the internal DROP rules).
 */
function gatewayEndpoint(eps: Endpoint[], release: ReleaseBehaviour): Endpoint | undefined {
  // 26+ give no default route through an internal network (measured on 26.1.5 and 28.5.2:
  // egress from one is ENETUNREACH)
  return [...eps].filter((e) => !(release.internalNoDefaultRoute && e.net.info.internal)).sort((a, b) => Number(a.net.info.internal) - Number(b.net.info.internal) || (a.net.info.name < b.net.info.name ? -1 : a.net.info.name > b.net.info.name ? 1 : 0))[0];
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Options Docker refuses in combination with a network mode that does not own its namespace. */
function refuseConflictingOptions(spec: ContainerSpec, mode: ContainerInfo['mode']): void {
  if (mode === 'host' || mode === 'container') {
    if (spec.hostname && mode === 'container') throw new EngineError('Conflicting options: hostname and the network mode');
    if (spec.links.length) throw new EngineError('Conflicting options: container type network can\'t be used with links. This would result in undefined behavior');
  }
  if (mode === 'container') {
    if (spec.addHosts.length) throw new EngineError('Conflicting options: custom host-to-IP mapping and the network mode');
    if (spec.dns.length || spec.dnsSearch.length) throw new EngineError('Conflicting options: dns and the network mode');
  }
}

/** Ports a link opens: what the target exposes, including the container side of its -p. */
function exposedPorts(spec: ContainerSpec): { port: number; proto: 'tcp' | 'udp' }[] {
  const seen = new Map<string, { port: number; proto: 'tcp' | 'udp' }>();
  for (const x of [...spec.expose, ...spec.publish.map((p) => ({ port: p.containerPort, proto: p.proto }))]) seen.set(`${x.port}/${x.proto}`, { port: x.port, proto: x.proto });
  return [...seen.values()].sort((a, b) => a.port - b.port || a.proto.localeCompare(b.proto));
}

/** The release number of a profile (docker-20.10 → 20.1, docker-28 → 28, docker-29-nftables → 29). */
function release(profile: string): number {
  return parseFloat(profile.replace(/^docker-/, ''));
}

/**
 * Whether the daemon writes ip6tables rules: on by default from 27 (--ip6tables=false turns
 * it off); before, only with --ip6tables and --experimental. The nftables backend writes
 * IPv6 into nftables, which this engine does not model (its IPv6 scenarios are iptables').
 */
function writesIp6tables(profile: string, d: DaemonOptions): boolean {
  if (firewallBackend(profile) !== 'iptables') return false;
  if (release(profile) >= 27) return d.ip6tables !== false;
  return d.ip6tables === true && d.experimental === true;
}

const isAny = (ip: string) => ip === '0.0.0.0' || ip === '::';

/** A network as the ip6tables instance sees it: its IPv6 side, or (IPv4-only) its isolation alone. */
function ip6View(n: NetState): BridgeNet | undefined {
  return n.fw6 ?? (n.fw ? { ...n.fw, isolationOnly: true } : undefined);
}
