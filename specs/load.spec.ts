// The scenario loader: defaults, and every kind of error located at file:line:col, all at once.
import { describe, expect, it } from 'vitest';
import { loadScenarioText } from '../harness/scenario/load.js';
import { errorsOf } from './support/scenario-errors.js';


const minimal = `id: ok
title: a valid scenario
covers: [EG-01]
containers:
  web: { listen: [tcp/80] }
expect:
  - id: EG-01
    reach: { from: web, to: wan, proto: tcp, port: 9000 }
    result: connected
    seen-source: host
`;

describe('scenario loader', () => {
  it('resolves defaults as Docker has them', () => {
    const sc = loadScenarioText(minimal, 'x.yaml');
    expect(sc.hosts).toHaveLength(1);
    const [host] = sc.hosts;
    expect(host).toMatchObject({ name: 'host', address: '203.0.113.1/24', gateway: '203.0.113.254' });
    expect(host.daemon).toMatchObject({ icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true });
    expect(host.containers[0]).toMatchObject({ name: 'web', ref: 'web', network: 'bridge', listen: ['tcp/80'] });
    expect(sc.lan).toEqual({ subnet: '203.0.113.0/24', router: '203.0.113.254', peers: [] });
    expect(sc.expect[0]).toMatchObject({ kind: 'reach', from: 'web', to: 'wan', result: 'connected', seenSource: 'host', phase: 0 });
    expect(sc.expect[0].loc).toEqual({ file: 'x.yaml', line: 7, col: 5 });
    expect(sc.probeTimeoutMs).toBe(300);
  });

  it('expands a matrix into one reach per pair, skipping self-pairs', () => {
    const sc = loadScenarioText(
      minimal.replace('  web: { listen: [tcp/80] }', '  web: {}\n  db: {}\n  cache: {}') +
        '  - id: EG-01\n    matrix: { from: [web, db, cache], to: [web, db, cache], proto: icmp }\n    result: connected\n',
      'x.yaml',
    );
    const pairs = sc.expect.filter((e) => e.kind === 'reach' && e.proto === 'icmp').map((e) => (e.kind === 'reach' ? `${e.from}>${e.to}` : ''));
    expect(pairs).toEqual(['web>db', 'web>cache', 'db>web', 'db>cache', 'cache>web', 'cache>db']);
  });

  it('reports YAML syntax errors with their position', () => {
    expect(errorsOf('id: x\ntitle: [unclosed\n')).toEqual([expect.stringMatching(/^x\.yaml:\d+:\d+: \(top\): YAML syntax: /)]);
  });

  it('names unknown keys at the key, with the allowed ones', () => {
    const errs = errorsOf(minimal.replace('containers:', 'daemon: { icc: true, icc-mode: off }\ncontainers:'));
    expect(errs).toEqual([expect.stringMatching(/^x\.yaml:4:22: daemon\.icc-mode: unknown key 'icc-mode' \(allowed: icc, /)]);
  });

  it('reports schema and cross-reference errors together, sorted by position', () => {
    const text = `id: bad
title: broken
covers: [EG-01, XX-99]
daemon: { icc: maybe }
networks:
  back: { subnet: 10.1.0.0/24, gateway: 10.2.0.1 }
containers:
  web: { network: nowhere, publish: ["8080:80"] }
  db: { network: back, ip: 10.1.1.5, publish: ["8080:80", "99999:1"], links: [ghost] }
expect:
  - id: EG-01
    reach: { from: web, to: nobody, proto: tcp, port: 80 }
    result: connected
  - id: IN-01
    rules: { table: nat, chain: DOCKER }
`;
    expect(errorsOf(text)).toEqual([
      'x.yaml:3:17: covers[1]: unknown catalogue ID XX-99',
      'x.yaml:4:16: daemon.icc: expected boolean, got "maybe"',
      'x.yaml:6:41: networks.back.gateway: gateway 10.2.0.1 is not in subnet 10.1.0.0/24',
      "x.yaml:8:19: containers.web.network: unknown network 'nowhere' (expected bridge, host, none, container:<name> or one of: back)",
      'x.yaml:9:28: containers.db.ip: 10.1.1.5 is not in subnet 10.1.0.0/24 of network back',
      'x.yaml:9:47: containers.db.publish: host port 8080/tcp is already published by web (line 8); add expect-failure if the engine must refuse this',
      'x.yaml:9:59: containers.db.publish[1]: "99999:1": port 99999 is out of range 1-65535',
      "x.yaml:9:79: containers.db.links[0]: link target 'ghost' must be a container declared before db",
      'x.yaml:9:79: containers.db.links[0]: links work on the default bridge network only',
      "x.yaml:12:29: expect[0].reach.to: unknown endpoint 'nobody' (expected a host (host), HOST@<network>, a container, a lan peer, router, wan or an IPv4 address)",
      'x.yaml:14:9: expect[1].id: IN-01 is not listed in covers: [EG-01, XX-99]',
      'x.yaml:15:12: expect[1].rules: rules needs at least one of: contains, absent, exact, golden, policy, exists: false',
    ]);
  });

  it('checks addresses against their subnets', () => {
    expect(errorsOf(minimal.replace('web: { listen: [tcp/80] }', 'web: { ip: 10.0.0.5 }'))).toEqual(['x.yaml:5:14: containers.web.ip: 10.0.0.5 is not in the bridge subnet 172.17.0.0/16']);
    expect(errorsOf(minimal.replace('containers:', 'daemon: { bip: 10.5.0.1/24, fixed-cidr: 10.6.0.0/25 }\ncontainers:'))).toEqual([
      'x.yaml:4:41: daemon.fixed-cidr: fixed-cidr 10.6.0.0/25 is not inside the bridge subnet 10.5.0.0/24',
    ]);
  });

  it('rejects a bad address with the expected form', () => {
    expect(errorsOf(minimal.replace('web: { listen: [tcp/80] }', 'web: { ip: 300.1.1.1 }'))).toEqual([
      'x.yaml:5:14: containers.web.ip: "300.1.1.1": expected an IPv4 address like 198.51.100.7',
    ]);
  });

  it('rejects duplicate keys and scenarios without expectations', () => {
    expect(errorsOf('id: a\nid: b\ntitle: t\ncovers: [EG-01]\n')[0]).toMatch(/^x\.yaml:2:1: \(top\): YAML syntax: Map keys must be unique/);
    expect(errorsOf('id: a\ntitle: t\ncovers: [EG-01]\n')).toEqual(['x.yaml:1:1: (top): the scenario has no expectations (expect: or then[].expect:)']);
  });

  it('checks steps and expectations of later phases', () => {
    const text = `${minimal}then:
  - steps:
      - connect: { container: ghost, network: back }
      - remove: web
    expect:
      - id: EG-01
        reach: { from: web, to: wan, proto: udp }
        result: timeout
`;
    expect(errorsOf(text)).toEqual([
      "x.yaml:13:31: then[0].steps[0].connect.container: unknown container 'ghost'",
      "x.yaml:13:47: then[0].steps[0].connect.network: unknown network 'back'",
      'x.yaml:17:16: then[0].expect[0].reach: udp needs a port (or published: container:port/udp)',
    ]);
  });
});

describe('scenarios with several hosts and a lan', () => {
  const twoHosts = `id: two
title: two hosts
covers: [MH-01]
segments: [trunk]
lan:
  peers:
    nb: { address: 203.0.113.50/24, routes: ["172.17.0.0/16 via hostA"] }
hosts:
  hostA:
    nics: { eth1: trunk }
    containers:
      web: { listen: [tcp/80] }
      db: {}
  hostB:
    address: 203.0.113.7/24
    containers:
      web: {}
expect:
  - id: MH-01
    reach: { from: hostB/web, to: hostA/web, proto: tcp, port: 80 }
    result: connected
  - id: MH-01
    reach: { from: nb, to: db, proto: icmp }
    result: connected
  - id: MH-01
    rules: { host: hostB, table: nat, chain: DOCKER, exact: [] }
then:
  - steps:
      - iptables: -I FORWARD -j DROP
        on: hostA
      - remove: hostB/web
    expect:
      - id: MH-01
        reach: { from: hostA/web, to: nb, proto: icmp }
        result: connected
`;

  it('numbers host addresses on the lan, qualifies container names and resolves the host of steps and rules', () => {
    const sc = loadScenarioText(twoHosts, 'x.yaml');
    expect(sc.hosts.map((h) => [h.name, h.address])).toEqual([
      ['hostA', '203.0.113.1/24'],
      ['hostB', '203.0.113.7/24'],
    ]);
    expect(sc.hosts[0].containers.map((c) => c.ref)).toEqual(['hostA/web', 'hostA/db']);
    expect(sc.hosts[0].nics).toEqual({ eth1: 'trunk' });
    expect(sc.lan.peers[0]).toMatchObject({ name: 'nb', address: '203.0.113.50/24', routes: [{ dest: '172.17.0.0/16', via: 'hostA' }] });
    expect(sc.expect[2]).toMatchObject({ kind: 'rules', host: 'hostB' });
    expect(sc.phases[1].steps).toMatchObject([
      { kind: 'iptables', host: 'hostA', args: '-I FORWARD -j DROP' },
      { kind: 'remove', container: 'hostB/web' },
    ]);
  });

  it('refuses ambiguous names, missing hosts and mixed forms', () => {
    const bad = twoHosts
      .replace('from: hostB/web, to: hostA/web', 'from: web, to: hostA/web')
      .replace('rules: { host: hostB, ', 'rules: { ')
      .replace('        on: hostA\n', '')
      .replace('segments: [trunk]\n', 'segments: [trunk]\ncontainers: { x1: {} }\n')
      .replace('routes: ["172.17.0.0/16 via hostA"]', 'routes: ["172.17.0.0/16 via hostC"]');
    expect(errorsOf(bad)).toEqual([
      "x.yaml:5:13: containers: 'containers' belongs inside each entry of hosts: in a scenario with several hosts",
      "x.yaml:8:46: lan.peers.nb.routes[0]: route via 'hostC': expected a host name (hostA, hostB), router or an address",
      "x.yaml:21:20: expect[0].reach.from: container 'web' exists on several hosts: write host/web",
      'x.yaml:27:12: expect[2].rules: a rules check needs the host it acts on in a scenario with several hosts (one of: hostA, hostB)',
      'x.yaml:30:9: then[0].steps[0]: this step needs the host it acts on in a scenario with several hosts (one of: hostA, hostB)',
    ]);
  });

  it('keeps hosts and peers on the lan, apart from each other', () => {
    const bad = twoHosts.replace('address: 203.0.113.7/24', 'address: 10.0.0.7/24').replace('address: 203.0.113.50/24', 'address: 203.0.113.1/24');
    expect(errorsOf(bad)).toEqual([
      "x.yaml:7:20: lan.peers.nb.address: address 203.0.113.1 is already used by host hostA",
      "x.yaml:15:5: hosts.hostB.gateway: gateway 203.0.113.254 is not in the host's subnet 10.0.0.0/24",
      "x.yaml:15:14: hosts.hostB.address: every host's address must be on the lan 203.0.113.0/24 (the first host's subnet)",
    ]);
  });
});

describe('VLAN steps and frame captures', () => {
  const vlan = `id: v
title: a capture
covers: [VL-02]
segments: [sw]
hosts:
  hostA: { nics: { eth1: sw }, containers: { aa: { listen: [tcp/80] } } }
  hostB: { nics: { eth1: sw }, containers: { bb: { listen: [tcp/80] } } }
expect:
  - id: VL-02
    reach: { from: hostA/aa, to: hostB/bb, proto: tcp, port: 80 }
    result: connected
then:
  - steps:
      - { on: lan, bridge: vlan add dev h0n0 vid 100 pvid untagged }
      - { on: hostA, bridge: vlan show }
    expect:
      - id: VL-02
        frames: { on: lan, dev: h0n0, from: hostA/aa, to: hostB/bb, proto: tcp, port: 80 }
        vlan: 100
      - id: VL-02
        frames: { on: hostA, dev: eth1, from: hostA/aa, to: hostB/bb, proto: icmp }
        vlan: none
`;

  it('reads bridge steps on the switch or a host, and frames with their tag', () => {
    const sc = loadScenarioText(vlan, 'x.yaml');
    expect(sc.phases[1].steps.map((s) => [s.kind, 'host' in s ? s.host : '', 'args' in s ? s.args : ''])).toEqual([
      ['bridge', 'lan', 'vlan add dev h0n0 vid 100 pvid untagged'],
      ['bridge', 'hostA', 'vlan show'],
    ]);
    expect(sc.expect.filter((e) => e.kind === 'frames')).toMatchObject([
      { on: 'lan', dev: 'h0n0', from: 'hostA/aa', to: 'hostB/bb', proto: 'tcp', port: 80, vlan: 100, phase: 1 },
      { on: 'hostA', dev: 'eth1', proto: 'icmp', vlan: 'none' },
    ]);
    // plain JSON: what the microVM runner hands to the guest comes back the same
    expect(JSON.parse(JSON.stringify(sc))).toEqual(sc);
  });

  it('needs a tag, a port for tcp, a known host, and vlan only with frames', () => {
    const bad = vlan
      .replace('        vlan: 100\n', '')
      .replace('to: hostB/bb, proto: icmp }', 'to: hostB/bb, proto: tcp }')
      .replace('on: hostA, dev: eth1', 'on: hostZ, dev: eth1')
      .replace('    result: connected\n', '    result: connected\n    vlan: 5\n');
    const errs = errorsOf(bad).join('\n');
    expect(errs).toMatch(/missing required key 'vlan'/);
    expect(errs).toMatch(/tcp needs a port/);
    expect(errs).toMatch(/hostZ/);
    expect(errs).toMatch(/vlan goes with frames/);
  });
});

describe('Open vSwitch segments and ovs-vsctl steps', () => {
  const ovs = `id: o
title: an OVS switch
covers: [VL-02]
requires: [openvswitch]
segments: [{ name: sw, switch: ovs }, plain, { name: br2, switch: bridge }]
hosts:
  hostA: { nics: { eth1: sw }, containers: { aa: { listen: [tcp/80] } } }
  hostB: { nics: { eth1: sw }, containers: { bb: { listen: [tcp/80] } } }
expect:
  - id: VL-02
    reach: { from: hostA/aa, to: hostB/bb, proto: tcp, port: 80 }
    result: connected
then:
  - steps:
      - { on: lan, ovs-vsctl: set port h0n0 tag=100 }
      - { on: lan, ovs-vsctl: "add-port seg-sw tr1 trunks=100,200" }
    expect:
      - id: VL-02
        reach: { from: hostA/aa, to: hostB/bb, proto: tcp, port: 80 }
        result: timeout
`;

  it('reads which segments are OVS bridges, and ovs-vsctl steps on the switch', () => {
    const sc = loadScenarioText(ovs, 'x.yaml');
    expect(sc.segments).toEqual(['sw', 'plain', 'br2']);
    expect(sc.ovsSegments).toEqual(['sw']);
    expect(sc.phases[1].steps.map((s) => [s.kind, 'host' in s ? s.host : '', 'args' in s ? s.args : ''])).toEqual([
      ['ovs-vsctl', 'lan', 'set port h0n0 tag=100'],
      ['ovs-vsctl', 'lan', 'add-port seg-sw tr1 trunks=100,200'],
    ]);
    expect(JSON.parse(JSON.stringify(sc))).toEqual(sc);
  });

  it('locates a bad switch kind, a bad segment entry and a missing openvswitch requirement', () => {
    expect(errorsOf(ovs.replace('switch: ovs }', 'switch: openflow }'))).toEqual(
      expect.arrayContaining([
        'x.yaml:5:32: segments[0].switch: expected one of: bridge, ovs; got "openflow"',
        'x.yaml:5:12: segments[0]: {"name":"sw","switch":"openflow"}: expected a segment name, or { name: NAME, switch: bridge | ovs }',
      ]),
    );
    expect(errorsOf(ovs.replace('{ name: br2, switch: bridge }', '{ nom: br2 }')).join('\n')).toMatch(/^x\.yaml:5:46: segments\[2\]: .*expected a segment name, or \{ name: NAME, switch: bridge \| ovs \}/m);
    expect(errorsOf(ovs.replace('requires: [openvswitch]', 'requires: [macvlan]'))).toEqual([
      'x.yaml:5:32: segments[0].switch: an Open vSwitch segment needs the kernel datapath: add openvswitch to requires:',
    ]);
  });

  it('runs ovs-vsctl on the lan only, and only where a segment is an OVS bridge', () => {
    expect(errorsOf(ovs.replace('{ on: lan, ovs-vsctl: set port', '{ on: hostA, ovs-vsctl: set port'))).toEqual([
      "x.yaml:15:15: then[0].steps[0].on: ovs-vsctl runs on the lan's switch: write on: lan",
    ]);
    const noOvs = ovs.replace('{ name: sw, switch: ovs }', 'sw');
    expect(errorsOf(noOvs)).toEqual([
      'x.yaml:15:31: then[0].steps[0].ovs-vsctl: no segment of this scenario is an Open vSwitch bridge (segments: [{ name: NAME, switch: ovs }])',
      'x.yaml:16:31: then[0].steps[1].ovs-vsctl: no segment of this scenario is an Open vSwitch bridge (segments: [{ name: NAME, switch: ovs }])',
    ]);
    expect(errorsOf(ovs.replace('{ on: lan, ovs-vsctl: set port h0n0 tag=100 }', '{ on: lan, ovs-vsctl: set port h0n0 tag=100, ip: link show }')).join('\n')).toMatch(
      /then\[0\]\.steps\[0\]: a step has exactly one of: .*ovs-vsctl/,
    );
  });
});

describe('decided-by', () => {
  it('reads decided-by as a rule text, none, { table, chain, verdict, … } or a map per profile', () => {
    const withDecided = (d: string) => minimal + `    decided-by: ${d}\n`;
    const at = (d: string) => loadScenarioText(withDecided(d), 'x.yaml').expect[0];
    expect(at('"-A DOCKER-USER -j DROP"')).toMatchObject({ decidedBy: { rule: '-A DOCKER-USER -j DROP' } });
    expect(at('none')).toMatchObject({ decidedBy: { none: true } });
    expect(at('{ table: filter, chain: FORWARD, verdict: ACCEPT, policy: true }')).toMatchObject({ decidedBy: { table: 'filter', chain: 'FORWARD', verdict: 'ACCEPT', policy: true } });
    expect(at('{ docker-20.10: { table: filter, chain: FORWARD, verdict: DROP }, default: "-j DROP" }')).toMatchObject({
      decidedByBy: { 'docker-20.10': { table: 'filter', chain: 'FORWARD', verdict: 'DROP' }, default: { rule: '-j DROP' } },
    });
  });

  it('locates bad decided-by: its shape, a verdict, a host, a profile, and where it may go', () => {
    const withDecided = (d: string) => minimal + `    decided-by: ${d}\n`;
    expect(errorsOf(withDecided('{ table: filter, chain: FORWARD }'))).toEqual([
      'x.yaml:11:17: expect[0].decided-by: {"table":"filter","chain":"FORWARD"}: expected the deciding rule\'s text, none, or { table, chain, verdict: ACCEPT | DROP | REJECT } (with host, policy: true or rule if wanted), or a map of profile or engine to either',
    ]);
    expect(errorsOf(withDecided('{ table: filter, chain: FORWARD, verdict: DROP, host: elsewhere }'))).toEqual(["x.yaml:11:71: expect[0].decided-by.host: unknown host 'elsewhere' (hosts: host)"]);
    expect(errorsOf(withDecided('{ docker-19: "-j DROP" }'))).toEqual([expect.stringMatching(/^x\.yaml:11:19: expect\[0\]\.decided-by: unknown profile or engine 'docker-19'/)]);
    expect(errorsOf(minimal + '  - id: EG-01\n    rules: { table: nat, chain: POSTROUTING, policy: ACCEPT }\n    decided-by: none\n')).toEqual(['x.yaml:13:17: expect[1].decided-by: decided-by goes with reach or matrix']);
  });
});
