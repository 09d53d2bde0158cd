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
import { DEFAULT_PROFILE, PROFILES, baseProfile, isProfile } from '../targets.js';
import { targetKeyProblem, uncoveredProfiles } from './per-target.js';
import { placeholderNames, unionOfNames } from './placeholders.js';
import { describeKnown, isKnown, placeholdersIn } from '../rules/symbolic.js';
import type { ContainerSpec, DaemonOptions, DecidedBy, Expectation, HostSpec, Loc, NetworkSpec, Outcome, PeerSpec, Proto, PublishSpec, Scenario, Step } from './types.js';

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
    private readonly text: string,
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

  /**
   * Where the n-th `${…}` of the string at `path` starts in the file: found in the scalar's
   * source when that holds the same placeholders in the same order (plain, quoted or block,
   * on one line or several); else (an escape inside one) where the scalar starts.
   */
  placeholderLoc(path: Path, n: number): Loc {
    const node = this.doc.getIn(path, true) as YamlNode | undefined;
    if (isScalar(node) && typeof node.value === 'string' && node.range) {
      const inSource = placeholdersIn(this.text.slice(node.range[0], node.range[1]));
      const inValue = placeholdersIn(node.value);
      const same = inSource.length === inValue.length && inSource.every((p, i) => p.key === inValue[i].key);
      if (same && inSource[n]) return { file: this.file, ...this.pos(node.range[0] + inSource[n].index) };
    }
    return this.loc(path);
  }
}

const DEF_MESSAGES: Record<string, string> = {
  ipv4: 'expected an IPv4 address like 198.51.100.7',
  cidr: 'expected an address with prefix length like 172.18.0.0/16',
  name: 'expected a name of at least two characters (letters, digits, _ . -)',
  catalogueId: 'expected a catalogue ID like EG-01',
  listenList: 'expected "tcp/PORT" or "udp/PORT"',
  ifname: 'expected an interface name of at most 15 characters',
  hostName: 'expected a host name: a letter, then up to 11 letters, digits, _ or -',
  segmentName: 'expected a segment name: a lower-case letter, then up to 9 lower-case letters or digits',
  containerRef: 'expected a container name, or host/name in a scenario with several hosts',
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
      if (/^\/segments\//.test(e.instancePath)) return { message: `${JSON.stringify(e.data)}: expected a segment name, or { name: NAME, switch: bridge | ovs }` };
      if (/\/finding\//.test(e.schemaPath)) return { message: `${JSON.stringify(e.data)}: expected why it is a finding (text), or a map of profile or engine to text, e.g. { docker-20.10: "reachable from the LAN" }` };
      if (/\/decided-by\/|\/decidedBy\//.test(e.schemaPath)) {
        return { message: `${JSON.stringify(e.data)}: expected the deciding rule's text, none, or { table, chain, verdict: ACCEPT | DROP | REJECT } (with host, policy: true or rule if wanted), or a map of profile or engine to either` };
      }
      if (/\/(result|seen-source)\//.test(e.schemaPath)) {
        return { message: `${JSON.stringify(e.data)}: expected a value, or a map of profile or engine to value, e.g. { docker-20.10: connected, default: timeout }` };
      }
      return { message: `${JSON.stringify(e.data)}: expected a port number or "PORT/tcp" / "PORT/udp"` };
    case 'minProperties':
    case 'maxProperties':
      // ajv inlines $refs, so the schema path does not name the step: its place does
      if (/\/steps\/\d+$/.test(e.instancePath)) return { message: 'a step has exactly one of: connect, disconnect, remove, unlink, iptables, nft, ip, bridge, ovs-vsctl, restart-rules, restart-daemon, flush-rules, reload-firewall (and optionally on: HOST)' };
      return { message: e.message ?? e.keyword };
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
  // propertyNames failures name the key in params; the pattern error beside it names the kind
  for (const e of errors.filter((x) => x.keyword === 'propertyNames' && !anyOfPaths.has(x.instancePath))) {
    const path: Path = e.instancePath.split('/').slice(1);
    const bad = (e.params as { propertyName: string }).propertyName;
    const inner = errors.find((x) => x.keyword === 'pattern' && x.propertyName === bad && x.instancePath === e.instancePath);
    const def = inner && /\/\$defs\/(\w+)\//.exec(inner.schemaPath)?.[1];
    const loc = at.loc(path, bad);
    out.push({ file: at.file, line: loc.line, col: loc.col, path: pathText([...path, bad]), message: `invalid name '${bad}': ${(def && DEF_MESSAGES[def]) ?? DEF_MESSAGES.name}` });
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
  const at = new Positions(doc, lc, file, text);
  const data: Raw = doc.toJS() ?? {};
  const schemaErrors = validateSchema(data) ? [] : schemaDiagnostics(validateSchema.errors ?? [], at);
  // Cross-references are checked even when the schema failed, so one run reports everything;
  // on a document of the wrong shape the resolver may trip, and the schema errors say why.
  const r = new Resolver(data, at);
  let sc: Scenario | undefined;
  try {
    sc = r.resolve();
  } catch (e) {
    if (schemaErrors.length === 0) throw e;
  }
  const all = dedupe([...schemaErrors, ...r.errors]).sort(byPosition);
  if (all.length || !sc) throw new ScenarioError(all);
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
/** The tables iptables-save lists. */
const IPTABLES_TABLES = ['filter', 'nat', 'raw', 'mangle', 'security'];

const KINDS = ['reach', 'matrix', 'rules', 'start', 'file', 'resolve', 'env', 'frames'];
const DEFAULT_BIP = '172.17.0.1/16';
const DEFAULT_LAN = { firstHost: 1, prefix: 24, base: '203.0.113', router: '203.0.113.254' };
/** The IPv6 plan of a dual-stack lab (documentation prefixes: nothing routes them outside). */
export const LAN6 = { subnet: '2001:db8:1::/64', router: '2001:db8:1::fe', host: (i: number) => `2001:db8:1::${(i + 1).toString(16)}/64`, peer: (j: number) => `2001:db8:1::${(0x10 + j).toString(16)}/64`, server: '2001:db8:100::7' };
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:]*$/;
/** The host of a single-host scenario. */
export const SINGLE_HOST = 'host';

/** Everything the cross-reference checks of expectations and steps need to know. */
interface Ctx {
  /** a dual-stack lab: ipv6: endpoints are allowed */
  ipv6: boolean;
  covers: string[];
  multiHost: boolean;
  hosts: Map<string, HostSpec>;
  /** container reference ("web", "hostB/web") → container and its host */
  containers: Map<string, { c: ContainerSpec; host: HostSpec }>;
  peers: Map<string, PeerSpec>;
  /** reference-engine profiles the scenario runs under (all when absent) */
  profiles?: string[];
  /** some segment is an Open vSwitch bridge (ovs-vsctl steps have a switch to act on) */
  ovs: boolean;
}

/** Cross-reference checks and defaults, collecting every error. */
class Resolver {
  readonly errors: Diagnostic[] = [];
  /** texts the run expands with a host's facts: checked once every step is known */
  private readonly placeholderUses: { path: Path; text: string; hosts: string[] }[] = [];
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

  /**
   * A text the run expands with the facts of one of `hosts` (several: the host that decided a
   * packet's path). An undefined host (an unknown container, a missing host:) has its error already.
   */
  private expandedWith(hosts: (string | undefined)[], text: unknown, path: Path): void {
    const known = hosts.filter((h): h is string => h !== undefined);
    if (typeof text === 'string' && text.includes('${') && known.length) this.placeholderUses.push({ path, text, hosts: known });
  }

  private expandedListWith(hosts: (string | undefined)[], list: unknown, path: Path): void {
    if (Array.isArray(list)) list.forEach((t, i) => this.expandedWith(hosts, t, [...path, i]));
  }

  /** Every `${…}` names something the facts of its host will hold (placeholders.ts), or it is an error at the `${`. */
  private checkPlaceholders(sc: Pick<Scenario, 'hosts' | 'phases'>): void {
    const byHost = new Map(sc.hosts.map((h) => [h.name, placeholderNames(sc, h)]));
    for (const use of this.placeholderUses) {
      const lists = use.hosts.flatMap((h) => byHost.get(h) ?? []);
      if (lists.length === 0) continue;
      const names = unionOfNames(lists);
      const where = sc.hosts.length === 1 ? '' : use.hosts.length === 1 ? ` on ${use.hosts[0]}` : ` on any of ${use.hosts.join(', ')}`;
      placeholdersIn(use.text).forEach((p, n) => {
        if (isKnown(p.key, names)) return;
        const loc = this.at.placeholderLoc(use.path, n);
        this.errors.push({ file: this.at.file, line: loc.line, col: loc.col, path: pathText(use.path), message: `unknown placeholder \${${p.key}} (known${where}: ${describeKnown(names)})` });
      });
    }
  }

  resolve(): Scenario {
    const d = this.d;
    const covers: string[] = d.covers;
    covers.forEach((id, i) => {
      if (!(id in CATALOGUE)) this.err(['covers', i], `unknown catalogue ID ${id}`);
    });

    // One host at the top level (host:, daemon:, daemon-env:, networks:, containers:), or several under hosts:.
    const multiHost = d.hosts !== undefined;
    if (multiHost) {
      for (const k of ['host', 'daemon', 'daemon-env', 'networks', 'containers']) {
        if (d[k] !== undefined) this.err([k], `'${k}' belongs inside each entry of hosts: in a scenario with several hosts`, undefined);
      }
    }
    const rawHosts: [string, Raw, Path][] = multiHost
      ? Object.entries<Raw>(d.hosts).map(([name, h]) => [name, h ?? {}, ['hosts', name]])
      : [[SINGLE_HOST, { ...(d.host ?? {}), daemon: d.daemon, 'daemon-env': d['daemon-env'], networks: d.networks, containers: d.containers }, []]];
    const hosts = rawHosts.map(([name, h, p], i) => this.host(name, h, p, i, multiHost));
    for (const h of hosts) if (['wan', 'router'].includes(h.name) || h.name.startsWith('peer-')) this.err(['hosts'], `'${h.name}' is a reserved name; call the host something else`, h.name);
    this.checkHostAddresses(hosts, multiHost);

    const lanSubnet = networkOf(hosts[0]?.address ?? `${DEFAULT_LAN.base}.0/${DEFAULT_LAN.prefix}`);
    const router = hosts[0]?.gateway ?? DEFAULT_LAN.router;
    const { segments, ovsSegments } = this.segments(d.segments ?? [], d.requires ?? []);
    for (const h of hosts) {
      for (const [nic, seg] of Object.entries(h.nics)) {
        const p = multiHost ? ['hosts', h.name, 'nics', nic] : ['host', 'nics', nic];
        if (nic === 'eth0') this.err(p, 'eth0 is the host\'s leg on the lan; name further NICs eth1, eth2 …');
        if (!segments.includes(seg)) this.err(p, `unknown segment '${seg}' (declare it under segments:; known: ${segments.join(', ') || 'none'})`);
      }
    }
    const peers = this.peers(d.lan?.peers ?? {}, lanSubnet, hosts, segments);
    const ipv6: boolean = d.ipv6 ?? false;
    if (ipv6) {
      hosts.forEach((h, i) => (h.address6 = LAN6.host(i)));
      peers.forEach((p, j) => (p.address6 ??= LAN6.peer(j)));
    }
    peers.forEach((p) => {
      if (p.address6 && !ipv6) this.err(['lan', 'peers', p.name, 'address6'], 'an IPv6 address needs a dual-stack lab: add ipv6: true at the top');
      p.routes.forEach((r, i) => {
        if (!ipv6 && (r.dest === 'default6' || IPV6.test(r.dest.split('/')[0]))) this.err(['lan', 'peers', p.name, 'routes', i], 'an IPv6 route needs a dual-stack lab: add ipv6: true at the top');
      });
    });

    const w = d.wan ?? {};
    const wan = { servers: w.servers ?? ['198.51.100.7'], servers6: ipv6 ? [LAN6.server] : [], listen: w.listen ?? ['tcp/9000', 'udp/9000'], routeToContainers: w['route-to-containers'] ?? false };

    const containers = new Map<string, { c: ContainerSpec; host: HostSpec }>();
    const unqualified = new Map<string, number>();
    for (const h of hosts) for (const c of h.containers) unqualified.set(c.name, (unqualified.get(c.name) ?? 0) + 1);
    for (const h of hosts) {
      for (const c of h.containers) {
        containers.set(c.ref, { c, host: h });
        // in a multi-host scenario a container name that is unique across hosts may stand alone
        if (multiHost && unqualified.get(c.name) === 1) containers.set(c.name, { c, host: h });
      }
    }
    const names = new Map<string, string>(); // endpoint name → what it is, to refuse clashes
    for (const h of hosts) names.set(h.name, 'host');
    for (const p of peers) {
      if (names.has(p.name) || containers.has(p.name) || p.name === 'wan' || p.name === 'router') this.err(['lan', 'peers', p.name], `peer name '${p.name}' is already the name of a ${names.get(p.name) ?? 'container or the outside world'}`, undefined);
    }
    const profiles: string[] | undefined = d.profiles;
    this.checkProfiles(profiles, ['profiles']);
    const ctx: Ctx = { ipv6, covers, multiHost, hosts: new Map(hosts.map((h) => [h.name, h])), containers, peers: new Map(peers.map((p) => [p.name, p])), profiles, ovs: ovsSegments.length > 0 };

    const phases: Scenario['phases'] = [{ steps: [], loc: this.loc(d.expect ? ['expect'] : []) }];
    const expect: Expectation[] = this.expectations(d.expect ?? [], ['expect'], 0, ctx);
    (d.then ?? []).forEach((t: Raw, i: number) => {
      const steps: Step[] = (t.steps ?? []).map((s: Raw, j: number) => this.step(s, ['then', i, 'steps', j], ctx));
      phases.push({ steps, loc: this.loc(['then', i]) });
      expect.push(...this.expectations(t.expect ?? [], ['then', i, 'expect'], i + 1, ctx));
    });
    if (expect.length === 0) this.err([], 'the scenario has no expectations (expect: or then[].expect:)');
    this.checkPlaceholders({ hosts, phases });

    return {
      file: this.at.file,
      id: d.id,
      title: d.title,
      covers,
      description: d.description,
      tags: d.tags ?? [],
      requires: d.requires ?? [],
      hosts,
      lan: { subnet: lanSubnet, router, peers, ...(ipv6 ? { subnet6: LAN6.subnet, router6: LAN6.router } : {}) },
      segments,
      ovsSegments,
      wan,
      phases,
      expect,
      probeTimeoutMs: d['probe-timeout'] ?? 300,
      ipv6,
      ...(profiles ? { profiles } : {}),
      ...(d['firewall-backends'] ? { firewallBackends: d['firewall-backends'] } : {}),
      loc: this.loc([]),
    };
  }

  /** Segments are names, or { name, switch }; an Open vSwitch one needs the scenario to require openvswitch. */
  private segments(raw: Raw[], requires: string[]): { segments: string[]; ovsSegments: string[] } {
    const segments: string[] = [];
    const ovsSegments: string[] = [];
    raw.forEach((r, i) => {
      const name = typeof r === 'string' ? r : r?.name;
      if (typeof name !== 'string') return; // the schema says what is wrong
      if (segments.includes(name)) this.err(['segments', i], `segment '${name}' is declared twice`);
      segments.push(name);
      if (r?.switch !== 'ovs') return;
      ovsSegments.push(name);
      if (!requires.includes('openvswitch')) this.err(['segments', i, 'switch'], 'an Open vSwitch segment needs the kernel datapath: add openvswitch to requires:');
    });
    return { segments, ovsSegments };
  }

  /**
   * What a rules check reads: an iptables table's chain (policies in capitals), or with
   * family an nftables table's chain, set or map (policies in lower case), or the table.
   */
  private checkRuleTarget(r: Raw, p: Path): void {
    if (!r.family) {
      if (!IPTABLES_TABLES.includes(r.table)) this.err([...p, 'table'], `'${r.table}' is not an iptables table (${IPTABLES_TABLES.join(', ')}); for an nftables table add family: (ip, ip6, inet …)`);
      if (r.chain === undefined) this.err(p, "missing required key 'chain'");
      if (r.set !== undefined) this.err([...p, 'set'], 'sets are nftables\': add family: (ip, ip6, inet …)');
      if (r.policy && r.policy !== r.policy.toUpperCase()) this.err([...p, 'policy'], `iptables policies are ACCEPT or DROP, not ${r.policy}`);
      return;
    }
    if (r.chain !== undefined && r.set !== undefined) this.err(p, 'a rules check reads a chain or a set, not both');
    if (r.policy && r.policy !== r.policy.toLowerCase()) this.err([...p, 'policy'], `nftables policies are accept or drop, not ${r.policy}`);
    if (r.chain === undefined && r.set === undefined && r.exists !== false) this.err(p, 'name a chain: or a set: (only exists: false checks a whole table)');
  }

  /** Profile names must be known (and, on an expectation, among the scenario's own). */
  private checkProfiles(list: string[] | undefined, path: Path, scenarioProfiles?: string[]): void {
    (list ?? []).forEach((name, i) => {
      if (!isProfile(name)) this.err([...path, i], `unknown profile '${name}' (known: ${PROFILES.join(', ')})`);
      else if (scenarioProfiles && !scenarioProfiles.includes(name) && !scenarioProfiles.includes(baseProfile(name))) this.err([...path, i], `profile '${name}' is not one the scenario runs under (profiles: [${scenarioProfiles.join(', ')}])`);
    });
  }

  /** A value, or a map of profile/engine → value that must cover every profile in scope. */
  private perTarget<T>(value: T | Record<string, T> | undefined, path: Path, scope: readonly string[]): { value?: T; byTarget?: Record<string, T> } {
    if (value === undefined || value === null || typeof value !== 'object') return { value: value as T | undefined };
    const map = value as Record<string, T>;
    for (const key of Object.keys(map)) {
      const problem = targetKeyProblem(key);
      if (problem) this.err(path, problem, key);
    }
    const missing = uncoveredProfiles(map, scope);
    if (missing.length) this.err(path, `no value for ${missing.join(', ')}: name ${missing.length > 1 ? 'them' : 'it'} or add a default`);
    return { value: map.default ?? map[DEFAULT_PROFILE] ?? Object.values(map)[0], byTarget: map };
  }

  /** One Docker host with its daemon, networks and containers; `p` is where its keys live. */
  private host(name: string, h: Raw, p: Path, index: number, multiHost: boolean): HostSpec {
    const at = (k: string): Path => (multiHost ? [...p, k] : k === 'daemon' || k === 'daemon-env' || k === 'networks' || k === 'containers' ? [k] : ['host', k]);
    const daemon: DaemonOptions = { icc: true, 'ip-masq': true, 'ip-forward': true, iptables: true, 'userland-proxy': true, ...(h.daemon ?? {}) };
    const bridgeSubnet = networkOf(daemon.bip ?? DEFAULT_BIP);
    if (daemon['fixed-cidr'] && !cidrInside(daemon['fixed-cidr'], bridgeSubnet)) this.err([...at('daemon'), 'fixed-cidr'], `fixed-cidr ${daemon['fixed-cidr']} is not inside the bridge subnet ${bridgeSubnet}`);
    if (daemon.ipv6 && !daemon['fixed-cidr-v6']) this.err([...at('daemon'), 'ipv6'], 'ipv6 on the default bridge needs its IPv6 subnet: add fixed-cidr-v6 (e.g. fd00:dead:beef::/64)');
    const address = h.address ?? `${DEFAULT_LAN.base}.${DEFAULT_LAN.firstHost + index}/${DEFAULT_LAN.prefix}`;
    const gateway = h.gateway ?? DEFAULT_LAN.router;
    if (!inCidr(gateway, address)) this.err(at('gateway'), `gateway ${gateway} is not in the host's subnet ${networkOf(address)}`);
    const networks = this.networks(h.networks ?? {}, at('networks'));
    const containers = this.containers(h.containers ?? {}, at('containers'), networks, bridgeSubnet, multiHost ? name : undefined);
    return {
      name,
      address,
      gateway,
      sysctls: Object.fromEntries(Object.entries(h.sysctls ?? {}).map(([k, v]) => [k, String(v)])),
      listen: h.listen ?? [],
      rules: h.rules ?? [],
      nft: h.nft ?? [],
      firewalld: h.firewalld ?? false,
      ...(h.iptables ? { iptables: h.iptables } : {}),
      extraAddresses: h.addresses ?? [],
      nics: h.nics ?? {},
      daemon,
      daemonEnv: Object.fromEntries(Object.entries(h['daemon-env'] ?? {}).map(([k, v]) => [k, String(v)])),
      networks,
      containers,
      loc: this.loc(multiHost ? p : []),
    };
  }

  /** Hosts share the lan: one subnet, one router, distinct addresses. */
  private checkHostAddresses(hosts: HostSpec[], multiHost: boolean): void {
    const seen = new Map<string, string>();
    for (const h of hosts) {
      const p: Path = multiHost ? ['hosts', h.name, 'address'] : ['host', 'address'];
      if (networkOf(h.address) !== networkOf(hosts[0].address)) this.err(p, `every host's address must be on the lan ${networkOf(hosts[0].address)} (the first host's subnet)`);
      if (h.gateway !== hosts[0].gateway) this.err(multiHost ? ['hosts', h.name, 'gateway'] : ['host', 'gateway'], `every host uses the lan's router ${hosts[0].gateway} as its gateway`);
      const ip = h.address.split('/')[0];
      if (seen.has(ip)) this.err(p, `address ${ip} is already used by host ${seen.get(ip)}`);
      seen.set(ip, h.name);
    }
  }

  private peers(raw: Record<string, Raw>, lanSubnet: string, hosts: HostSpec[], segments: string[]): PeerSpec[] {
    const taken = new Map(hosts.map((h) => [h.address.split('/')[0], `host ${h.name}`]));
    return Object.entries(raw).map(([name, pr]) => {
      const p = ['lan', 'peers', name];
      const ip = String(pr.address).split('/')[0];
      const segment: string = pr.segment ?? 'lan';
      if (segment !== 'lan' && !segments.includes(segment)) this.err([...p, 'segment'], `unknown segment '${segment}' (declare it under segments:; known: ${segments.join(', ') || 'none'})`);
      if (segment === 'lan' && !inCidr(ip, lanSubnet)) this.err([...p, 'address'], `${pr.address} is not on the lan ${lanSubnet}`);
      if (segment !== 'lan' && pr.routes?.some((r: string) => /via (router|[A-Za-z])/.test(r))) this.err([...p, 'routes'], 'a peer on a segment has no router and no host on its wire: route via an address');
      if (taken.has(ip)) this.err([...p, 'address'], `address ${ip} is already used by ${taken.get(ip)}`);
      taken.set(ip, `peer ${name}`);
      const routes = (pr.routes ?? []).map((r: string, i: number) => {
        const [dest, via] = r.split(' via ');
        if (via !== 'router' && !IPV4.test(via) && !IPV6.test(via) && !hosts.some((h) => h.name === via)) this.err([...p, 'routes', i], `route via '${via}': expected a host name (${hosts.map((h) => h.name).join(', ')}), router or an address`);
        return { dest, via };
      });
      return {
        name,
        segment,
        address: pr.address,
        ...(pr.address6 ? { address6: pr.address6 } : {}),
        routes,
        sysctls: Object.fromEntries(Object.entries(pr.sysctls ?? {}).map(([k, v]) => [k, String(v)])),
        listen: pr.listen ?? [],
        loc: this.loc(p),
      };
    });
  }

  private networks(raw: Record<string, Raw>, base: Path): NetworkSpec[] {
    return Object.entries<Raw>(raw).map(([name, n]) => {
      const p = [...base, name];
      if (['bridge', 'host', 'none'].includes(name)) this.err(p, `'${name}' is a predefined network and cannot be declared`);
      if (n.gateway && !n.subnet) this.err([...p, 'gateway'], 'a gateway needs a subnet');
      if (n.gateway && n.subnet && !inCidr(n.gateway, n.subnet)) this.err([...p, 'gateway'], `gateway ${n.gateway} is not in subnet ${n.subnet}`);
      if (n['ip-range'] && !n.subnet) this.err([...p, 'ip-range'], 'an ip-range needs a subnet');
      if (n['ip-range'] && n.subnet && !cidrInside(n['ip-range'], networkOf(n.subnet))) this.err([...p, 'ip-range'], `ip-range ${n['ip-range']} is not inside subnet ${n.subnet}`);
      const driver = n.driver ?? 'bridge';
      if (driver === 'macvlan' && !n.options?.parent) this.err([...p], "a macvlan network needs its parent NIC: options: { parent: eth0 }", undefined);
      const mode = n.options?.macvlan_mode;
      if (driver === 'macvlan' && mode !== undefined && !['bridge', 'private', 'vepa', 'passthru'].includes(mode)) this.err([...p, 'options', 'macvlan_mode'], `expected one of: bridge, private, vepa, passthru; got ${JSON.stringify(mode)}`);
      if (n.subnet6 && n.ipv6 === false) this.err([...p, 'subnet6'], 'an IPv6 subnet needs ipv6: true (or leave ipv6 out)');
      if ((n.ipv6 || n.subnet6) && driver !== 'bridge') this.err([...p, 'ipv6'], 'IPv6 is supported on bridge networks here');
      return { name, driver, subnet: n.subnet ? networkOf(n.subnet) : undefined, gateway: n.gateway, ipRange: n['ip-range'], internal: n.internal ?? false, ipv6: n.ipv6 ?? n.subnet6 !== undefined, ...(n.subnet6 ? { subnet6: n.subnet6 } : {}), options: n.options ?? {}, loc: this.loc(p) };
    });
  }

  private containers(raw: Record<string, Raw>, base: Path, networks: NetworkSpec[], bridgeSubnet: string, hostName?: string): ContainerSpec[] {
    const netByName = new Map(networks.map((n) => [n.name, n]));
    const containers: ContainerSpec[] = [];
    const published: { c: string; line: number; p: PublishSpec }[] = [];
    for (const [name, c] of Object.entries<Raw>(raw)) {
      const p = [...base, name];
      const network: string = c.network ?? 'bridge';
      const declared = new Set(containers.map((x) => x.name));
      const special = network === 'host' || network === 'none' || network.startsWith('container:');
      if (network.startsWith('container:')) {
        const other = network.slice('container:'.length);
        if (!declared.has(other)) this.err([...p, 'network'], `container:${other} must name a container declared before ${name}${hostName ? ` on host ${hostName}` : ''}`);
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
        ref: hostName ? `${hostName}/${name}` : name,
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
    return containers;
  }

  /** The host a step or rule check acts on: `on`/`host` when given, the only host otherwise. */
  private hostOf(given: string | undefined, p: Path, ctx: Ctx, what: string): string {
    if (given !== undefined) {
      if (!ctx.hosts.has(given)) this.err(p, `unknown host '${given}' (hosts: ${[...ctx.hosts.keys()].join(', ')})`);
      return given;
    }
    if (ctx.multiHost) this.err(p, `${what} needs the host it acts on in a scenario with several hosts (one of: ${[...ctx.hosts.keys()].join(', ')})`);
    return [...ctx.hosts.keys()][0];
  }

  /** A container reference as written, resolved to its qualified form. */
  private container(ref: string, p: Path, ctx: Ctx): string {
    const found = ctx.containers.get(ref);
    if (found) return found.c.ref;
    const ambiguous = ctx.multiHost && !ref.includes('/') && [...ctx.hosts.values()].some((h) => h.containers.some((c) => c.name === ref));
    this.err(p, ambiguous ? `container '${ref}' exists on several hosts: write host/${ref}` : `unknown container '${ref}'`);
    return ref;
  }

  private step(s: Raw, p: Path, ctx: Ctx): Step {
    const loc = this.loc(p);
    const checkN = (container: string, name: string, path: Path) => {
      const host = ctx.containers.get(container)?.host ?? (ctx.multiHost ? undefined : [...ctx.hosts.values()][0]);
      if (host && name !== 'bridge' && !host.networks.some((n) => n.name === name)) this.err(path, `unknown network '${name}'${ctx.multiHost ? ` on host ${host.name}` : ''}`);
    };
    if (s.connect || s.disconnect) {
      const kind = s.connect ? 'connect' : 'disconnect';
      const a = s[kind];
      const container = this.container(a.container, [...p, kind, 'container'], ctx);
      checkN(a.container, a.network, [...p, kind, 'network']);
      if (s.on !== undefined) this.err([...p, 'on'], `${kind} acts on the container's own host; write the container as host/name instead of on:`);
      return { kind, container, network: a.network, loc };
    }
    if (s.unlink) {
      const i = String(s.unlink).lastIndexOf('/');
      const container = this.container(s.unlink.slice(0, i), [...p, 'unlink'], ctx);
      const alias = s.unlink.slice(i + 1);
      const spec = ctx.containers.get(container)?.c;
      if (spec && !spec.links.some((l) => l.alias === alias)) this.err([...p, 'unlink'], `${container} has no link with alias ${alias} (links: ${spec.links.map((l) => l.alias).join(', ') || 'none'})`);
      return { kind: 'unlink', container, alias, loc };
    }
    if (s.remove) {
      if (s.on !== undefined) this.err([...p, 'on'], 'remove acts on the container\'s own host; write the container as host/name instead of on:');
      return { kind: 'remove', container: this.container(s.remove, [...p, 'remove'], ctx), loc };
    }
    if (s['ovs-vsctl'] !== undefined) {
      if (s.on !== 'lan') this.err(s.on === undefined ? p : [...p, 'on'], 'ovs-vsctl runs on the lan\'s switch: write on: lan');
      if (!ctx.ovs) this.err([...p, 'ovs-vsctl'], 'no segment of this scenario is an Open vSwitch bridge (segments: [{ name: NAME, switch: ovs }])');
      return { kind: 'ovs-vsctl', host: 'lan', args: s['ovs-vsctl'], loc };
    }
    if (s.on === 'lan' && s.bridge) return { kind: 'bridge', host: 'lan', args: s.bridge, loc };
    if (s.on === 'lan' && (s.ip || s.iptables)) return { kind: s.ip ? 'ip' : 'iptables', host: 'lan', args: s.ip ?? s.iptables, loc };
    if (s.on === 'lan') this.err([...p, 'on'], 'only ip, bridge, ovs-vsctl and iptables steps run on the lan\'s switch');
    const host = this.hostOf(s.on === 'lan' ? undefined : s.on, s.on !== undefined ? [...p, 'on'] : p, ctx, 'this step');
    if (s.iptables) return { kind: 'iptables', host, args: s.iptables, loc };
    if (s.ip6tables) return { kind: 'ip6tables', host, args: s.ip6tables, loc };
    if (s.nft) return { kind: 'nft', host, args: s.nft, loc };
    if (s.ip) return { kind: 'ip', host, args: s.ip, loc };
    if (s.bridge) return { kind: 'bridge', host, args: s.bridge, loc };
    if (s['restart-daemon']) return { kind: 'restart-daemon', host, loc };
    if (s['flush-rules']) return { kind: 'flush-rules', host, loc };
    if (s['reload-firewall']) return { kind: 'reload-firewall', host, loc };
    if (s['restart-rules'] === undefined) this.err(p, 'a step has exactly one of: connect, disconnect, remove, unlink, iptables, nft, ip, bridge, ovs-vsctl, restart-rules, restart-daemon, flush-rules, reload-firewall (and optionally on: HOST)');
    return { kind: 'restart-rules', host, loc };
  }

  private expectations(list: Raw[], base: Path, phase: number, ctx: Ctx): Expectation[] {
    const out: Expectation[] = [];
    list.forEach((e, i) => {
      const p = [...base, i];
      const loc = this.loc(p);
      if (!(e.id in CATALOGUE)) this.err([...p, 'id'], `unknown catalogue ID ${e.id}`);
      else if (!ctx.covers.includes(e.id)) this.err([...p, 'id'], `${e.id} is not listed in covers: [${ctx.covers.join(', ')}]`);
      const kinds = KINDS.filter((k) => e[k] !== undefined);
      if (kinds.length !== 1) {
        this.err(p, `expected exactly one of: ${KINDS.join(', ')}${kinds.length ? ` (found ${kinds.join(', ')})` : ''}`);
        return;
      }
      if (e.vlan !== undefined && kinds[0] !== 'frames') this.err([...p, 'vlan'], 'vlan goes with frames');
      if (e.answer !== undefined && kinds[0] !== 'resolve') this.err([...p, 'answer'], 'answer goes with resolve');
      if (e.result !== undefined && kinds[0] !== 'reach' && kinds[0] !== 'matrix') this.err([...p, 'result'], 'result goes with reach or matrix');
      if (e['decided-by'] !== undefined && kinds[0] !== 'reach' && kinds[0] !== 'matrix') this.err([...p, 'decided-by'], 'decided-by goes with reach or matrix');
      this.checkProfiles(e.profiles, [...p, 'profiles'], ctx.profiles);
      const scope: readonly string[] = e.profiles ?? ctx.profiles ?? PROFILES;
      // a finding may hold for some targets only: no value for the others is no finding there
      const finding = this.perTarget<string>(e.finding, [...p, 'finding'], []);
      const common = {
        id: e.id,
        name: e.name,
        phase,
        loc,
        ...(e.profiles ? { profiles: e.profiles as string[] } : {}),
        ...(finding.byTarget ? { findingBy: finding.byTarget } : finding.value ? { finding: finding.value } : {}),
        ...(e.advisory ? { advisories: [e.advisory].flat() } : {}),
      };
      const kind = kinds[0];
      if (kind === 'reach' || kind === 'matrix') {
        const r = e[kind];
        if (!e.result) this.err(p, `missing required key 'result' (connected, refused, timeout or unreachable)`);
        const proto: Proto = r.proto ?? 'tcp';
        if (proto === 'icmp' && (r.port !== undefined || r.published)) this.err([...p, kind, 'port'], 'icmp has no port');
        if (proto !== 'icmp' && r.port === undefined && !r.published) this.err([...p, kind], `${proto} needs a port (or published: container:port/${proto})`);
        let published: string | undefined = r.published;
        if (r.published) {
          const m = /^(.+):(\d+\/(?:tcp|udp))$/.exec(String(r.published));
          if (m) published = `${this.container(m[1], [...p, kind, 'published'], ctx)}:${m[2]}`;
        }
        const froms: string[] = kind === 'reach' ? [r.from] : r.from;
        const tos: string[] = kind === 'reach' ? [r.to] : r.to;
        froms.forEach((f, j) => this.endpoint(f, kind === 'reach' ? [...p, kind, 'from'] : [...p, kind, 'from', j], ctx, false));
        tos.forEach((t, j) => this.endpoint(t, kind === 'reach' ? [...p, kind, 'to'] : [...p, kind, 'to', j], ctx, true));
        const result = this.perTarget<Outcome>(e.result, [...p, 'result'], scope);
        const seen = this.perTarget<string>(e['seen-source'], [...p, 'seen-source'], []);
        const seens = seen.byTarget ? Object.entries(seen.byTarget).map(([k, v]) => ({ v, path: [...p, 'seen-source', k] })) : [{ v: seen.value, path: [...p, 'seen-source'] }];
        for (const s of seens) if (s.v !== undefined && s.v !== 'none') this.endpoint(s.v, s.path, ctx, true);
        const decided = this.decidedBy(e['decided-by'], [...p, 'decided-by'], ctx);
        const perTarget = {
          ...(result.byTarget ? { resultBy: result.byTarget } : {}),
          ...(seen.byTarget ? { seenSourceBy: seen.byTarget } : {}),
          ...(decided.byTarget ? { decidedByBy: decided.byTarget } : decided.value ? { decidedBy: decided.value } : {}),
        };
        for (const from of froms) {
          for (const to of tos) {
            if (kind === 'matrix' && from === to) continue;
            out.push({ ...common, kind: 'reach', from, to, proto, port: r.port, published, source: r.source, result: result.value as Outcome, seenSource: seen.value, ...perTarget });
          }
        }
        return;
      }
      if (kind === 'rules') {
        const r = e.rules;
        if (!r.contains && !r.absent && !r.exact && !r.golden && !r.policy && r.exists === undefined) this.err([...p, 'rules'], 'rules needs at least one of: contains, absent, exact, golden, policy, exists: false');
        const host = this.hostOf(r.host, r.host !== undefined ? [...p, 'rules', 'host'] : [...p, 'rules'], ctx, 'a rules check');
        this.checkRuleTarget(r, [...p, 'rules']);
        if (r.ipv6 && r.family) this.err([...p, 'rules', 'ipv6'], 'ipv6 reads ip6tables-save; an nftables check names its family (ip6, inet) instead');
        const factsHost = r.host === undefined && ctx.multiHost ? undefined : host;
        this.expandedWith([factsHost], r.chain, [...p, 'rules', 'chain']);
        for (const k of ['contains', 'absent', 'exact']) this.expandedListWith([factsHost], r[k], [...p, 'rules', k]);
        out.push({ ...common, kind: 'rules', host, ...(r.ipv6 ? { ipv6: true } : {}), family: r.family, table: r.table, chain: r.chain, set: r.set, contains: r.contains, absent: r.absent, exact: r.exact, golden: r.golden, policy: r.policy, exists: r.exists });
        return;
      }
      if (kind === 'start') {
        const container = this.container(e.start, [...p, 'start'], ctx);
        if (!e.fails) this.err(p, "missing required key 'fails' (a regex the engine's error must match)");
        out.push({ ...common, kind: 'start', container, fails: e.fails ?? '' });
        return;
      }
      if (kind === 'resolve') {
        const from = this.container(e.resolve.from, [...p, 'resolve', 'from'], ctx);
        if (e.answer === undefined) this.err(p, "missing required key 'answer' (the endpoint or address the name must resolve to, or none)");
        else if (e.answer !== 'none') this.endpoint(e.answer, [...p, 'answer'], ctx, true);
        out.push({ ...common, kind: 'resolve', from, name: e.resolve.name, answer: e.answer ?? 'none' });
        return;
      }
      if (kind === 'frames') {
        const f = e.frames;
        const on = f.on === 'lan' ? 'lan' : this.hostOf(f.on, [...p, 'frames', 'on'], ctx, 'a capture');
        const proto: Proto = f.proto ?? 'tcp';
        if (proto === 'icmp' && f.port !== undefined) this.err([...p, 'frames', 'port'], 'icmp has no port');
        if (proto !== 'icmp' && f.port === undefined) this.err([...p, 'frames'], `${proto} needs a port`);
        this.endpoint(f.from, [...p, 'frames', 'from'], ctx, false);
        this.endpoint(f.to, [...p, 'frames', 'to'], ctx, true);
        if (e.vlan === undefined) this.err(p, "missing required key 'vlan' (the 802.1Q tag every frame must carry, or none)");
        out.push({ ...common, kind: 'frames', on, dev: f.dev, from: f.from, to: f.to, proto, port: f.port, vlan: e.vlan ?? 'none' });
        return;
      }
      if (kind === 'env') {
        const v = e.env;
        const container = this.container(v.container, [...p, 'env', 'container'], ctx);
        if ((v.equals === undefined) === (v.absent === undefined)) this.err([...p, 'env'], 'env needs exactly one of: equals, absent: true');
        this.expandedWith([ctx.containers.get(v.container)?.host.name], v.equals, [...p, 'env', 'equals']);
        out.push({ ...common, kind: 'env', container, variable: v.name, equals: v.equals, absent: v.absent === true });
        return;
      }
      const f = e.file;
      let container: string;
      if ((f.container === undefined) === (f.host === undefined)) {
        this.err([...p, 'file'], 'file needs exactly one of: container (a container or a lan peer), host (a Docker host)');
        container = f.container ?? f.host ?? '';
      } else if (f.host !== undefined) {
        container = this.hostOf(f.host, [...p, 'file', 'host'], ctx, 'a file check');
      } else {
        container = ctx.peers.has(f.container) ? f.container : this.container(f.container, [...p, 'file', 'container'], ctx);
      }
      if (!f.contains && !f.absent && !f.matches && f.equals === undefined) this.err([...p, 'file'], 'file needs at least one of: contains, absent, matches, equals');
      // a lan peer's file is expanded with the first host's facts (Endpoints.hostOf)
      const factsHost = f.host ?? (ctx.peers.has(f.container) ? [...ctx.hosts.keys()][0] : ctx.containers.get(f.container)?.host.name);
      for (const k of ['contains', 'absent', 'matches']) this.expandedListWith([factsHost], f[k], [...p, 'file', k]);
      this.expandedWith([factsHost], f.equals, [...p, 'file', 'equals']);
      out.push({ ...common, kind: 'file', container, path: f.path, contains: f.contains, absent: f.absent, matches: f.matches, equals: f.equals });
    });
    return out;
  }

  /**
   * `decided-by:` as written: a rule text, { table, chain, verdict, … }, or a map of profile or
   * engine to either (told apart by their keys: a map's keys are targets).
   */
  private decidedBy(raw: unknown, p: Path, ctx: Ctx): { value?: DecidedBy; byTarget?: Record<string, DecidedBy> } {
    if (raw === undefined || raw === null) return {};
    const isOne = (v: unknown) => typeof v === 'string' || (typeof v === 'object' && v !== null && ['table', 'chain', 'verdict', 'rule'].some((k) => k in v));
    // without host: the facts of whichever host decided the packet
    const anyHost = [...ctx.hosts.keys()];
    const one = (v: unknown, at: Path): DecidedBy => {
      if (v === 'none') return { none: true };
      if (typeof v === 'string') {
        this.expandedWith(anyHost, v, at);
        return { rule: v };
      }
      const d = v as DecidedBy;
      if (d.host !== undefined && !ctx.hosts.has(d.host)) this.err([...at, 'host'], `unknown host '${d.host}' (hosts: ${[...ctx.hosts.keys()].join(', ')})`);
      const hosts = d.host === undefined ? anyHost : [d.host];
      this.expandedWith(hosts, d.chain, [...at, 'chain']);
      this.expandedWith(hosts, d.rule, [...at, 'rule']);
      return { ...d };
    };
    if (isOne(raw)) return { value: one(raw, p) };
    const map = this.perTarget<unknown>(raw as Record<string, unknown>, p, []);
    return { byTarget: Object.fromEntries(Object.entries(map.byTarget ?? {}).map(([k, v]) => [k, one(v, [...p, k])])) };
  }

  /**
   * An endpoint name: a host (`host`, or a host's name), HOST@NET (that network's gateway), a
   * container (`web`, `hostB/web`) or CONTAINER@NET, a lan peer, `router`, `wan` or wan@IP, or
   * (as a destination only) an IPv4 address.
   */
  private endpoint(name: string, p: Path, ctx: Ctx, literalOk: boolean): void {
    if (name.startsWith('ipv6:')) {
      if (!ctx.ipv6) this.err(p, `${name}: an IPv6 endpoint needs a dual-stack lab (ipv6: true at the top)`);
      if (name.slice(5).startsWith('wan@')) return;
      return this.endpoint(name.slice(5), p, ctx, literalOk);
    }
    if (IPV4.test(name) || IPV6.test(name)) {
      if (!literalOk) this.err(p, `a probe cannot start from a bare address (${name}); use a host, a container, a peer or wan`);
      return;
    }
    const [base, net] = name.split('@');
    const host = ctx.hosts.get(base);
    if (host) {
      if (net && net !== 'bridge' && !host.networks.some((n) => n.name === net)) this.err(p, `unknown network '${net}' in ${name}`);
      return;
    }
    if (base === 'wan') {
      if (net && !IPV4.test(net)) this.err(p, `wan@ takes an outside server address, got ${net}`);
      return;
    }
    if (base === 'router' || ctx.peers.has(base)) {
      if (net) this.err(p, `${base} has one address; drop @${net}`);
      return;
    }
    const found = ctx.containers.get(base);
    if (!found) {
      const hosts = [...ctx.hosts.keys()].join(', ');
      const ambiguous = ctx.multiHost && !base.includes('/') && [...ctx.hosts.values()].some((h) => h.containers.some((c) => c.name === base));
      this.err(
        p,
        ambiguous
          ? `container '${base}' exists on several hosts: write host/${base}`
          : `unknown endpoint '${name}' (expected a host (${hosts}), HOST@<network>, a container, a lan peer, router, wan${literalOk ? ' or an IPv4 address' : ''})`,
      );
      return;
    }
    // a container may be connected to more networks by later steps: any network of its host will do
    const c = found.c;
    const attachable = net === 'bridge' || found.host.networks.some((n) => n.name === net) || net === c.network;
    if (net && !attachable) this.err(p, `container ${base} cannot be on network ${net} (networks of its host: bridge${found.host.networks.map((n) => `, ${n.name}`).join('')})`);
  }
}

function cidrInside(inner: string, outer: string): boolean {
  const a = parseCidr(inner);
  const b = parseCidr(outer);
  return a.prefix >= b.prefix && a.base >= b.base && a.base + a.size <= b.base + b.size;
}

function ipsOverlap(a?: string, b?: string): boolean {
  return !a || !b || a === '0.0.0.0' || b === '0.0.0.0' || a === b;
}
