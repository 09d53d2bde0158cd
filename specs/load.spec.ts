// The scenario loader: defaults, and every kind of error located at file:line:col, all at once.
import { describe, expect, it } from 'vitest';
import { ScenarioError, formatDiagnostic, loadScenarioText } from '../harness/scenario/load.js';

function errorsOf(text: string): string[] {
  try {
    loadScenarioText(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.errors.map(formatDiagnostic);
    throw e;
  }
  throw new Error('expected the scenario to be rejected');
}

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
    expect(sc.daemon).toMatchObject({ icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true });
    expect(sc.containers[0]).toMatchObject({ name: 'web', network: 'bridge', listen: ['tcp/80'] });
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
      "x.yaml:12:29: expect[0].reach.to: unknown endpoint 'nobody' (expected host, host@<network>, wan, a container or an IPv4 address)",
      'x.yaml:14:9: expect[1].id: IN-01 is not listed in covers: [EG-01, XX-99]',
      'x.yaml:15:12: expect[1].rules: rules needs at least one of: contains, absent, exact, golden, policy',
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
