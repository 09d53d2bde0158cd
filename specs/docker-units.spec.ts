// Unit specs of the docker engine's pure parts: daemon flags and reuse keys, API requests,
// inspect mapping, dockerd's port-binding order (as the reference engine reproduces it),
// finding dockerd, and symbolic names.
import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bridgeSetup, daemonKey, dockerdArgs, optionFlags } from '../harness/engine/docker/flags.js';
import { pathsFor } from '../harness/engine/docker/paths.js';
import { connectRequest, containerRequest, networkRequest } from '../harness/engine/docker/requests.js';
import { bridgeOf, containerInfo, parseEnviron, portBindings } from '../harness/engine/docker/inspect.js';
import { DockerNotFoundError, findDockerd, locateDocker } from '../harness/engine/docker/locate.js';
import { dockerBindingOrder } from '../harness/engine/reference/portorder.js';
import { symbolize } from '../harness/rules/symbolic.js';
import { loadScenarioText } from '../harness/scenario/load.js';
import type { DaemonOptions } from '../harness/scenario/types.js';

const defaults: DaemonOptions = { icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true };

function containerOf(yaml: string) {
  const sc = loadScenarioText(`id: u\ntitle: u\ncovers: [IN-01]\n${yaml}\nexpect: [{ id: IN-01, rules: { table: nat, chain: DOCKER, policy: ACCEPT } }]\n`, 'unit.yaml');
  return sc.hosts[0].containers;
}

describe('dockerd flags', () => {
  it('maps every daemon option, and never reads the machine daemon.json', () => {
    const p = pathsFor('docker-1-abc', '/tmp/x');
    const args = dockerdArgs({ ...defaults, icc: false, 'userland-proxy': false, bip: '10.66.0.1/16', 'fixed-cidr': '10.66.5.0/24', ip: '203.0.113.2' }, p, '/opt/d/docker-proxy');
    expect(args).toContain('--icc=false');
    expect(args).toContain('--userland-proxy=false');
    expect(args).toContain('--bip=10.66.0.1/16');
    expect(args).toContain('--fixed-cidr=10.66.5.0/24');
    expect(args).toContain('--ip=203.0.113.2');
    expect(args).toContain('--config-file=/tmp/x/docker-1-abc/daemon.json');
    expect(args).toContain('--host=unix:///tmp/x/docker-1-abc/docker.sock');
    expect(args).toContain('--userland-proxy-path=/opt/d/docker-proxy');
    expect(args).toContain('--cgroup-parent=netconform-docker-1-abc');
  });

  it('-b replaces --bip, and the bridge is made beforehand with the --bip address', () => {
    const d = { ...defaults, bridge: 'br0', bip: '192.168.5.1/24' };
    expect(optionFlags(d)).toContain('--bridge=br0');
    expect(optionFlags(d).some((f) => f.startsWith('--bip'))).toBe(false);
    expect(bridgeSetup(d)).toEqual(['link add br0 type bridge', 'addr add 192.168.5.1/24 dev br0', 'link set br0 up']);
    expect(bridgeSetup(defaults)).toEqual([]);
  });

  it('shares a daemon only between scenarios with the same options and host preparation', () => {
    const host = { sysctls: {}, rules: [] };
    expect(daemonKey(defaults, host)).toBe(daemonKey({ ...defaults }, { sysctls: {}, rules: [] }));
    expect(daemonKey(defaults, host)).not.toBe(daemonKey({ ...defaults, icc: false }, host));
    expect(daemonKey(defaults, host)).not.toBe(daemonKey(defaults, { sysctls: { 'net.ipv4.ip_forward': '1' }, rules: [] }));
    expect(daemonKey(defaults, host)).not.toBe(daemonKey(defaults, { sysctls: {}, rules: ['-P FORWARD DROP'] }));
    // the host's iptables variant and an administrator's nft commands are host preparation too
    expect(daemonKey(defaults, { ...host, iptables: 'nft' })).not.toBe(daemonKey(defaults, { ...host, iptables: 'legacy' }));
    expect(daemonKey(defaults, host)).not.toBe(daemonKey(defaults, { ...host, nft: ['add table inet admin'] }));
    // dockerd's own environment: 29 writes legacy-link variables only with one of them
    expect(daemonKey(defaults, { ...host, daemonEnv: {} })).toBe(daemonKey(defaults, host));
    expect(daemonKey(defaults, host)).not.toBe(daemonKey(defaults, { ...host, daemonEnv: { DOCKER_KEEP_DEPRECATED_LEGACY_LINKS_ENV_VARS: '1' } }));
  });

  it('passes Docker 29\'s firewall backend when the target is an nftables profile, and only then', () => {
    expect(optionFlags({ ...defaults, 'firewall-backend': 'nftables' })).toContain('--firewall-backend=nftables');
    expect(optionFlags(defaults).some((f) => f.startsWith('--firewall-backend'))).toBe(false);
  });
});

describe('engine API requests', () => {
  it('builds docker run with HostIp bindings, links, fixed address, aliases and /etc options', () => {
    const [db, web] = containerOf(`
networks: { back: { subnet: 10.88.0.0/24 } }
containers:
  db: { network: bridge, expose: [5432] }
  web:
    network: back
    ip: 10.88.0.9
    aliases: [www]
    publish: ["127.0.0.1:8080:80", "9090:80", "53/udp"]
    hostname: web1
    add-hosts: ["db.example:10.1.2.3"]
    dns: [10.0.0.53]
    dns-search: [example.com]`);
    const r = containerRequest(web, 'u');
    expect(r.hostConfig.NetworkMode).toBe('back');
    expect(r.hostConfig.PortBindings).toEqual({ '80/tcp': [{ HostIp: '127.0.0.1', HostPort: '8080' }, { HostIp: '', HostPort: '9090' }], '53/udp': [{ HostIp: '', HostPort: '' }] });
    expect(r.create.ExposedPorts).toEqual({ '80/tcp': {}, '53/udp': {} });
    expect(r.create.NetworkingConfig).toEqual({ EndpointsConfig: { back: { IPAMConfig: { IPv4Address: '10.88.0.9' }, Aliases: ['www'] } } });
    expect(r.create.Hostname).toBe('web1');
    expect(r.hostConfig.ExtraHosts).toEqual(['db.example:10.1.2.3']);
    expect(r.hostConfig.Dns).toEqual(['10.0.0.53']);
    expect(r.hostConfig.DnsSearch).toEqual(['example.com']);
    expect(containerRequest(db, 'u').create.ExposedPorts).toEqual({ '5432/tcp': {} });
    const [, app] = containerOf(`
containers:
  db: { expose: [5432] }
  app: { links: ["db:database"] }`);
    expect(containerRequest(app, 'u').hostConfig.Links).toEqual(['db:database']);
  });

  it('builds network create with driver options, --internal and IPAM', () => {
    const sc = loadScenarioText(`id: u\ntitle: u\ncovers: [UN-01]\nnetworks:\n  iso: { internal: true, subnet: 10.89.0.0/24, gateway: 10.89.0.254, options: { com.docker.network.bridge.enable_icc: "false" } }\n  free: {}\nexpect: [{ id: UN-01, rules: { table: nat, chain: DOCKER, policy: ACCEPT } }]\n`, 'n.yaml');
    expect(networkRequest(sc.hosts[0].networks[0], 'u')).toMatchObject({ Name: 'iso', Driver: 'bridge', Internal: true, Options: { 'com.docker.network.bridge.enable_icc': 'false' }, IPAM: { Config: [{ Subnet: '10.89.0.0/24', Gateway: '10.89.0.254' }] } });
    expect(networkRequest(sc.hosts[0].networks[1], 'u').IPAM).toEqual({ Driver: 'default', Config: [] });
    expect(connectRequest('web', { ip: '10.89.0.7', aliases: ['w'] })).toEqual({ Container: 'web', EndpointConfig: { IPAMConfig: { IPv4Address: '10.89.0.7' }, Aliases: ['w'] } });
  });
});

describe('inspect mapping', () => {
  it('names bridges as the kernel does', () => {
    expect(bridgeOf({ Id: '3f2a1c0d9e8b77', Driver: 'bridge', Options: {} } as never)).toBe('br-3f2a1c0d9e8b');
    expect(bridgeOf({ Id: 'x', Driver: 'bridge', Options: { 'com.docker.network.bridge.name': 'docker0' } } as never)).toBe('docker0');
    expect(bridgeOf({ Id: 'x', Driver: 'macvlan', Options: { parent: 'eth1' } } as never)).toBe('eth1');
  });

  it('reads IPv4 bindings back in the daemon order, and addresses per network', () => {
    const inspect = {
      State: { Pid: 4242 },
      NetworkSettings: {
        Ports: { '80/tcp': [{ HostIp: '0.0.0.0', HostPort: '32769' }, { HostIp: '::', HostPort: '32768' }], '81/tcp': [{ HostIp: '203.0.113.2', HostPort: '32768' }], '82/tcp': null },
        Networks: { bridge: { IPAddress: '172.17.0.4' } },
      },
    } as never;
    expect(portBindings('eph', inspect)).toEqual([
      { container: 'eph', hostIp: '0.0.0.0', hostPort: 32769, containerPort: 80, proto: 'tcp' },
      { container: 'eph', hostIp: '203.0.113.2', hostPort: 32768, containerPort: 81, proto: 'tcp' },
    ]);
    const [spec] = containerOf('containers:\n  eph: {}');
    const info = containerInfo(spec, inspect, parseEnviron('A=1\0B=2\0'), new Map());
    expect(info).toMatchObject({ netnsPath: '/proc/4242/ns/net', mntnsPath: '/proc/4242/ns/mnt', ip: '172.17.0.4', addresses: { bridge: '172.17.0.4' }, env: ['A=1', 'B=2'] });
  });
});

describe("dockerd's port-binding order (go-connections nat.SortPortMap)", () => {
  const order = (yaml: string) => dockerBindingOrder(containerOf(yaml)[0]).map((b) => `${b.hostIp ?? ''}:${b.hostPort ?? ''}:${b.containerPort}/${b.proto}`);

  it('reverses two bindings of one port (larger host port first)', () => {
    expect(order('containers:\n  cc: { publish: ["127.0.0.1:9090:80", "9091:80"] }')).toEqual([':9091:80/tcp', '127.0.0.1:9090:80/tcp']);
  });

  it('puts the larger container port first when no host port is given', () => {
    expect(order('containers:\n  cc: { publish: ["80", "203.0.113.2::81"] }')).toEqual(['203.0.113.2::81/tcp', '::80/tcp']);
  });

  it('puts tcp before udp on one port, and adds -P ports without a binding', () => {
    expect(order('containers:\n  cc: { publish: ["53/udp", "53"] }')).toEqual(['::53/tcp', '::53/udp']);
    expect(order('containers:\n  cc: { expose: [7000, 7001], publish-all: true }')).toEqual(['::7001/tcp', '::7000/tcp']);
  });
});

describe('finding dockerd', () => {
  it('names what to install when there is none, and which path was wrong', async () => {
    expect(() => findDockerd(undefined, { PATH: '/nonexistent' })).toThrow(/apt-get install -y docker\.io/);
    expect(() => findDockerd('/nonexistent/dockerd', {})).toThrow(DockerNotFoundError);
    expect(() => findDockerd(undefined, { NETCONFORM_DOCKERD: '/nonexistent/dockerd' })).toThrow(/NETCONFORM_DOCKERD \/nonexistent\/dockerd: no such file/);
  });

  it('takes companions from the build folder, and rejects a binary that is not dockerd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'netconform-locate-'));
    for (const [name, body] of [
      ['dockerd', 'echo "Docker version 99.0.0, build test"'],
      ['containerd', 'exit 0'],
      ['containerd-shim-runc-v2', 'exit 0'],
      ['runc', 'exit 0'],
      ['docker-proxy', 'exit 0'],
      ['broken', 'exit 3'],
    ]) {
      writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    }
    symlinkSync('tini-static', join(dir, 'docker-init')); // as the .deb ships it: dangling once copied
    const d = await locateDocker(join(dir, 'dockerd'), { PATH: '' });
    expect(d).toMatchObject({ dockerd: join(dir, 'dockerd'), containerd: join(dir, 'containerd'), proxy: join(dir, 'docker-proxy'), version: 'Docker version 99.0.0, build test' });
    expect(d.companions.map((c) => [c.name, c.origin])).toEqual([
      ['containerd', 'folder'],
      ['containerd-shim-runc-v2', 'folder'],
      ['runc', 'folder'],
      ['docker-proxy', 'folder'],
      ['docker-init', 'missing'],
    ]);
    expect(d.companions.find((c) => c.name === 'docker-init')?.dangling).toBe('tini-static');
    await expect(locateDocker(join(dir, 'broken'), { PATH: '' })).rejects.toThrow(/is not a dockerd \(`--version` said: exit 3\); give the path of a dockerd binary/);
    // a build that lacks a companion stops, even when an installed one is on PATH
    const bin = mkdtempSync(join(tmpdir(), 'netconform-path-'));
    renameSync(join(dir, 'runc'), join(bin, 'runc'));
    await expect(locateDocker(join(dir, 'dockerd'), { PATH: bin })).rejects.toThrow(/lacks runc beside it: put it in/);
    // an installed engine (its folder on PATH) takes its companions from PATH
    renameSync(join(dir, 'dockerd'), join(bin, 'dockerd'));
    expect((await locateDocker(join(bin, 'dockerd'), { PATH: `${bin}:${dir}` })).companions.find((c) => c.name === 'containerd')?.origin).toBe('PATH');
  });
});

describe('symbolic names', () => {
  const facts = {
    addresses: { web: '172.17.0.2', 'web@bridge': '172.17.0.2', 'gateway:bridge': '172.17.0.1', 'gateway:back': '' },
    subnets: { bridge: '172.17.0.0/16' },
    bridges: { bridge: 'docker0', back: 'br-3f2a1c0d9e8b' },
    ports: { 'web:80/tcp': 32769 },
  };

  it('turns engine-specific names into placeholders', () => {
    expect(symbolize('-s 172.17.0.0/16 ! -o br-3f2a1c0d9e8b -j MASQUERADE', facts)).toBe('-s ${subnet:bridge} ! -o ${bridge:back} -j MASQUERADE');
    expect(symbolize('! -i docker0 -p tcp -m tcp --dport 32769 -j DNAT --to-destination 172.17.0.2:80', facts)).toBe('! -i ${bridge:bridge} -p tcp -m tcp --dport ${port:web:80/tcp} -j DNAT --to-destination ${web}:80');
    expect(symbolize('-i vethab12cd3 -j ACCEPT', facts)).toBe('-i veth* -j ACCEPT');
  });

  it('leaves other ports and unknown addresses alone, and ignores empty facts', () => {
    expect(symbolize('-d 172.17.0.22/32 -p tcp -m tcp --dport 80 -j ACCEPT', facts)).toBe('-d 172.17.0.22/32 -p tcp -m tcp --dport 80 -j ACCEPT');
  });
});
