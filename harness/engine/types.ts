// What every engine (the built-in reference engine, a real dockerd) offers the harness.
// An engine turns networks and containers into kernel state inside a lab; it knows nothing
// about probes or assertions.
import type { ContainerSpec, DaemonOptions, HostSpec, NetworkSpec, Scenario } from '../scenario/types.js';
import type { Lab } from '../lab/lab.js';
import type { IptablesVariant } from '../rules/iptables/tools.js';

export interface NetworkInfo {
  name: string; // scenario name; "bridge" is the default network
  driver: 'bridge' | 'macvlan';
  bridge: string; // kernel interface, e.g. docker0 or br-3f2a1c0d9e8b; a macvlan network's parent
  subnet: string; // CIDR
  gateway: string; // IPv4
  internal: boolean;
  /** an --ipv6 network: its IPv6 subnet and gateway */
  subnet6?: string;
  gateway6?: string;
}

export interface PortBinding {
  container: string;
  hostIp: string; // "0.0.0.0" for all addresses
  hostPort: number;
  containerPort: number;
  proto: 'tcp' | 'udp';
}

export interface ContainerInfo {
  name: string;
  /** the hostname its processes see (/etc/hostname, $HOSTNAME) */
  hostname?: string;
  /** network namespace file a probe agent enters (/run/netns/… or /proc/<pid>/ns/net) */
  netnsPath: string;
  /** mount namespace file, when the container has its own view of /etc */
  mntnsPath?: string;
  /** environment of the container's processes (NAME=VALUE) for probes that read it */
  env: string[];
  /** address per network name */
  addresses: Record<string, string>;
  /** IPv6 address per network name (networks with IPv6 only) */
  addresses6?: Record<string, string>;
  /** MAC address per network name */
  macs?: Record<string, string>;
  /** primary address (first network), undefined for host/none */
  ip?: string;
  mode: 'bridge' | 'host' | 'none' | 'container';
}

/** An engine refused an operation the way a daemon would (e.g. a port already allocated). */
export class EngineError extends Error {}

export interface EngineContext {
  lab: Lab;
  /** lab namespace name that plays the Docker host */
  hostNs: string;
  daemon: DaemonOptions;
  /** variables in the daemon's own environment (a release may read them: 29's legacy-link variables) */
  daemonEnv: Record<string, string>;
  /** the host's iptables: iptables-nft or iptables-legacy (each lab host runs one) */
  iptables: IptablesVariant;
  /** progress lines for long steps (daemon start, image import) */
  log: (line: string) => void;
}

export interface Engine {
  readonly name: string;
  /** e.g. "reference docker-20.10" or "dockerd 20.10.24" */
  describe(): string;
  /**
   * An engine that keeps its daemon across scenarios (the real Docker engine) runs it in a
   * host namespace of its own and returns that namespace's name here, before the lab is
   * built; the lab adopts it as that Docker host's namespace (and never deletes it). Engines
   * without this method get a fresh host namespace per scenario.
   */
  provideHost?(sc: Scenario, host: HostSpec): Promise<string>;
  start(ctx: EngineContext): Promise<void>;
  createNetwork(spec: NetworkSpec): Promise<NetworkInfo>;
  runContainer(spec: ContainerSpec): Promise<ContainerInfo>;
  connect(container: string, network: string): Promise<void>;
  disconnect(container: string, network: string): Promise<void>;
  remove(container: string): Promise<void>;
  /** `docker rm --link /<container>/<alias>`: drop one legacy link of a running container */
  unlink(container: string, alias: string): Promise<void>;
  /** reprogram the engine's rules as a daemon restart does */
  reloadRules(): Promise<void>;
  /**
   * The host firewall reloaded (firewalld's Reloaded signal): rewrite what the release
   * rewrites then. Engines without it hear the signal themselves (a real dockerd on the
   * lab's D-Bus).
   */
  firewallReloaded?(): Promise<void>;
  /** wait until everything asked for so far is in the kernel (engines may batch work) */
  sync(): Promise<void>;
  networks(): NetworkInfo[];
  containers(): ContainerInfo[];
  ports(): PortBinding[];
  /** logs of what the engine did during this scenario (a real daemon's), as evidence for a failure */
  evidence?(): Promise<{ name: string; text: string }[]>;
  stop(): Promise<void>;
}
