// `${…}` placeholders are checked when a scenario loads (validate, before any lab): an unknown
// one is an error at its `${`, naming what that place knows. The names known statically
// (scenario/placeholders.ts) must be those factsOf gives at run time: the drift guard below
// holds them against real runs on the reference engine.
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { loadScenarioText, loadScenarios } from '../harness/scenario/load.js';
import { placeholderNames } from '../harness/scenario/placeholders.js';
import { describeKnown, expand, keyFor, namesOf, type FactNames, type FactTable, type Facts } from '../harness/rules/symbolic.js';
import { runScenario } from '../harness/run/runner.js';
import { engineFactory } from '../harness/run/suite.js';
import { detectCapabilities, missingFeatures } from '../harness/lab/capabilities.js';
import type { Scenario } from '../harness/scenario/types.js';
import { errorsOf } from './support/scenario-errors.js';

const isRoot = process.getuid?.() === 0;

const base = `id: ph
title: placeholders
covers: [EG-01, IN-01, UN-02]
networks:
  back: { subnet: 10.10.0.0/24 }
containers:
  web: { network: back, publish: ["8080:80"], listen: [tcp/80] }
  db: {}
expect:
  - id: EG-01
    reach: { from: web, to: wan, proto: tcp, port: 9000 }
    result: connected
`;

/** The scenario with these expectations added (YAML, indented as items of expect:). */
const withExpect = (items: string, head = base) => head + items;

/** The file position of the first occurrence of `needle`: where the loader must point. */
function positionOf(text: string, needle: string): string {
  const lines = text.split('\n');
  const line = lines.findIndex((l) => l.includes(needle));
  if (line < 0) throw new Error(`${needle} is not in the text`);
  return `${line + 1}:${lines[line].indexOf(needle) + 1}`;
}

const placeholderErrors = (text: string) => errorsOf(text).filter((e) => e.includes('unknown placeholder'));

describe('unknown placeholders are refused by the loader', () => {
  it('in a rules check: at the ${, with every name the host knows', () => {
    const text = withExpect(`  - id: EG-01
    rules: { table: nat, chain: POSTROUTING, contains: ["-A POSTROUTING -s \${nosuch} ! -o docker0 -j MASQUERADE"] }
`);
    expect(errorsOf(text)).toEqual([
      `x.yaml:${positionOf(text, '${nosuch}')}: expect[1].rules.contains[0]: unknown placeholder \${nosuch} (known: \${web}, \${web@back}, \${db}, \${db@bridge}; ` +
        '${gateway:X}, ${subnet:X}, ${bridge:X} for X in bridge, back; ${port:web:80/tcp}; ${hostname:X} for X in web, db; ${mac:X} for each ${X} above)',
    ]);
  });

  // every place the run expands a text with a host's facts (evaluate.ts, rule-paths.ts)
  const places: [string, string, string][] = [
    ['rules.contains', 'expect[1].rules.contains[1]', `rules: { table: filter, chain: DOCKER, contains: ["-d \${web}/32 -j ACCEPT", "-d \${web.nosuch}/32 -j ACCEPT"] }`],
    ['rules.absent', 'expect[1].rules.absent[0]', `rules: { table: filter, chain: DOCKER, absent: ["-d \${web.nosuch}/32 -j ACCEPT"] }`],
    ['rules.exact', 'expect[1].rules.exact[0]', `rules: { table: filter, chain: DOCKER, exact: ["-d \${web.nosuch}/32 -j ACCEPT"] }`],
    ['rules.chain (nftables)', 'expect[1].rules.chain', `rules: { family: ip, table: docker-bridges, chain: 'filter-forward-in__\${web.nosuch}', exists: false }`],
    ['file.contains', 'expect[1].file.contains[0]', `file: { container: web, path: /etc/hosts, contains: ["\${web.nosuch}\\tweb"] }`],
    ['file.absent', 'expect[1].file.absent[0]', `file: { container: web, path: /etc/hosts, absent: ["\${web.nosuch}"] }`],
    ['file.matches', 'expect[1].file.matches[0]', `file: { container: web, path: /etc/hosts, matches: ["^\${web.nosuch}\\\\s"] }`],
    ['file.equals', 'expect[1].file.equals', `file: { container: web, path: /etc/hostname, equals: "\${web.nosuch}\\n" }`],
    ['file on the host', 'expect[1].file.equals', `file: { host: host, path: /etc/hostname, equals: "\${web.nosuch}" }`],
    ['env.equals', 'expect[1].env.equals', `env: { container: web, name: PEER, equals: "\${web.nosuch}" }`],
  ];
  for (const [place, path, body] of places) {
    it(`in ${place}`, () => {
      const text = withExpect(`  - id: EG-01\n    ${body}\n`);
      expect(placeholderErrors(text)).toEqual([expect.stringMatching(new RegExp(`^x\\.yaml:${positionOf(text, '${web.nosuch}')}: ${path.replace(/[.[\]]/g, '\\$&')}: unknown placeholder \\$\\{web\\.nosuch\\} \\(known: \\$\\{web\\}, `))]);
    });
  }

  const decided: [string, string, string][] = [
    ['a rule text', 'expect[1].decided-by', `decided-by: "-A DOCKER-ISOLATION-STAGE-2 -o \${bridge:nosuch} -j DROP"`],
    ['{ rule }', 'expect[1].decided-by.rule', `decided-by: { table: filter, chain: FORWARD, verdict: DROP, rule: "-o \${bridge:nosuch} -j DROP" }`],
    ['{ chain }', 'expect[1].decided-by.chain', `decided-by: { table: docker-bridges, chain: "filter-forward-in__\${bridge:nosuch}", verdict: DROP }`],
    ['a per-profile map', 'expect[1].decided-by.docker-28.rule', `decided-by: { docker-20.10: none, docker-28: { table: raw, chain: PREROUTING, verdict: DROP, rule: "-d \${bridge:nosuch} -j DROP" }, default: none }`],
  ];
  for (const [form, path, body] of decided) {
    it(`in decided-by: ${form}`, () => {
      const text = withExpect(`  - id: UN-02\n    reach: { from: db, to: web, proto: tcp, port: 80 }\n    result: timeout\n    ${body}\n`);
      expect(placeholderErrors(text)).toEqual([expect.stringMatching(new RegExp(`^x\\.yaml:${positionOf(text, '${bridge:nosuch}')}: ${path.replace(/[.[\]]/g, '\\$&')}: unknown placeholder \\$\\{bridge:nosuch\\} \\(known: `))]);
    });
  }

  it('accepts every form a host knows', () => {
    const text = withExpect(`  - id: EG-01
    rules:
      table: nat
      chain: POSTROUTING
      contains:
        - -s \${subnet:back} ! -o \${bridge:back} -j MASQUERADE
        - -s \${subnet:bridge} ! -o \${bridge:bridge} -j MASQUERADE
        - -d \${web}/32 -d \${web@back}/32 -d \${db@bridge} -d \${gateway:back} --dport \${port:web:80/tcp}
  - id: EG-01
    file: { container: db, path: /etc/hosts, contains: ["\${db}\\t\${hostname:db}"], matches: ["\${mac:web} \${mac:web@back}"] }
  - id: EG-01
    env: { container: web, name: X, equals: "\${hostname:web}" }
`);
    expect(() => loadScenarioText(text, 'x.yaml')).not.toThrow();
  });

  it('reports several in one string, each at its own ${, also in a block scalar and after an escape', () => {
    const text = withExpect(`  - id: EG-01
    file:
      container: web
      path: /etc/hosts
      contains:
        - "\\t\${one}\\t\${web}\\t\${two}"
        - |
          \${web}
            \${three}
        - "\\x24{four}"
`);
    expect(placeholderErrors(text).map((e) => e.split(' (known')[0])).toEqual([
      `x.yaml:${positionOf(text, '${one}')}: expect[1].file.contains[0]: unknown placeholder \${one}`,
      `x.yaml:${positionOf(text, '${two}')}: expect[1].file.contains[0]: unknown placeholder \${two}`,
      `x.yaml:${positionOf(text, '${three}')}: expect[1].file.contains[1]: unknown placeholder \${three}`,
      // written with an escape the source holds no `${`: the error is at the string
      `x.yaml:${positionOf(text, '"\\x24{four}"')}: expect[1].file.contains[2]: unknown placeholder \${four}`,
    ]);
  });

  it('knows the names of the host a check reads: host/name everywhere, a plain name on its own host', () => {
    const head = `id: two
title: two hosts
covers: [MH-01]
hosts:
  hostA:
    containers:
      web: {}
  hostB:
    containers:
      app: { publish: ["8080:80"] }
expect:
  - id: MH-01
    reach: { from: hostA/web, to: hostB/app, proto: tcp, port: 80 }
    result: timeout
`;
    const check = (host: string, rule: string) => `  - id: MH-01\n    rules: { host: ${host}, table: nat, chain: DOCKER, contains: ["${rule}"] }\n`;
    expect(() => loadScenarioText(withExpect(check('hostB', '-d ${app} -d ${hostB/app} -d ${hostA/web} --dport ${port:app:80/tcp}'), head), 'x.yaml')).not.toThrow();
    const text = withExpect(check('hostA', '-d ${app} --dport ${port:app:80/tcp}'), head);
    expect(placeholderErrors(text)).toEqual([
      `x.yaml:${positionOf(text, '${app}')}: expect[1].rules.contains[0]: unknown placeholder \${app} (known on hostA: \${hostA/web}, \${hostA/web@bridge}, \${web}, \${web@bridge}, \${hostB/app}, \${hostB/app@bridge}; ` +
        '${gateway:bridge}, ${subnet:bridge}, ${bridge:bridge}; ${hostname:X} for X in hostA/web, web, hostB/app; ${mac:X} for each ${X} above)',
      expect.stringMatching(/:\d+:\d+: expect\[1\]\.rules\.contains\[0\]: unknown placeholder \$\{port:app:80\/tcp\} \(known on hostA: /),
    ]);
    // decided-by without host: whichever host decided, so the names of any
    const decided = (rule: string) => `  - id: MH-01\n    reach: { from: hostA/web, to: hostB/app, proto: tcp, port: 80 }\n    result: timeout\n    decided-by: "${rule}"\n`;
    expect(() => loadScenarioText(withExpect(decided('-d ${app} -s ${web} -j DROP'), head), 'x.yaml')).not.toThrow();
    expect(placeholderErrors(withExpect(decided('-d ${nosuch} -j DROP'), head))).toEqual([expect.stringContaining('unknown placeholder ${nosuch} (known on any of hostA, hostB: ')]);
  });

  it('knows IPv6 names where there is IPv6, and ports by their IPv4 bindings', () => {
    const head = `id: v6
title: ipv6
covers: [V6-03]
ipv6: true
daemon: { ipv6: true, fixed-cidr-v6: "fd00:dead:beef::/64" }
networks:
  v6net: { subnet: 10.23.0.0/24, subnet6: "fd00:23::/64" }
  v4net: { subnet: 10.24.0.0/24 }
containers:
  web6: { network: v6net, publish: ["8080:80", "[::1]:8083:81"], listen: [tcp/80] }
  web4: { network: v4net, expose: [5432, 53/udp], publish-all: true }
expect:
  - id: V6-03
    reach: { from: web4, to: wan, proto: tcp, port: 9000 }
    result: connected
`;
    const rule = (r: string) => withExpect(`  - id: V6-03\n    rules: { ipv6: true, table: nat, chain: DOCKER, contains: ["${r}"] }\n`, head);
    const good = '-d ${ipv6:web6} ${ipv6:web6@v6net} ${subnet6:v6net} ${gateway6:v6net} ${subnet6:bridge} ${gateway6:bridge} ${port:web6:80/tcp} ${port:web4:5432/tcp} ${port:web4:53/udp}';
    expect(() => loadScenarioText(rule(good), 'x.yaml')).not.toThrow();
    const text = rule('${ipv6:web4} ${subnet6:v4net} ${port:web6:81/tcp}');
    expect(placeholderErrors(text).map((e) => e.split(' (known')[0])).toEqual([
      `x.yaml:${positionOf(text, '${ipv6:web4}')}: expect[1].rules.contains[0]: unknown placeholder \${ipv6:web4}`,
      `x.yaml:${positionOf(text, '${subnet6:v4net}')}: expect[1].rules.contains[0]: unknown placeholder \${subnet6:v4net}`,
      // [::1]:8083:81 binds IPv6 only: the engines' IPv4 bindings (what factsOf reads) have no 81
      `x.yaml:${positionOf(text, '${port:web6:81/tcp}')}: expect[1].rules.contains[0]: unknown placeholder \${port:web6:81/tcp}`,
    ]);
    expect(placeholderErrors(text)[0]).toContain('${subnet6:X}, ${gateway6:X} for X in bridge, v6net; ${ipv6:X} for X in web6, web6@v6net; ${port:X} for X in web6:80/tcp, web4:5432/tcp, web4:53/udp');
  });

  it('knows a network a later step connects a container to', () => {
    const text = `${base}then:
  - steps:
      - connect: { container: db, network: back }
    expect:
      - id: EG-01
        rules: { table: filter, chain: DOCKER, contains: ["-d \${db@back}/32 -j ACCEPT"] }
`;
    expect(() => loadScenarioText(text, 'x.yaml')).not.toThrow();
    expect(placeholderErrors(text.replace('      - connect: { container: db, network: back }\n', '      - restart-rules: true\n'))).toEqual([expect.stringContaining('unknown placeholder ${db@back}')]);
  });

  it('cuts a long list, and says the same at run time', () => {
    const many = Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`c${i}`, `172.17.0.${i + 2}`]));
    const facts: Facts = { addresses: many, subnets: { bridge: '172.17.0.0/16' }, bridges: { bridge: 'docker0' }, ports: {} };
    const said = describeKnown(namesOf(facts));
    expect(said).toBe('${c0}, ${c1}, ${c2}, ${c3}, ${c4}, ${c5}, ${c6}, ${c7}, ${c8}, ${c9}, ${c10}, ${c11}, … 8 more; ${subnet:bridge}, ${bridge:bridge}');
    expect(() => expand('${nosuch}', facts)).toThrow(`unknown placeholder \${nosuch} (known: ${said})`);
    // own keys only, as the loader's sets
    expect(() => expand('${constructor}', facts)).toThrow(/unknown placeholder/);
  });

  it('every scenario of the catalogue and the fixtures validates', () => {
    const { scenarios, errors } = loadScenarios([join(import.meta.dirname, '..', 'scenarios'), join(import.meta.dirname, 'fixtures', 'vm')]);
    expect(errors).toEqual([]);
    expect(scenarios.length).toBeGreaterThan(40);
  });
});

/** The runtime names the static set lacks, as placeholders. */
function missingFrom(known: FactNames, facts: Facts): string[] {
  const runtime = namesOf(facts);
  return (Object.keys(runtime) as FactTable[]).flatMap((t) => [...runtime[t]].filter((n) => !known[t].has(n)).map((n) => `\${${keyFor(t, n)}}`));
}

/** Every host's static names beside the facts of each phase of a real run. */
async function runtimeAgainstStatic(sc: Scenario, engine: string): Promise<{ phases: number; missing: string[]; facts: Facts[] }> {
  const missing = missingFeatures(await detectCapabilities(sc.requires));
  const r = await runScenario(sc, { engineName: engine, makeEngine: engineFactory(engine), missing, environment: { kernel: 'test' }, rulePaths: false });
  const snaps = r.snapshots ?? [];
  const out = snaps.flatMap((s) => missingFrom(placeholderNames(sc, sc.hosts.find((h) => h.name === s.host)!), s.facts).map((k) => `phase ${s.phase} ${s.host}: ${k}`));
  return { phases: snaps.length, missing: out, facts: snaps.map((s) => s.facts) };
}

describe.skipIf(!isRoot)('drift guard: the static names hold every name factsOf gives at run time', () => {
  const { scenarios } = loadScenarios([join(import.meta.dirname, '..', 'scenarios')]);
  const byId = (id: string) => {
    const sc = scenarios.find((s) => s.id === id);
    if (!sc) throw new Error(`no scenario ${id}`);
    return sc;
  };

  const real: [string, string, string][] = [
    ['one host, three networks, connect and disconnect steps', 'networks-user-defined', 'reference'],
    ['two hosts', 'multihost-pipework', 'reference'],
    ['IPv6 networks and published ports', 'ipv6-publish', 'reference:docker-28'],
    ['every -p form', 'ingress-publish-forms', 'reference'],
    ['--network container:', 'modes-container', 'reference'],
  ];
  for (const [what, id, engine] of real) {
    it(`${what} (${id} on ${engine})`, async () => {
      const r = await runtimeAgainstStatic(byId(id), engine);
      expect(r.phases).toBeGreaterThan(0);
      expect(r.missing).toEqual([]);
    });
  }

  it('and no more than it gives, for a lab of every container form with no steps', async () => {
    const sc = loadScenarioText(
      `id: ph-forms
title: every container form
covers: [EG-01]
ipv6: true
daemon: { ipv6: true, fixed-cidr-v6: "fd00:dead:beef::/64" }
networks:
  v6net: { subnet: 10.23.0.0/24, subnet6: "fd00:23::/64" }
  v4net: { subnet: 10.24.0.0/24, internal: true }
containers:
  web6: { network: v6net, networks: [v4net], publish: ["8080:80", "[::1]:8083:81", "127.0.0.1:8084:82/udp"], listen: [tcp/80] }
  web4: { expose: [5432, 53/udp], publish-all: true, publish: ["9090:80"] }
  side: { network: "container:web6" }
  side2: { network: "container:side" }
  hosty: { network: host }
  lonely: { network: none }
expect:
  - id: EG-01
    reach: { from: web4, to: wan, proto: tcp, port: 9000 }
    result: connected
`,
      'forms.yaml',
    );
    const r = await runtimeAgainstStatic(sc, 'reference');
    expect(r.missing).toEqual([]);
    const known = placeholderNames(sc, sc.hosts[0]);
    const runtime = namesOf(r.facts[0]);
    for (const t of Object.keys(known) as FactTable[]) expect([...known[t]].sort(), t).toEqual([...runtime[t]].sort());
  });
});
