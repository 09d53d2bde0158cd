// Scenario specs as Docker Engine API requests: what `docker run` and `docker network create`
// would send for the same flags. Pure functions, so the mapping is tested without a daemon.
import type Dockerode from 'dockerode';
import type { ContainerSpec, NetworkSpec } from '../../scenario/types.js';
import { IDLE_COMMAND, IMAGE } from './image.js';

export const LABEL = 'dev.netconform.scenario';

/** Docker container names allow [a-zA-Z0-9][a-zA-Z0-9_.-]+; lab names like hostB/web do not fit. */
export function dockerName(name: string): string {
  return name.replace(/[^A-Za-z0-9_.-]/g, '_');
}

export function isBridgeLike(network: string): boolean {
  return network !== 'host' && network !== 'none' && !network.startsWith('container:');
}

function portKey(port: number, proto: string): string {
  return `${port}/${proto}`;
}

export interface ContainerRequest {
  /** create options without HostConfig (testcontainers' createOpts) */
  create: Omit<Dockerode.ContainerCreateOptions, 'HostConfig'>;
  hostConfig: Dockerode.HostConfig;
}

/** `docker run -d --name … [--network …] [-p …] [-P] [--expose …] [--link …] …` */
export function containerRequest(spec: ContainerSpec, scenarioId: string, networkName: (n: string) => string = (n) => n): ContainerRequest {
  const exposed: Record<string, object> = {};
  for (const x of spec.expose) exposed[portKey(x.port, x.proto)] = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const p of spec.publish) {
    const key = portKey(p.containerPort, p.proto);
    exposed[key] = {};
    (bindings[key] ??= []).push({ HostIp: p.hostIp ?? '', HostPort: p.hostPort === undefined ? '' : String(p.hostPort) });
  }
  const mode = spec.network.startsWith('container:') ? `container:${dockerName(spec.network.slice('container:'.length))}` : isBridgeLike(spec.network) ? networkName(spec.network) : spec.network;
  const endpoint: Dockerode.EndpointSettings = {};
  if (spec.ip) endpoint.IPAMConfig = { IPv4Address: spec.ip };
  if (spec.aliases.length) endpoint.Aliases = [...spec.aliases];
  const create: ContainerRequest['create'] = {
    name: dockerName(spec.name),
    Image: IMAGE,
    Cmd: [...IDLE_COMMAND],
    Labels: { [LABEL]: scenarioId },
    ...(spec.hostname ? { Hostname: spec.hostname } : {}),
    ...(Object.keys(exposed).length ? { ExposedPorts: exposed } : {}),
    ...(isBridgeLike(spec.network) && Object.keys(endpoint).length ? { NetworkingConfig: { EndpointsConfig: { [mode]: endpoint } } } : {}),
  };
  const hostConfig: Dockerode.HostConfig = {
    NetworkMode: mode,
    AutoRemove: false,
    ...(Object.keys(bindings).length ? { PortBindings: bindings } : {}),
    ...(spec.publishAll ? { PublishAllPorts: true } : {}),
    ...(spec.links.length ? { Links: spec.links.map((l) => `${dockerName(l.target)}:${l.alias}`) } : {}),
    ...(spec.addHosts.length ? { ExtraHosts: spec.addHosts.map((h) => `${h.host}:${h.ip}`) } : {}),
    ...(spec.dns.length ? { Dns: [...spec.dns] } : {}),
    ...(spec.dnsSearch.length ? { DnsSearch: [...spec.dnsSearch] } : {}),
  };
  return { create, hostConfig };
}

/** `docker network create [-d DRIVER] [--internal] [--subnet …] [--ip-range …] [--gateway …] [-o k=v …] NAME` */
export function networkRequest(spec: NetworkSpec, scenarioId: string, name = spec.name): Dockerode.NetworkCreateOptions {
  return {
    Name: name,
    CheckDuplicate: true,
    Driver: spec.driver,
    Internal: spec.internal,
    ...(spec.ipv6 ? { EnableIPv6: true } : {}),
    Options: { ...spec.options },
    IPAM: {
      Driver: 'default',
      Config: [
        ...(spec.subnet ? [{ Subnet: spec.subnet, ...(spec.ipRange ? { IPRange: spec.ipRange } : {}), ...(spec.gateway ? { Gateway: spec.gateway } : {}) }] : []),
        ...(spec.subnet6 ? [{ Subnet: spec.subnet6 }] : []),
      ],
    },
    Labels: { [LABEL]: scenarioId },
  };
}

/** `docker network connect [--ip …] [--alias …] NETWORK CONTAINER` */
export function connectRequest(container: string, opts: { ip?: string; aliases?: string[] } = {}): { Container: string; EndpointConfig: Dockerode.EndpointSettings } {
  const ep: Dockerode.EndpointSettings = {};
  if (opts.ip) ep.IPAMConfig = { IPv4Address: opts.ip };
  if (opts.aliases?.length) ep.Aliases = [...opts.aliases];
  return { Container: dockerName(container), EndpointConfig: ep };
}
