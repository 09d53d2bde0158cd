#!/usr/bin/env node
// netconform: run, validate and list container-networking scenarios; clean up; check the machine.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadScenarios, formatDiagnostic } from './scenario/load.js';
import { CATALOGUE } from './catalogue.js';
import { destroyAllLabs, gc } from './lab/lab.js';
import { detectCapabilities, iptablesVersion } from './lab/capabilities.js';
import { run } from './lab/exec.js';
import { runSuite } from './run/suite.js';
import { writeJunit } from './report/junit.js';
import { bold, dim, failureReport, green, progressLine, red, summaryLine, yellow } from './report/terminal.js';
import { scenarioStatus } from './report/results.js';
import type { Scenario } from './scenario/types.js';
import { configureDockerPool } from './engine/docker/pool.js';
import { locateDocker } from './engine/docker/locate.js';
import { gcDockerDaemons } from './engine/docker/gc.js';
import { haveConntrack } from './engine/docker/hoststate.js';

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: netconform <command> [options]

commands:
  run [paths…]        build every scenario in a hermetic lab, send the probes, assert, report
      --engine NAME   engine(s) to run, comma-separated (default: reference); with
                      several (reference,docker) each scenario also gets a comparison
      --dockerd PATH  the dockerd to certify (default: $NETCONFORM_DOCKERD, then PATH)
      --junit PATH    JUnit XML output (default: reports/junit.xml)
      --only IDS      only scenarios covering these catalogue IDs (comma-separated)
      --update-golden write golden rule files instead of comparing them
  validate [paths…]   check scenarios against the schema and the catalogue (no root needed)
  list [paths…]       list scenarios and the catalogue IDs they cover
  gc [--all]          remove labs left by killed runs (--all: also those of live runs)
  doctor              check root, tools, iptables backend and kernel features

paths default to the scenarios/ folder. Exit codes: 0 all passed, 1 failures, 2 invalid input or setup.`;

function defaultPaths(paths: string[]): string[] {
  if (paths.length) return paths;
  return [existsSync('scenarios') ? 'scenarios' : join(PACKAGE_ROOT, 'scenarios')];
}

function load(paths: string[]): Scenario[] {
  const { scenarios, errors } = loadScenarios(defaultPaths(paths));
  if (errors.length) {
    for (const d of errors) console.error(formatDiagnostic(d));
    console.error(red(`\n${errors.length} error${errors.length === 1 ? '' : 's'} in scenarios; nothing was run`));
    process.exit(2);
  }
  return scenarios;
}

function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    console.error(red('netconform run needs root: labs are network namespaces (run it with sudo, or as root in CI)'));
    process.exit(2);
  }
}

async function cmdRun(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      engine: { type: 'string', default: 'reference' },
      dockerd: { type: 'string' },
      junit: { type: 'string', default: 'reports/junit.xml' },
      only: { type: 'string' },
      'update-golden': { type: 'boolean', default: false },
    },
  });
  let scenarios = load(positionals);
  if (values.only) {
    const ids = new Set(values.only.split(','));
    scenarios = scenarios.filter((s) => s.covers.some((c) => ids.has(c)));
  }
  requireRoot();
  const engines = values.engine!.split(',').filter(Boolean);
  if (values.dockerd) configureDockerPool({ dockerd: values.dockerd });
  const abort = new AbortController();
  installSignalHandlers(abort);
  const t0 = performance.now();
  console.log(bold(`netconform: ${scenarios.length} scenarios on ${engines.join(', ')}`));
  const results = await runSuite(scenarios, {
    engines,
    updateGolden: values['update-golden'],
    signal: abort.signal,
    onProgress: (l) => console.log(dim(`  ${l}`)),
    onResult: (r, i, n) => console.log(progressLine(r, i, n)),
  });
  const wall = performance.now() - t0;
  const failures = failureReport(results);
  if (failures) console.log(failures);
  writeJunit(values.junit!, results);
  console.log(`\n${summaryLine(results, wall)}\n${dim(`JUnit: ${values.junit}`)}`);
  return results.some((r) => ['failed', 'error'].includes(scenarioStatus(r))) ? 1 : 0;
}

/** The teardown a signal started; the process exits when it is done, not before. */
let teardown: Promise<void> | undefined;

function installSignalHandlers(abort: AbortController): void {
  let stopping = false;
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => {
      if (stopping) return;
      stopping = true;
      abort.abort();
      console.error(yellow(`\n${sig}: tearing down the labs of this run…`));
      teardown = destroyAllLabs();
      teardown.finally(() => process.exit(code));
    });
  }
}

function cmdValidate(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const scenarios = load(positionals);
  const cases = scenarios.reduce((n, s) => n + s.expect.length, 0);
  console.log(green(`${scenarios.length} scenarios valid (${cases} expectations)`));
  return 0;
}

function cmdList(args: string[]): number {
  const { positionals } = parseArgs({ args, allowPositionals: true, options: {} });
  const scenarios = load(positionals);
  const covered = new Set<string>();
  for (const s of scenarios) {
    s.covers.forEach((c) => covered.add(c));
    console.log(`${bold(s.id)}  ${s.covers.join(' ')}  ${dim(s.title)}`);
  }
  const missing = Object.keys(CATALOGUE).filter((id) => !covered.has(id));
  console.log(dim(`\n${covered.size}/${Object.keys(CATALOGUE).length} catalogue IDs covered${missing.length ? `; not yet: ${missing.join(' ')}` : ''}`));
  return 0;
}

async function cmdGc(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { all: { type: 'boolean', default: false } } });
  requireRoot();
  // daemons first (their containers live outside the lab namespaces), then the namespaces
  const d = await gcDockerDaemons({ all: values.all });
  if (d.removed.length) console.log(`stopped and removed ${d.removed.length} docker daemons: ${d.removed.join(' ')}`);
  if (d.keptLive.length) console.log(dim(`kept ${d.keptLive.length} docker daemons of runs still alive`));
  const r = await gc({ all: values.all });
  console.log(r.removed.length ? `removed ${r.removed.length} namespaces: ${r.removed.join(' ')}` : 'nothing to clean up');
  if (r.keptLive.length) console.log(dim(`kept ${r.keptLive.length} namespaces of runs still alive (use --all to remove them too)`));
  return 0;
}

async function cmdDoctor(): Promise<number> {
  let ok = true;
  const line = (good: boolean, what: string, detail: string) => {
    ok &&= good;
    console.log(`${good ? green('✓') : red('✗')} ${what.padEnd(24)} ${dim(detail)}`);
  };
  const root = process.getuid?.() === 0;
  line(root, 'root', root ? 'running as root' : 'labs need root');
  const ip = await run('ip', ['-V'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  line(ip.exitCode === 0, 'iproute2', ip.exitCode === 0 ? ip.stdout.trim() : 'apt-get install -y iproute2');
  const ipt = await iptablesVersion();
  line(!ipt.includes('not found'), 'iptables', ipt.includes('not found') ? 'apt-get install -y iptables' : `${ipt} (backend: ${ipt.includes('nf_tables') ? 'nft' : 'legacy'})`);
  const ns = await run('nsenter', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  line(ns.exitCode === 0, 'nsenter', ns.exitCode === 0 ? ns.stdout.trim() : 'apt-get install -y util-linux');
  // the docker engine is optional: without it only --engine docker is unavailable
  const optional = (good: boolean, what: string, detail: string) => console.log(`${good ? green('✓') : yellow('-')} ${what.padEnd(24)} ${dim(detail)}`);
  try {
    const d = await locateDocker();
    optional(true, 'dockerd (--engine docker)', `${d.dockerd}: ${d.version}; containerd ${d.containerd}`);
  } catch (e) {
    optional(false, 'dockerd (--engine docker)', (e as Error).message);
  }
  optional(await haveConntrack(), 'conntrack', 'flushes connection tracking between scenarios on a reused dockerd (apt-get install -y conntrack)');
  if (!root) return 2;
  const caps = await detectCapabilities();
  console.log(bold('\nkernel features'));
  for (const c of caps) console.log(`${c.ok ? green('✓') : yellow('-')} ${c.feature.padEnd(24)} ${dim(c.detail)}`);
  const missing = new Map(caps.filter((c) => !c.ok).map((c) => [c.feature, c.detail]));
  const { scenarios } = loadScenarios(defaultPaths([]));
  const skipped = scenarios.filter((s) => s.requires.some((f) => missing.has(f)));
  console.log(bold('\nscenarios'));
  console.log(`${scenarios.length - skipped.length} of ${scenarios.length} scenarios can run here`);
  for (const s of skipped) console.log(`${yellow('-')} ${s.id} will be skipped: needs ${s.requires.filter((f) => missing.has(f)).join(', ')}`);
  return ok ? 0 : 2;
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return cmdRun(rest);
    case 'validate':
      return cmdValidate(rest);
    case 'list':
      return cmdList(rest);
    case 'gc':
      return cmdGc(rest);
    case 'doctor':
      return cmdDoctor();
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      console.log(USAGE);
      return cmd ? 0 : 2;
    default:
      console.error(`unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  // after a signal the run ends early; its teardown (labs, daemons) exits the process when done
  (code) => (teardown ? undefined : process.exit(code)),
  (e) => {
    console.error(red(`netconform: ${(e as Error).message}`));
    destroyAllLabs().finally(() => process.exit(2));
  },
);
