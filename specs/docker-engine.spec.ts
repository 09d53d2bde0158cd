// The docker engine's operations on a real dockerd, beyond what scenarios/ uses today: user
// networks with driver options and --internal, fixed addresses and aliases, links under
// icc=false, network modes, /etc files and environment, connect/disconnect/remove while
// running, a daemon restart; and daemon reuse that leaks nothing between scenarios.
// Where the reference engine implements an operation, the same scenario runs on both engines
// and they must agree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type Dockerode from 'dockerode';
import { dockerPool } from '../harness/engine/docker/pool.js';
import { daemonKey } from '../harness/engine/docker/flags.js';
import { machineIptablesVariant } from '../harness/rules/iptables/tools.js';
import type { ScenarioResult } from '../harness/report/results.js';
import { fingerprintStartingNamespace } from './support/fingerprint.js';
import { expectMachineClean, runBoth, runOn, scenario, specTargets } from './support/engines.js';
import { expectAllPassed } from './support/cases.js';

const isRoot = process.getuid?.() === 0;

/** Every case passed; a skip is a failure here (these labs need nothing this host lacks). */
function expectPassed(r: ScenarioResult): void {
  expectAllPassed(r, { skippedFail: true });
}

describe.skipIf(!isRoot)('docker engine operations', () => {
  let before = '';
  beforeAll(async () => {
    before = await fingerprintStartingNamespace();
  });

  it('user networks: options, --internal, fixed addresses; both engines agree', async () => {
    const sc = scenario(`
id: ops-user-networks
title: user networks with driver options
covers: [UN-01, UN-02, UN-03, UN-06]
host: { addresses: [203.0.113.2/24] }
networks:
  back: { subnet: 10.88.0.0/24 }
  front: {}
  iso: { internal: true, subnet: 10.89.0.0/24 }
  snat: { options: { com.docker.network.host_ipv4: 203.0.113.2 } }
  named: { options: { com.docker.network.bridge.name: br-named } }
  quiet: { options: { com.docker.network.bridge.enable_icc: "false" } }
  bound: { options: { com.docker.network.bridge.host_binding_ipv4: 203.0.113.2 } }
containers:
  aa: { network: back, ip: 10.88.0.10, listen: [tcp/80] }
  bb: { network: back, networks: [front], listen: [tcp/80] }
  cc: { network: front, listen: [tcp/80] }
  dd: { network: iso, ip: 10.89.0.5, listen: [tcp/80] }
  ee: { network: iso, listen: [tcp/80] }
  q1: { network: quiet, listen: [tcp/80] }
  q2: { network: quiet, listen: [tcp/80] }
  nn: { network: named, listen: [tcp/80] }
  hb: { network: bound, publish: ["8080:80"], listen: [tcp/80] }
  sn: { network: snat }
expect:
  - { id: UN-01, reach: { from: bb, to: 10.88.0.10, proto: tcp, port: 80 }, result: connected, seen-source: bb }
  - { id: UN-01, reach: { from: nn, to: wan, proto: tcp, port: 9000 }, result: connected, seen-source: host }
  - { id: UN-02, reach: { from: cc, to: aa, proto: tcp, port: 80 }, result: timeout }
  - { id: UN-02, reach: { from: bb, to: cc, proto: tcp, port: 80 }, result: connected }
  - { id: UN-03, reach: { from: dd, to: ee, proto: tcp, port: 80 }, result: connected }
  - { id: UN-03, reach: { from: dd, to: wan, proto: tcp, port: 9000 }, result: timeout }
  - { id: UN-06, reach: { from: q1, to: q2, proto: tcp, port: 80 }, result: timeout }
  - { id: UN-06, reach: { from: wan, to: 203.0.113.2, proto: tcp, port: 8080 }, result: connected }
  - { id: UN-06, reach: { from: wan, to: host, proto: tcp, port: 8080 }, result: refused }
  - { id: UN-01, rules: { table: filter, chain: FORWARD, contains: ["-o br-named -j DOCKER"] } }
  - { id: UN-03, rules: { table: nat, chain: POSTROUTING, absent: ["-s 10.89.0.0/24 ! -o \${bridge:iso} -j MASQUERADE"] } }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
    const docker = d.docker.snapshots!.at(-1)!.facts;
    expect(docker.bridges.named).toBe('br-named');
    expect(docker.bridges.back).toMatch(/^br-[0-9a-f]{12}$/);
    expect(docker.addresses.aa).toBe('10.88.0.10');
    expect(docker.addresses['bb@front']).toMatch(/^172\.\d+\.0\.2$/);
  });

  it("the default route follows libnetwork's endpoint order, and the default bridge refuses fixed addresses and aliases; both engines agree", async () => {
    // zeta is the primary network, but alpha sorts first: egress leaves through alpha, which
    // does not masquerade, so the outside sees the alpha address and its reply finds no way back
    const sc = scenario(`
id: ops-gateway
title: default route and refusals
covers: [UN-05, BR-01]
networks:
  alpha: { subnet: 10.92.0.0/24, options: { com.docker.network.bridge.enable_ip_masquerade: "false" } }
  zeta: { subnet: 10.93.0.0/24 }
containers:
  multi: { network: zeta, networks: [alpha] }
  pinned: { ip: 172.17.0.50, expect-failure: "user specified IP address" }
  aliased: { aliases: [other], expect-failure: "network-scoped alias" }
expect:
  - { id: UN-05, reach: { from: multi, to: wan, proto: udp, port: 9000 }, result: timeout, seen-source: 10.92.0.2 }
  - { id: BR-01, start: pinned, fails: "user specified IP address is supported on user defined networks only" }
  - { id: BR-01, start: aliased, fails: "network-scoped alias is supported only for containers in user defined networks" }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('links under icc=false open the exposed ports one way; both engines agree', async () => {
    const sc = scenario(`
id: ops-links
title: links under icc=false
covers: [LK-01, LK-02]
daemon: { icc: false }
containers:
  db: { expose: [5432], listen: [tcp/5432, tcp/6000] }
  app: { links: ["db:database"], listen: [tcp/80] }
  other: { listen: [tcp/80] }
expect:
  - { id: LK-02, reach: { from: app, to: db, proto: tcp, port: 5432 }, result: connected }
  - { id: LK-02, reach: { from: app, to: db, proto: tcp, port: 6000 }, result: timeout }
  - { id: LK-02, reach: { from: db, to: app, proto: tcp, port: 80 }, result: timeout }
  - { id: LK-01, reach: { from: other, to: db, proto: tcp, port: 5432 }, result: timeout }
  - { id: LK-02, rules: { table: filter, chain: DOCKER, contains: ["-s \${app}/32 -d \${db}/32 -i docker0 -o docker0 -p tcp -m tcp --dport 5432 -j ACCEPT", "-s \${db}/32 -d \${app}/32 -i docker0 -o docker0 -p tcp -m tcp --sport 5432 -j ACCEPT"] } }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('network modes host, none and container:<name>; both engines agree', async () => {
    const sc = scenario(`
id: ops-modes
title: network modes
covers: [MD-01, MD-02, MD-03]
containers:
  web: { listen: [tcp/80] }
  hostmode: { network: host, listen: [tcp/7100] }
  nonemode: { network: none }
  sidecar: { network: "container:web" }
expect:
  - { id: MD-01, reach: { from: wan, to: host, proto: tcp, port: 7100 }, result: connected, seen-source: wan }
  - { id: MD-02, reach: { from: nonemode, to: wan, proto: tcp, port: 9000 }, result: unreachable }
  - { id: MD-03, reach: { from: sidecar, to: 127.0.0.1, proto: tcp, port: 80 }, result: connected }
  - { id: MD-01, rules: { table: nat, chain: DOCKER, exact: ["-i docker0 -j RETURN"] } }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('hostname, add-host, dns, dns-search and link entries reach the container files and environment; both engines agree', async () => {
    const sc = scenario(`
id: ops-files
title: container files
covers: [MD-04, LK-03]
containers:
  db: { expose: [5432] }
  web:
    hostname: web1
    add-hosts: ["db.example:10.1.2.3"]
    dns: [10.0.0.53]
    dns-search: [example.com]
    links: ["db:database"]
expect:
  - { id: MD-04, file: { container: web, path: /etc/hostname, equals: "web1\\n" } }
  - { id: MD-04, file: { container: web, path: /etc/hosts, contains: ["10.1.2.3\\tdb.example"] } }
  - { id: MD-04, file: { container: web, path: /etc/resolv.conf, contains: ["nameserver 10.0.0.53", "search example.com"] } }
  - { id: LK-03, file: { container: web, path: /etc/hosts, contains: ["database"] } }
  - { id: LK-03, env: { container: web, name: DATABASE_PORT, equals: "tcp://\${db}:5432" } }
  - { id: LK-03, env: { container: web, name: DATABASE_NAME, equals: /web/database } }
`);
    const d = await runBoth(sc);
    expectPassed(d.reference);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('connect, disconnect and remove while running, and a daemon restart; both engines agree', async () => {
    const sc = scenario(`
id: ops-steps
title: steps on a running lab
covers: [UN-05, FW-01]
networks:
  side: { subnet: 10.90.0.0/24 }
containers:
  web: { listen: [tcp/80] }
  peer: { network: side, ip: 10.90.0.20, listen: [tcp/80] }
  gone: { publish: ["8090:80"], listen: [tcp/80] }
expect:
  - { id: UN-05, reach: { from: web, to: 10.90.0.20, proto: tcp, port: 80 }, result: timeout }
then:
  - steps: [{ connect: { container: web, network: side } }]
    expect:
      - { id: UN-05, reach: { from: web, to: 10.90.0.20, proto: tcp, port: 80 }, result: connected, seen-source: 10.90.0.2 }
  - steps: [{ disconnect: { container: web, network: side } }, { remove: gone }]
    expect:
      - { id: UN-05, reach: { from: web, to: 10.90.0.20, proto: tcp, port: 80 }, result: timeout }
      - { id: UN-05, reach: { from: wan, to: host, proto: tcp, port: 8090 }, result: refused }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('a daemon restart reprograms the rules and leaves DOCKER-USER alone; both engines agree', async () => {
    // one network only: dockerd restores user networks in the order of their random ids
    const sc = scenario(`
id: ops-restart
title: restart
covers: [FW-01]
containers:
  web: { publish: ["8080:80"], listen: [tcp/80] }
expect:
  - { id: FW-01, reach: { from: wan, to: host, proto: tcp, port: 8080 }, result: connected }
then:
  - steps: [{ iptables: "-I DOCKER-USER -s 198.51.100.7 -j DROP" }, { restart-rules: true }]
    expect:
      - { id: FW-01, rules: { table: filter, chain: DOCKER-USER, exact: ["-s 198.51.100.7/32 -j DROP", "-j RETURN"] } }
      - { id: FW-01, reach: { from: web, to: wan, proto: tcp, port: 9000 }, result: timeout }
      - { id: FW-01, reach: { from: wan, to: host, proto: tcp, port: 8080 }, result: timeout }
`);
    const d = await runBoth(sc);
    expectPassed(d.docker);
    expectPassed(d.comparison);
  });

  it('a reused daemon starts each scenario clean: no containers, networks or rule changes leak', async () => {
    const messy = scenario(`
id: ops-messy
title: leaves a mess
covers: [FW-01]
networks: { junk: { subnet: 10.91.0.0/24 } }
containers:
  web: { network: junk, networks: [], publish: ["8085:80"], listen: [tcp/80] }
expect:
  - { id: FW-01, reach: { from: wan, to: host, proto: tcp, port: 8085 }, result: connected }
then:
  - steps: [{ iptables: "-I DOCKER-USER -s 198.51.100.9 -j DROP" }, { iptables: "-t nat -A POSTROUTING -o eth0 -j ACCEPT" }, { iptables: "-t raw -A PREROUTING -j ACCEPT" }]
    expect:
      - { id: FW-01, rules: { table: filter, chain: DOCKER-USER, contains: ["-s 198.51.100.9/32 -j DROP"] } }
`);
    const clean = scenario(`
id: ops-clean
title: starts clean
covers: [FW-01, BR-04]
containers: {}
expect:
  - { id: FW-01, rules: { table: filter, chain: DOCKER-USER, exact: ["-j RETURN"] } }
  - { id: BR-04, rules: { table: filter, chain: FORWARD, exact: ["-j DOCKER-USER", "-j DOCKER-ISOLATION-STAGE-1", "-o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT", "-o docker0 -j DOCKER", "-i docker0 ! -o docker0 -j ACCEPT", "-i docker0 -o docker0 -j ACCEPT"] } }
  - { id: BR-04, rules: { table: nat, chain: POSTROUTING, exact: ["-s 172.17.0.0/16 ! -o docker0 -j MASQUERADE"] } }
  - { id: BR-04, rules: { table: nat, chain: DOCKER, exact: ["-i docker0 -j RETURN"] } }
  - { id: BR-04, rules: { table: raw, chain: PREROUTING, absent: ["-j ACCEPT"] } }
`);
    const first = await runOn('docker', messy);
    expectPassed(first);
    const variant = await machineIptablesVariant(); // the run's hosts run the machine's own
    const daemon = dockerPool((await specTargets()).docker)
      .daemons()
      .find((x) => x.key === daemonKey(messy.hosts[0].daemon, { ...messy.hosts[0], iptables: variant }))!;
    const { hostNs, served } = daemon;
    const second = await runOn('docker', clean);
    expectPassed(second);
    expect(daemon.served).toBe(served + 1); // the same daemon served the clean scenario
    expect(daemon.hostNs).toBe(hostNs);
    const docker = daemon.docker as Dockerode;
    expect(await docker.listContainers({ all: true })).toEqual([]);
    expect((await docker.listNetworks()).map((n) => n.Name).sort()).toEqual(['bridge', 'host', 'none']);
    // and the clean scenario saw what a fresh daemon shows: the reference engine agrees
    const fresh = await runBoth(clean);
    expectPassed(fresh.comparison);
  });

  afterAll(() => expectMachineClean(before));
});
