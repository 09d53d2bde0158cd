// Loads YAML scenarios: parse with positions, validate against the JSON Schema (ajv), check
// cross-references, resolve defaults. Every problem is reported with file:line:col, the path
// of the offending node and what was expected — all of them at once, before any lab exists.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { LineCounter, isMap, isPair, isScalar, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import Ajv2020Module, { type ErrorObject } from 'ajv/dist/2020.js';
import { CATALOGUE } from '../catalogue.js';
import { inCidr, networkOf, parseCidr } from '../engine/reference/ipam.js';
import { parsePublish } from './publish.js';
import { packageRoot } from '../paths.js';
import type { ContainerSpec, Expectation, Loc, NetworkSpec, Outcome, Proto, PublishSpec, Scenario, Step } from './types.js';

// read from the source tree so the same file serves dist/ and vitest (tsc does not copy JSON)
const schema = JSON.parse(readFileSync(join(packageRoot(), 'harness', 'scenario', 'schema.json'), 'utf8'));
// ajv is CommonJS; under NodeNext the constructor is the module's `default`.
const Ajv2020 = (Ajv2020Module as unknown as { default: typeof Ajv2020Module.default }).default;
const ajv = new Ajv2020({ allErrors: true, verbose: true, strict: false });
const validateSchema = ajv.compile(schema);

export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  path: string; // containers.web.publish[1]
  message: string;
}

export class ScenarioError extends Error {
  constructor(readonly errors: Diagnostic[]) {
    super(errors.map(formatDiagnostic).join('\n'));
  }
}

export function formatDiagnostic(d: Diagnostic): string {
  return `${d.file}:${d.line}:${d.col}: ${d.path || '(top)'}: ${d.message}`;
}

type Path = (string | number)[];

function pathText(p: Path): string {
  return p.map((k, i) => (typeof k === 'number' ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** Positions of nodes in one YAML document. */
class Positions {
  constructor(
    private readonly doc: Document,
    private readonly lc: LineCounter,
    readonly file: string,
  ) {}

  private pos(offset: number): { line: number; col: number } {
    const p = this.lc.linePos(offset);
    return { line: p.line, col: p.col };
  }

  /** Location of the node at `path`; `key` points at a key of the map there instead. */
  loc(path: Path, key?: string): Loc {
    let node = this.doc.getIn(path, true) as YamlNode | undefined;
    // walk up until some ancestor exists (a missing key reports at its parent)
    let p = path;
    while (!node && p.length > 0) {
      p = p.slice(0, -1);
      node = (p.length ? this.doc.getIn(p, true) : this.doc.contents) as YamlNode | undefined;
    }
    if (key !== undefined && isMap(node)) {
      const pair = node.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === key);
      const k = pair?.key as YamlNode | undefined;
      if (k?.range) return { file: this.file, ...this.pos(k.range[0]) };
    }
    const offset = node?.range?.[0] ?? 0;
    return { file: this.file, ...this.pos(offset) };
  }
}

const DEF_MESSAGES: Record<string, string> = {
  ipv4: 'expected an IPv4 address like 198.51.100.7',
  cidr: 'expected an address with prefix length like 172.18.0.0/16',
  name: 'expected a name of at least two characters (letters, digits, _ . -)',
  catalogueId: 'expected a catalogue ID like EG-01',
  listenList: 'expected "tcp/PORT" or "udp/PORT"',
  ifname: 'expected an interface name of at most 15 characters',
};

function ajvMessage(e: ErrorObject): { message: string; key?: string } {
  const def = /\/\$defs\/(\w+)\//.exec(e.schemaPath)?.[1];
  switch (e.keyword) {
    case 'additionalProperties': {
      const allowed = Object.keys((e.parentSchema as { properties?: object })?.properties ?? {});
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      return { key, message: `unknown key '${key}'${allowed.length ? ` (allowed: ${allowed.join(', ')})` : ''}` };
    }
    case 'required':
      return { message: `missing required key '${(e.params as { missingProperty: string }).missingProperty}'` };
    case 'enum':
      return { message: `expected one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}; got ${JSON.stringify(e.data)}` };
    case 'const':
      return { message: `expected ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` };
    case 'type':
      return { message: `expected ${(e.params as { type: string }).type}, got ${JSON.stringify(e.data)}` };
    case 'pattern':
      return { message: `${JSON.stringify(e.data)}: ${(def && DEF_MESSAGES[def]) ?? `does not match ${(e.params as { pattern: string }).pattern}`}` };
    case 'propertyNames':
      return { message: `invalid name: ${DEF_MESSAGES.name}` };
    case 'anyOf':
      return { message: `${JSON.stringify(e.data)}: expected a port number or "PORT/tcp" / "PORT/udp"` };
    case 'minProperties':
    case 'maxProperties':
      return { message: 'a step has exactly one of: connect, disconnect, remove, iptables, restart-rules, ip' };
    default:
      return { message: e.message ?? e.keyword };
  }
}

function schemaDiagnostics(errors: ErrorObject[], at: Positions): Diagnostic[] {
  // anyOf reports its branches too; the anyOf line says it better
  const anyOfPaths = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  const out: Diagnostic[] = [];
  for (const e of errors) {
    if (e.keyword !== 'anyOf' && anyOfPaths.has(e.instancePath)) continue;
    if (e.keyword === 'propertyNames' || (e.keyword === 'pattern' && e.propertyName)) continue;
    const path: Path = e.instancePath
      .split('/')
      .slice(1)
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
      .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
    const { message, key } = ajvMessage(e);
    const loc = at.loc(path, key ?? (e.propertyName as string | undefined));
    out.push({ file: at.file, line: loc.line, col: loc.col, path: pathText(key ? [...path, key] : path), message });
  }
  // propertyNames failures name the key in params
  for (const e of errors.filter((x) => x.keyword === 'propertyNames')) {
    const path: Path = e.instancePath.split('/').slice(1);
    const bad = (e.params as { propertyName: string }).propertyName;
    const loc = at.loc(path, bad);
    out.push({ file: at.file, line: loc.line, col: loc.col, path: pathText([...path, bad]), message: `invalid name '${bad}': ${DEF_MESSAGES.name}` });
  }
  return dedupe(out);
}

function dedupe(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return ds.filter((d) => {
    const k = `${d.line}:${d.col}:${d.path}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

const byPosition = (a: Diagnostic, b: Diagnostic) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col;

/* eslint-disable @typescript-eslint/no-explicit-any */
type Raw = any;

export function loadScenarioText(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ScenarioError(
      doc.errors.map((e) => {
        const p = lc.linePos(e.pos[0]);
        return { file, line: p.line, col: p.col, path: '', message: `YAML syntax: ${e.message.split('\n')[0]}` };
      }),
    );
  }
  const at = new Positions(doc, lc, file);
  const data: Raw = doc.toJS() ?? {};
  if (!validateSchema(data)) throw new ScenarioError(schemaDiagnostics(validateSchema.errors ?? [], at).sort(byPosition));
  const r = new Resolver(data, at);
  const sc = r.resolve();
  if (r.errors.length) throw new ScenarioError(dedupe(r.errors).sort(byPosition));
  return sc;
}

export function loadScenarioFile(path: string): Scenario {
  return loadScenarioText(readFileSync(path, 'utf8'), path);
}

function yamlFiles(path: string): string[] {
  const st = statSync(path);
  if (!st.isDirectory()) return [path];
  return readdirSync(path)
    .sort()
    .flatMap((n) => {
      const p = join(path, n);
      if (statSync(p).isDirectory()) return yamlFiles(p);
      return /\.ya?ml$/.test(n) ? [p] : [];
    });
}

export function loadScenarios(paths: string[]): { scenarios: Scenario[]; errors: Diagnostic[] } {
  const scenarios: Scenario[] = [];
  const errors: Diagnostic[] = [];
  for (const p of paths) {
    let files: string[];
    try {
      files = yamlFiles(resolve(p));
    } catch (e) {
      errors.push({ file: p, line: 1, col: 1, path: '', message: `cannot read: ${(e as Error).message}` });
      continue;
    }
    for (const f of files) {
      try {
        scenarios.push(loadScenarioFile(f));
      } catch (e) {
        if (e instanceof ScenarioError) errors.push(...e.errors);
        else errors.push({ file: f, line: 1, col: 1, path: '', message: (e as Error).message });
      }
    }
  }
  const ids = new Map<string, Scenario>();
  for (const s of scenarios) {
    const first = ids.get(s.id);
    if (first) errors.push({ file: s.file, line: s.loc.line, col: s.loc.col, path: 'id', message: `scenario id '${s.id}' is already used by ${first.file}` });
    else ids.set(s.id, s);
  }
  return { scenarios, errors };
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const DEFAULT_BIP = '172.17.0.1/16';

/** Cross-reference checks and defaults, collecting every error. */
class Resolver {
  readonly errors: Diagnostic[] = [];
  constructor(
    private readonly d: Raw,
    private readonly at: Positions,
  ) {}

  private err(path: Path, message: string, key?: string): void {
    const loc = this.at.loc(path, key);
    this.errors.push({ file: this.at.file, line: loc.line, col: loc.col, path: pathText(path), message });
  }

  private loc(path: Path): Loc {
    return this.at.loc(path);
  }

  resolve(): Scenario {
    const d = this.d;
    const covers: string[] = d.covers;
    covers.forEach((id, i) => {
      if (!(id in CATALOGUE)) this.err(['covers', i], `unknown catalogue ID ${id}`);
    });
    const daemon = {
      icc: true,
      'ip-masq': true,
      'ip-forward': true,
      iptables: true,
      'userland-proxy': true,
      ...(d.daemon ?? {}),
    };
    const bridgeSubnet = networkOf(daemon.bip ?? DEFAULT_BIP);
    if (daemon['fixed-cidr'] && !cidrInside(daemon['fixed-cidr'], bridgeSubnet)) this.err(['daemon', 'fixed-cidr'], `fixed-cidr ${daemon['fixed-cidr']} is not inside the bridge subnet ${bridgeSubnet}`);

    const h = d.host ?? {};
    const host = {
      address: h.address ?? '203.0.113.1/24',
      gateway: h.gateway ?? '203.0.113.254',
      sysctls: Object.fromEntries(Object.entries(h.sysctls ?? {}).map(([k, v]) => [k, String(v)])),
      listen: h.listen ?? [],
      rules: h.rules ?? [],
      extraAddresses: h.addresses ?? [],
    };
    if (!inCidr(host.gateway, host.address)) this.err(['host', 'gateway'], `gateway ${host.gateway} is not in the host's subnet ${networkOf(host.address)}`);
    const w = d.wan ?? {};
    const wan = { servers: w.servers ?? ['198.51.100.7'], listen: w.listen ?? ['tcp/9000', 'udp/9000'], routeToContainers: w['route-to-containers'] ?? false };

    const networks: NetworkSpec[] = Object.entries<Raw>(d.networks ?? {}).map(([name, n]) => {
      const p = ['networks', name];
      if (['bridge', 'host', 'none'].includes(name)) this.err(p, `'${name}' is a predefined network and cannot be declared`);
      if (n.gateway && !n.subnet) this.err([...p, 'gateway'], 'a gateway needs a subnet');
      if (n.gateway && n.subnet && !inCidr(n.gateway, n.subnet)) this.err([...p, 'gateway'], `gateway ${n.gateway} is not in subnet ${n.subnet}`);
      return { name, driver: 'bridge', subnet: n.subnet ? networkOf(n.subnet) : undefined, gateway: n.gateway, internal: n.internal ?? false, options: n.options ?? {}, loc: this.loc(p) };
    });
    const netByName = new Map(networks.map((n) => [n.name, n]));

    const containers: ContainerSpec[] = [];
    const published: { c: string; line: number; p: PublishSpec }[] = [];
    for (const [name, c] of Object.entries<Raw>(d.containers ?? {})) {
      const p = ['containers', name];
      const network: string = c.network ?? 'bridge';
      const declared = new Set(containers.map((x) => x.name));
      const special = network === 'host' || network === 'none' || network.startsWith('container:');
      if (network.startsWith('container:')) {
        const other = network.slice('container:'.length);
        if (!declared.has(other)) this.err([...p, 'network'], `container:${other} must name a container declared before ${name}`);
      } else if (network !== 'bridge' && !special && !netByName.has(network)) {
        this.err([...p, 'network'], `unknown network '${network}' (expected bridge, host, none, container:<name> or one of: ${[...netByName.keys()].join(', ') || 'no networks declared'})`);
      }
      const nets: string[] = c.networks ?? [];
      nets.forEach((n, i) => {
        if (!netByName.has(n)) this.err([...p, 'networks', i], `unknown network '${n}'`);
      });
      if (c.ip) {
        if (special) this.err([...p, 'ip'], `a fixed ip is not possible with network ${network}`);
        else if (network === 'bridge') {
          if (!inCidr(c.ip, bridgeSubnet)) this.err([...p, 'ip'], `${c.ip} is not in the bridge subnet ${bridgeSubnet}`);
        } else {
          const sub = netByName.get(network)?.subnet;
          if (netByName.has(network) && !sub) this.err([...p, 'ip'], 'a fixed ip needs a network with a configured subnet');
          else if (sub && !inCidr(c.ip, sub)) this.err([...p, 'ip'], `${c.ip} is not in subnet ${sub} of network ${network}`);
        }
      }
      const publish: PublishSpec[] = [];
      (c.publish ?? []).forEach((raw: string | number, i: number) => {
        try {
          publish.push(...parsePublish(raw));
        } catch (e) {
          this.err([...p, 'publish', i], (e as Error).message);
        }
      });
      if ((publish.length || c['publish-all']) && special) this.err([...p, c.publish ? 'publish' : 'publish-all'], `ports cannot be published with network ${network}`);
      for (const pub of publish) {
        if (pub.hostPort === undefined) continue;
        const clash = published.find((o) => o.p.proto === pub.proto && o.p.hostPort === pub.hostPort && ipsOverlap(o.p.hostIp, pub.hostIp));
        if (clash && !c['expect-failure']) {
          this.err([...p, 'publish'], `host port ${pub.hostPort}/${pub.proto} is already published by ${clash.c} (line ${clash.line}); add expect-failure if the engine must refuse this`);
        }
        published.push({ c: name, line: this.loc(p).line, p: pub });
      }
      const links = (c.links ?? []).map((l: string, i: number) => {
        const [target, alias] = l.split(':');
        if (!declared.has(target)) this.err([...p, 'links', i], `link target '${target}' must be a container declared before ${name}`);
        if (network !== 'bridge') this.err([...p, 'links', i], 'links work on the default bridge network only');
        return { target, alias: alias ?? target };
      });
      containers.push({
        name,
        network,
        networks: nets,
        ip: c.ip,
        publish,
        publishAll: c['publish-all'] ?? false,
        expose: (c.expose ?? []).map((x: string | number) => {
          const [port, proto] = String(x).split('/');
          return { port: Number(port), proto: (proto ?? 'tcp') as 'tcp' | 'udp' };
        }),
        listen: c.listen ?? [],
        links,
        hostname: c.hostname,
        addHosts: (c['add-hosts'] ?? []).map((s: string) => {
          const i = s.lastIndexOf(':');
          return { host: s.slice(0, i), ip: s.slice(i + 1) };
        }),
        dns: c.dns ?? [],
        dnsSearch: c['dns-search'] ?? [],
        aliases: c.aliases ?? [],
        expectFailure: c['expect-failure'],
        loc: this.loc(p),
      });
    }
    const contByName = new Map(containers.map((c) => [c.name, c]));
    const ctx = { covers, contByName, netByName };

    const phases: Scenario['phases'] = [{ steps: [], loc: this.loc(d.expect ? ['expect'] : []) }];
    const expect: Expectation[] = this.expectations(d.expect ?? [], ['expect'], 0, ctx);
    (d.then ?? []).forEach((t: Raw, i: number) => {
      const steps: Step[] = t.steps.map((s: Raw, j: number) => this.step(s, ['then', i, 'steps', j], ctx));
      phases.push({ steps, loc: this.loc(['then', i]) });
      expect.push(...this.expectations(t.expect ?? [], ['then', i, 'expect'], i + 1, ctx));
    });
    if (expect.length === 0) this.err([], 'the scenario has no expectations (expect: or then[].expect:)');

    return {
      file: this.at.file,
      id: d.id,
      title: d.title,
      covers,
      description: d.description,
      requires: d.requires ?? [],
      daemon,
      host,
      wan,
      networks,
      containers,
      phases,
      expect,
      probeTimeoutMs: d['probe-timeout'] ?? 300,
      loc: this.loc([]),
    };
  }

  private step(s: Raw, p: Path, ctx: Ctx): Step {
    const loc = this.loc(p);
    const checkC = (name: string, path: Path) => {
      if (!ctx.contByName.has(name)) this.err(path, `unknown container '${name}'`);
    };
    const checkN = (name: string, path: Path) => {
      if (!ctx.netByName.has(name) && name !== 'bridge') this.err(path, `unknown network '${name}'`);
    };
    if (s.connect || s.disconnect) {
      const kind = s.connect ? 'connect' : 'disconnect';
      const a = s[kind];
      checkC(a.container, [...p, kind, 'container']);
      checkN(a.network, [...p, kind, 'network']);
      return { kind, container: a.container, network: a.network, loc };
    }
    if (s.remove) {
      checkC(s.remove, [...p, 'remove']);
      return { kind: 'remove', container: s.remove, loc };
    }
    if (s.iptables) return { kind: 'iptables', args: s.iptables, loc };
    if (s.ip) {
      if (!['host', 'wan'].includes(s.ip.in)) this.err([...p, 'ip', 'in'], `ip steps run in host or wan, not '${s.ip.in}'`);
      return { kind: 'ip', ns: s.ip.in, lines: s.ip.run, loc };
    }
    return { kind: 'restart-rules', loc };
  }

  private expectations(list: Raw[], base: Path, phase: number, ctx: Ctx): Expectation[] {
    const out: Expectation[] = [];
    list.forEach((e, i) => {
      const p = [...base, i];
      const loc = this.loc(p);
      if (!(e.id in CATALOGUE)) this.err([...p, 'id'], `unknown catalogue ID ${e.id}`);
      else if (!ctx.covers.includes(e.id)) this.err([...p, 'id'], `${e.id} is not listed in covers: [${ctx.covers.join(', ')}]`);
      const kinds = ['reach', 'matrix', 'rules', 'start', 'file'].filter((k) => e[k] !== undefined);
      if (kinds.length !== 1) {
        this.err(p, `expected exactly one of: reach, matrix, rules, start, file${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`);
        return;
      }
      const common = { id: e.id, name: e.name, phase, loc };
      const kind = kinds[0];
      if (kind === 'reach' || kind === 'matrix') {
        const r = e[kind];
        if (!e.result) this.err(p, `missing required key 'result' (connected, refused, timeout or unreachable)`);
        const proto: Proto = r.proto ?? 'tcp';
        if (proto === 'icmp' && (r.port !== undefined || r.published)) this.err([...p, kind, 'port'], 'icmp has no port');
        if (proto !== 'icmp' && r.port === undefined && !r.published) this.err([...p, kind], `${proto} needs a port (or published: container:port/${proto})`);
        if (r.published) {
          const c = String(r.published).split(':')[0];
          if (!ctx.contByName.has(c)) this.err([...p, kind, 'published'], `unknown container '${c}'`);
        }
        const froms: string[] = kind === 'reach' ? [r.from] : r.from;
        const tos: string[] = kind === 'reach' ? [r.to] : r.to;
        froms.forEach((f, j) => this.endpoint(f, kind === 'reach' ? [...p, kind, 'from'] : [...p, kind, 'from', j], ctx, false));
        tos.forEach((t, j) => this.endpoint(t, kind === 'reach' ? [...p, kind, 'to'] : [...p, kind, 'to', j], ctx, true));
        if (e['seen-source'] !== undefined && e['seen-source'] !== 'none') this.endpoint(e['seen-source'], [...p, 'seen-source'], ctx, true);
        for (const from of froms) {
          for (const to of tos) {
            if (kind === 'matrix' && from === to) continue;
            out.push({ ...common, kind: 'reach', from, to, proto, port: r.port, published: r.published, source: r.source, result: e.result as Outcome, seenSource: e['seen-source'] });
          }
        }
        return;
      }
      if (kind === 'rules') {
        const r = e.rules;
        if (!r.contains && !r.absent && !r.exact && !r.golden && !r.policy) this.err([...p, 'rules'], 'rules needs at least one of: contains, absent, exact, golden, policy');
        out.push({ ...common, kind: 'rules', table: r.table, chain: r.chain, contains: r.contains, absent: r.absent, exact: r.exact, golden: r.golden, policy: r.policy });
        return;
      }
      if (kind === 'start') {
        if (!ctx.contByName.has(e.start)) this.err([...p, 'start'], `unknown container '${e.start}'`);
        if (!e.fails) this.err(p, "missing required key 'fails' (a regex the engine's error must match)");
        out.push({ ...common, kind: 'start', container: e.start, fails: e.fails ?? '' });
        return;
      }
      const f = e.file;
      if (!ctx.contByName.has(f.container)) this.err([...p, 'file', 'container'], `unknown container '${f.container}'`);
      out.push({ ...common, kind: 'file', container: f.container, path: f.path, contains: f.contains, absent: f.absent, equals: f.equals });
    });
    return out;
  }

  /** host, host@net, wan, wan@IP, container, container@net, or (destinations only) an IPv4 address */
  private endpoint(name: string, p: Path, ctx: Ctx, literalOk: boolean): void {
    if (IPV4.test(name)) {
      if (!literalOk) this.err(p, `a probe cannot start from a bare address (${name}); use host, wan or a container name`);
      return;
    }
    const [base, net] = name.split('@');
    if (base === 'host') {
      if (net && net !== 'bridge' && !ctx.netByName.has(net)) this.err(p, `unknown network '${net}' in ${name}`);
      return;
    }
    if (base === 'wan') {
      if (net && !IPV4.test(net)) this.err(p, `wan@ takes an outside server address, got ${net}`);
      return;
    }
    const c = ctx.contByName.get(base);
    if (!c) {
      this.err(p, `unknown endpoint '${name}' (expected host, host@<network>, wan, a container${literalOk ? ' or an IPv4 address' : ''})`);
      return;
    }
    if (net && net !== c.network && !c.networks.includes(net)) this.err(p, `container ${base} is not attached to network ${net}`);
  }
}

interface Ctx {
  covers: string[];
  contByName: Map<string, ContainerSpec>;
  netByName: Map<string, NetworkSpec>;
}

function cidrInside(inner: string, outer: string): boolean {
  const a = parseCidr(inner);
  const b = parseCidr(outer);
  return a.prefix >= b.prefix && a.base >= b.base && a.base + a.size <= b.base + b.size;
}

function ipsOverlap(a?: string, b?: string): boolean {
  return !a || !b || a === '0.0.0.0' || b === '0.0.0.0' || a === b;
}
