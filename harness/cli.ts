#!/usr/bin/env node
// netconform: run, validate and list container-networking scenarios; clean up; check the machine.
import { buildProvenance } from './engine/docker/provenance.js';
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { release } from 'node:os';
import { loadScenarios, formatDiagnostic, ScenarioError } from './scenario/load.js';
import { probeScenario, renderExplanation, type ProbeSpec } from './run/explain.js';
import { CATALOGUE } from './catalogue.js';
import { destroyAllLabs, gc } from './lab/lab.js';
import { detectCapabilities, iptablesVersion } from './lab/capabilities.js';
import { isIptablesVariant, type IptablesVariant } from './rules/iptables/tools.js';
import { run } from './lab/exec.js';
import { loadDockerEngine, runSuite } from './run/suite.js';
import { besideJunit, isDevice, writeOutputs } from './report/outputs.js';
import { RECORD_FORMAT, readRecord, type RunRecord, type ShardInfo } from './report/record.js';
import { parseShard, planShards, type ShardSpec } from './report/shard.js';
import { readTimings, type TimingsTable } from './report/timings.js';
import { mergeRecords } from './report/merge.js';
import { formatMs } from './report/view.js';
import { bold, dim, failureReport, findingsReport, flakyReport, green, kernelMatrixReport, progressLine, red, summaryLine, yellow } from './report/terminal.js';
import { scenarioStatus, type ScenarioResult } from './report/results.js';
import { mergeRounds } from './report/flaky.js';
import type { Scenario } from './scenario/types.js';
import { ALL_BUILDS, DEFAULT_PROFILE, PROFILES, expandTargets, releaseOf, type Target } from './targets.js';
import { buildUpgradeDiff, renderUpgradeDiff, upgradeReportName } from './report/upgrade.js';
import { chooseKernel, type KernelChoice } from './vm/kernel.js';
import { kernelTarget, resolveKernelList, type NamedKernel } from './vm/kernels.js';
import { runOnKernels } from './vm/matrix.js';
import { gcGuests } from './vm/guest.js';
import { gcSeedTemps } from './engine/docker/seed.js';
import { featureTable, placementLines, probeGuest, type KernelColumn } from './vm/doctor.js';
import { DockerNotFoundError, findCompanions, locateDocker, type Companion } from './engine/docker/locate.js';
import { gcDockerDaemons } from './engine/docker/gc.js';
import { RELEASES, describeBuildSource, profileOfVersion, resolveDockerTargets, versionNumber } from './engine/docker/builds.js';
import { haveConntrack } from './engine/docker/hoststate.js';
import { tracingReady } from './trace/tracer.js';
import { ovsUserspace } from './lab/ovs.js';

const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const USAGE = `usage: netconform <command> [options]

commands:
  run [paths…]        build every scenario in a hermetic lab, send the probes, assert, report
      --engine NAME   engine(s) to run, comma-separated (default: reference, i.e. reference:docker-20.10;
                      reference:docker-26, reference:docker-28, reference:docker-29 pick the reference
                      engine's profile; docker: a real dockerd the harness starts, whose version picks
                      its profile; docker:20.10, docker:26, docker:28: that release (the cached build
                      from scripts/get-engines.sh, or --dockerd); docker:all: every build present;
                      with reference and docker, each scenario also gets a comparison of the two)
      --profile LIST  run the reference engine under these profiles (comma-separated, or all;
                      docker-29-nftables is Docker 29 with --firewall-backend=nftables)
      --host-iptables nft|legacy  the iptables lab hosts run, called by its own binaries
                      (iptables-nft…, iptables-legacy…; default: $NETCONFORM_HOST_IPTABLES, else
                      the variant the machine's iptables is); a scenario's host: iptables: wins
      --dockerd PATH  the dockerd to certify (default: $NETCONFORM_DOCKERD, then PATH); its version
                      must be the release a docker:N target names
      --junit PATH    JUnit XML output (default: reports/junit.xml); beside it the run writes
                      report.html, report.md and run.json (the record \`merge\` reads), and appends
                      the Markdown to $GITHUB_STEP_SUMMARY when that is set
      --html PATH     the HTML report (default: report.html beside the JUnit)
      --markdown PATH the Markdown report (default: report.md beside the JUnit)
      --sarif PATH    also write SARIF 2.1.0: failed cases (error) and compliance findings (warning)
      --shard I/N     run the I-th of N parts of the scenarios, split by recorded durations so
                      the parts take about as long (all targets of a scenario stay together)
      --timings PATH  recorded durations for --shard (default: reports/timings.json)
      --save-timings  update the --timings table with this run's durations
      --only IDS      only scenarios covering these catalogue IDs (comma-separated)
      --tags T        only scenarios with one of these tags (comma-separated, e.g. firewalld)
      --skip-tags T   leave out scenarios with one of these tags (npm run suite: firewalld)
      --update-golden write golden rule files instead of comparing them
      --jobs N        labs built at once (default 4)
      --fail-on-findings  exit 1 when a case confirms an exposure marked finding: (a compliance gate)
      --repeat N      run the scenarios N rounds and report every case whose verdict changed between
                      rounds as flaky (a case failed in any round fails the run, as without --repeat)
      --fail-on-flaky exit 1 when a case is flaky, also when no round failed it
      --no-rule-paths don't trace the rule path of each reach probe (decided-by: cases are then skipped)
      --kernel LIST   run every scenario in a microVM of each kernel named: versions from
                      scripts/get-kernel.sh's cache (6.1,6.12,7.2), all of them (all), Debian
                      suites (bookworm, trixie, sid) or paths (a kernel folder, a vmlinuz file);
                      reports show scenario × kernel. Without it, scenarios the host kernel
                      cannot run go to the microVM when NETCONFORM_KERNEL or the cache names a
                      kernel, and are skipped otherwise
      --kernel-modules DIR  modules folder (lib/modules/<release>) of a --kernel vmlinuz file
      --vm-timeout S  seconds the whole guest run may take (default: no limit; a guest that stops
                      answering is stopped by its heartbeat, see README)
  explain SCENARIO --from A --to B [--proto tcp|udp|icmp] [--port P | --published web:80/tcp]
                      build the scenario's lab, send that one probe and print the rule path its
                      packet took on each Docker host (after the steps of --phase N; default 0)
      --engine/--profile/--dockerd as for run (two engines: both paths side by side); --source IP
  merge [paths…]      combine the run records (run.json, or folders holding them) of shards or
                      runs into one set: JUnit, report.html, report.md, SARIF, run.json, timings
      --out DIR       where the merged set goes (default: reports)
      --sarif PATH    the merged SARIF (default: findings.sarif in --out)
      --timings PATH  the timings table to update with the shards' durations (default: timings.json in --out)
  diff --from T --to T [paths…]
                      run the scenarios under two targets (profiles or engines) and report what
                      changes: chains, rules per chain, packet verdicts (also to reports/*.md);
                      --from kernel:6.1 --to kernel:7.2 runs them in a microVM of each kernel
      --engine T      the one target a kernel diff runs (default: reference)
      --out PATH      markdown report (default: reports/upgrade-FROM-to-TO.md)
      --host-iptables nft|legacy  as for run
  validate [paths…]   check scenarios against the schema and the catalogue (no root needed)
  list [paths…]       list scenarios and the catalogue IDs they cover
  gc [--all] [--run PID]
                      remove labs left by killed runs (--all: also those of live runs; --run: only that run's)
  doctor [paths…] [--no-boot] [--dockerd PATH]  check root, tools, iptables backend, the real
                      engines and kernel features (boots the configured guest kernel once to probe
                      it, unless --no-boot); --dockerd: that build's release, profile and companions

paths default to the scenarios/ folder. Exit codes: 0 all passed, 1 failures, 2 invalid input or setup.`;

function defaultPaths(paths: string[]): string[] {
  if (paths.length) return paths;
  return [existsSync('scenarios') ? 'scenarios' : join(PACKAGE_ROOT, 'scenarios')];
}

/** The scenarios of these paths (exit 2 on any error), only those covering `only`'s IDs if given. */
function load(paths: string[], only?: string, tags?: { tags?: string; skip?: string }): Scenario[] {
  const { scenarios, errors } = loadScenarios(defaultPaths(paths));
  if (errors.length) {
    for (const d of errors) console.error(formatDiagnostic(d));
    console.error(red(`\n${errors.length} error${errors.length === 1 ? '' : 's'} in scenarios; nothing was run`));
    process.exit(2);
  }
  const ids = only ? new Set(only.split(',')) : undefined;
  const want = tags?.tags ? tags.tags.split(',') : undefined;
  const skip = tags?.skip ? tags.skip.split(',') : [];
  return scenarios
    .filter((s) => !ids || s.covers.some((c) => ids.has(c)))
    .filter((s) => !want || s.tags.some((t) => want.includes(t)))
    .filter((s) => !s.tags.some((t) => skip.includes(t)));
}

/** The suite's microVM options for a kernel choice: where it runs scenarios the host cannot. */
function guestKernel(choice: KernelChoice) {
  return {
    kernel: choice.kernel,
    noKernelReason: choice.error ? `guest kernel from ${choice.source} is unusable: ${choice.error}` : undefined,
    onVmLine: (l: string) => console.log(dim('  vm│ ') + l),
  };
}

/** The kernels `--kernel` names (6.1,6.12,7.2, all, suites, paths), or exit 2 saying what is missing. */
function kernelsOrExit(spec: string, modulesDir?: string): NamedKernel[] {
  try {
    return resolveKernelList(spec, process.env, modulesDir);
  } catch (e) {
    console.error(red(`netconform: ${(e as Error).message}`));
    process.exit(2);
  }
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
      profile: { type: 'string' },
      dockerd: { type: 'string' },
      junit: { type: 'string', default: 'reports/junit.xml' },
      only: { type: 'string' },
      tags: { type: 'string' },
      'skip-tags': { type: 'string' },
      'update-golden': { type: 'boolean', default: false },
      jobs: { type: 'string', default: '4' },
      kernel: { type: 'string' },
      'kernel-modules': { type: 'string' },
      'vm-timeout': { type: 'string' },
      'fail-on-findings': { type: 'boolean', default: false },
      repeat: { type: 'string', default: '1' },
      'fail-on-flaky': { type: 'boolean', default: false },
      'no-rule-paths': { type: 'boolean', default: false },
      html: { type: 'string' },
      markdown: { type: 'string' },
      sarif: { type: 'string' },
      shard: { type: 'string' },
      timings: { type: 'string', default: 'reports/timings.json' },
      'save-timings': { type: 'boolean', default: false },
      'host-iptables': { type: 'string' },
    },
  });
  const hostIptables = hostIptablesOrExit(values['host-iptables']);
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1) {
    console.error(red(`--jobs must be a whole number of at least 1, not "${values.jobs}"`));
    return 2;
  }
  const repeat = Number(values.repeat);
  if (!Number.isInteger(repeat) || repeat < 1) {
    console.error(red(`--repeat must be a whole number of at least 1, not "${values.repeat}"`));
    return 2;
  }
  const shardSpec = values.shard !== undefined ? shardOrExit(values.shard) : undefined;
  const table = shardSpec || values['save-timings'] ? timingsOrExit(values.timings!) : undefined;
  const selected = load(positionals, values.only, { tags: values.tags, skip: values['skip-tags'] });
  // --kernel: the whole set in a guest of each kernel named; without it, only what the host cannot run
  const kernels = values.kernel ? kernelsOrExit(values.kernel, values['kernel-modules']) : undefined;
  const choice = kernels ? { source: '--kernel' } : chooseKernel(undefined, process.env);
  if (choice.error) console.error(yellow(`warning: guest kernel from ${choice.source} is unusable: ${choice.error}`));
  requireRoot();
  const engines = await enginesOrExit(values.engine!.split(',').filter(Boolean), values.profile?.split(',').filter(Boolean), values.dockerd);
  const { scenarios, shard } = shardSpec ? pickShard(selected, engines, table!, shardSpec, jobs) : { scenarios: selected, shard: undefined };
  const abort = stopOnSignals();
  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const on = kernels ? ` in microVMs of kernel ${kernels.map((k) => k.label).join(', ')}` : '';
  console.log(bold(`netconform: ${scenarios.length} scenarios on ${engines.join(', ')}${on}${shard ? ` (shard ${shard.index}/${shard.count})` : ''}${repeat > 1 ? `, ${repeat} rounds` : ''}`));
  const rounds: ScenarioResult[][] = [];
  for (let round = 1; round <= repeat && !abort.signal.aborted; round++) {
    if (repeat > 1) console.log(bold(`
round ${round} of ${repeat}`));
    const suite = {
      engines,
      updateGolden: values['update-golden'] && round === 1,
      signal: abort.signal,
      jobs,
      onProgress: (l: string) => console.log(dim(`  ${l}`)),
      onResult: (r: ScenarioResult, i: number, n: number) => console.log(progressLine(r, i, n)),
      ...guestKernel(choice),
      hostIptables,
      rulePaths: !values['no-rule-paths'],
      vm: values['vm-timeout'] ? { timeoutMs: Number(values['vm-timeout']) * 1000 } : {},
      // a failed scenario's daemon logs go beside the JUnit file (reports/logs/…); a JUnit sent to
      // a device (--junit /dev/null) asks for no files
      evidenceDir: isDevice(values.junit!) ? undefined : join(dirname(values.junit!), 'logs'),
    };
    rounds.push(kernels ? await runOnKernels(scenarios, kernels, { ...suite, onKernel: (l) => console.log(bold(l)) }) : await runSuite(scenarios, suite));
  }
  const { results, flaky } = rounds.length > 1 ? mergeRounds(rounds) : { results: rounds[0] ?? [], flaky: [] };
  const wall = performance.now() - t0;
  const matrix = kernelMatrixReport(results);
  if (matrix) console.log(matrix);
  const failures = failureReport(results);
  if (failures) console.log(failures);
  const findings = findingsReport(results);
  if (findings) console.log(findings);
  if (repeat > 1) console.log(flakyReport(results, rounds.length));
  const record: RunRecord = { format: RECORD_FORMAT, startedAt, wallMs: wall, targets: engines, scenarios: selected.map((s) => s.id), ...(shard ? { shard } : {}), ...(repeat > 1 ? { rounds: rounds.length } : {}), results };
  const written = writeOutputs(
    record,
    besideJunit(values.junit!, { html: values.html, markdown: values.markdown, sarif: values.sarif, timings: values['save-timings'] ? values.timings : undefined }),
  );
  console.log(`\n${summaryLine(results, wall)}\n${dim(written.join('\n'))}`);
  if (results.some((r) => ['failed', 'error'].includes(scenarioStatus(r)))) return 1;
  if (values['fail-on-flaky'] && flaky.length) return 1;
  // a compliance gate: the behaviour is as documented, and the documented behaviour is an exposure
  return values['fail-on-findings'] && results.some((r) => r.cases.some((c) => c.finding)) ? 1 : 0;
}

function shardOrExit(text: string): ShardSpec {
  try {
    return parseShard(text);
  } catch (e) {
    console.error(red(`netconform: ${(e as Error).message}`));
    process.exit(2);
  }
}

function timingsOrExit(path: string): TimingsTable {
  try {
    return readTimings(path);
  } catch (e) {
    console.error(red(`netconform: ${(e as Error).message}`));
    process.exit(2);
  }
}

/** This runner's part of a split; every runner computes the same split from the same inputs. */
function pickShard(all: Scenario[], targets: string[], table: TimingsTable, spec: ShardSpec, jobs: number): { scenarios: Scenario[]; shard: ShardInfo } {
  const plan = planShards(
    all.map((s) => s.id),
    targets,
    table,
    spec.count,
    jobs,
  );
  const mine = new Set(plan.shards[spec.index - 1]);
  const estimates = plan.estimatesMs.map((ms, i) => `${i + 1}/${spec.count} ${formatMs(ms)}`).join(', ');
  console.log(dim(`shard ${spec.index}/${spec.count}: ${mine.size} of ${all.length} scenarios (split ${plan.digest}; estimated ${estimates})`));
  if (plan.unknown.length) console.log(dim(`  no recorded duration for ${plan.unknown.join(', ')}: counted at the median (run --save-timings to record them)`));
  const longest = Math.max(...plan.estimatesMs);
  if (longest > 1.2 * Math.min(...plan.estimatesMs) && longest <= plan.longestMs * 1.001) {
    console.log(dim(`  the shards cannot end within 20 % of each other: one scenario alone takes ${formatMs(plan.longestMs)}`));
  }
  return { scenarios: all.filter((s) => mine.has(s.id)), shard: { index: spec.index, count: spec.count, plan: plan.digest } };
}

/** run.json files, or folders holding one (also one level down, as CI artifact downloads lay them out). */
function recordPaths(paths: string[]): string[] {
  return paths.flatMap((p) => {
    if (!existsSync(p) || !statSync(p).isDirectory()) return [p];
    if (existsSync(join(p, 'run.json'))) return [join(p, 'run.json')];
    return readdirSync(p)
      .map((d) => join(p, d, 'run.json'))
      .filter((f) => existsSync(f))
      .sort();
  });
}

function cmdMerge(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      out: { type: 'string', default: 'reports' },
      sarif: { type: 'string' },
      timings: { type: 'string' },
    },
  });
  const files = recordPaths(positionals);
  if (!files.length) {
    console.error(red('netconform merge needs the run records of the shards: netconform merge shards/*/run.json (or their folders)'));
    return 2;
  }
  let record: RunRecord;
  try {
    record = mergeRecords(files.map((path) => ({ path, record: readRecord(path) })));
  } catch (e) {
    console.error(red(`netconform merge: ${(e as Error).message}`));
    return 2;
  }
  const out = values.out!;
  const written = writeOutputs(
    record,
    besideJunit(join(out, 'junit.xml'), { sarif: values.sarif ?? join(out, 'findings.sarif'), timings: values.timings ?? join(out, 'timings.json') }),
  );
  const results = record.results;
  console.log(`${bold(`merged ${files.length} run records`)} ${dim(files.join(' '))}`);
  const failures = failureReport(results);
  if (failures) console.log(failures);
  console.log(`\n${summaryLine(results, record.wallMs)}\n${dim(written.join('\n'))}`);
  return results.some((r) => ['failed', 'error'].includes(scenarioStatus(r))) ? 1 : 0;
}

/** The teardown a signal started; the process exits when it is done, not before. */
let teardown: Promise<void> | undefined;

/** --host-iptables, else NETCONFORM_HOST_IPTABLES; undefined: the machine's own variant. */
function hostIptablesOrExit(option: string | undefined): IptablesVariant | undefined {
  const v = option ?? (process.env.NETCONFORM_HOST_IPTABLES || undefined);
  if (v === undefined || isIptablesVariant(v)) return v;
  console.error(red(`netconform: --host-iptables must be nft or legacy, not "${v}"${option === undefined ? ' (from NETCONFORM_HOST_IPTABLES)' : ''}`));
  process.exit(2);
}

function targetsOrExit(engines: string[], profiles?: string[]): Target[] {
  try {
    return expandTargets(engines, profiles);
  } catch (e) {
    console.error(red(`netconform: ${(e as Error).message}`));
    process.exit(2);
  }
}

/**
 * The run's targets with every docker target tied to its build (before any lab; exit 2 with
 * one sentence when a build is missing, broken, incomplete or another release than named).
 * `docker` takes the build's own profile; `docker:all` is every build present. A plain
 * `reference` beside docker targets is the reference of each build's profile, and `docker:all`
 * brings those itself: each real build is compared with its own profile.
 */
async function enginesOrExit(requested: string[], profiles: string[] | undefined, dockerd: string | undefined, opts: { pair: boolean } = { pair: true }): Promise<string[]> {
  const targets = targetsOrExit(requested, profiles);
  const docker = targets.filter((t) => t.engine === 'docker');
  if (dockerd && !docker.length) {
    console.error(red(`netconform: --dockerd ${dockerd} needs a docker target: add --engine docker (or reference,docker to compare it)`));
    process.exit(2);
  }
  if (!docker.length) return targets.map((t) => t.label);
  try {
    const { builds } = await resolveDockerTargets(docker, { dockerd });
    const m = await loadDockerEngine();
    for (const b of builds) m.configureDockerPool({ label: b.label, install: b.install });
    const plainReference = opts.pair && requested.includes('reference') && !requested.includes(`reference:${DEFAULT_PROFILE}`) && !profiles?.length;
    const all = opts.pair && requested.includes(ALL_BUILDS);
    const labels: string[] = [];
    for (const t of targets) {
      if (t.label === ALL_BUILDS || t.engine === 'docker') continue;
      if (t.label === `reference:${DEFAULT_PROFILE}` && plainReference) continue; // replaced by the builds' own profiles below
      labels.push(t.label);
    }
    const referenceOf = plainReference || all ? builds.map((b) => `reference:${b.profile}`) : [];
    for (const l of referenceOf) if (!labels.includes(l)) labels.push(l);
    for (const b of builds) labels.push(b.label);
    for (const b of builds) console.log(dim(`  ${b.label}: ${b.install.dockerd} (${b.install.version})`));
    return labels;
  } catch (e) {
    if (!(e instanceof DockerNotFoundError)) throw e;
    console.error(red(`netconform: ${e.message}`));
    process.exit(2);
  }
}

async function cmdDiff(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      only: { type: 'string' },
      'no-rule-paths': { type: 'boolean', default: false },
      'host-iptables': { type: 'string' },
      engine: { type: 'string' },
    },
  });
  const hostIptables = hostIptablesOrExit(values['host-iptables']);
  if (!values.from || !values.to) {
    console.error(red('netconform diff needs --from and --to, e.g. --from reference:docker-20.10 --to reference:docker-29, or --from kernel:6.1 --to kernel:7.2'));
    return 2;
  }
  const kernelFrom = kernelTarget(values.from);
  const kernelTo = kernelTarget(values.to);
  if (kernelFrom !== undefined || kernelTo !== undefined) {
    if (kernelFrom === undefined || kernelTo === undefined) {
      console.error(red(`netconform diff compares two kernels or two targets, not one of each: --from ${values.from} --to ${values.to}`));
      return 2;
    }
    return diffKernels(kernelFrom, kernelTo, { ...values, hostIptables }, positionals);
  }
  if (values.engine) {
    console.error(red('netconform diff: --engine goes with kernel targets (--from kernel:6.1 --to kernel:7.2 --engine docker); between two targets, name them in --from and --to'));
    return 2;
  }
  requireRoot();
  const [from, to] = await enginesOrExit([values.from, values.to], undefined, undefined, { pair: false });
  if (!to) {
    console.error(red(`netconform diff: --from ${values.from} and --to ${values.to} are the same target`));
    return 2;
  }
  const scenarios = load(positionals, values.only);
  // scenarios the host kernel cannot run go to the microVM, as in `run`: the diff covers them too
  const choice = chooseKernel(undefined, process.env);
  if (choice.error) console.error(yellow(`warning: guest kernel from ${choice.source} is unusable: ${choice.error}`));
  const abort = stopOnSignals();
  const t0 = performance.now();
  console.log(bold(`netconform diff: ${scenarios.length} scenarios, ${from} → ${to}`));
  const results = await runSuite(scenarios, {
    engines: [from, to],
    hostIptables,
    signal: abort.signal,
    rulePaths: !values['no-rule-paths'],
    ...guestKernel(choice),
    onProgress: (l) => console.log(dim(`  ${l}`)),
    onResult: (r, i, n) => console.log(progressLine(r, i, n)),
  });
  return reportDiff(from, to, results, (r) => r.engine === from, (r) => r.engine === to, values.out, t0);
}

/** The upgrade diff of a run's two sides: written to --out (or reports/upgrade-A-to-B.md) and printed. */
function reportDiff(
  from: string,
  to: string,
  results: ScenarioResult[],
  isFrom: (r: ScenarioResult) => boolean,
  isTo: (r: ScenarioResult) => boolean,
  outPath: string | undefined,
  t0: number,
  preface = '',
): number {
  const text = renderUpgradeDiff(buildUpgradeDiff(from, to, results.filter(isFrom), results.filter(isTo)));
  const out = outPath ?? join('reports', upgradeReportName(from, to));
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, text);
  console.log(`${preface}\n\n${text}`);
  console.log(dim(`${((performance.now() - t0) / 1000).toFixed(2)} s; report: ${out}`));
  return results.some((r) => scenarioStatus(r) === 'error') ? 1 : 0;
}

/** diff --from kernel:A --to kernel:B: the scenarios in a guest of each kernel, on one engine, then what changes. */
async function diffKernels(from: string, to: string, values: { engine?: string; out?: string; only?: string; hostIptables?: IptablesVariant; 'no-rule-paths'?: boolean }, positionals: string[]): Promise<number> {
  const kernels = kernelsOrExit(`${from},${to}`);
  if (kernels.length < 2) {
    console.error(red(`netconform diff: kernel:${from} and kernel:${to} are the same kernel (${kernels[0].kernel.release})`));
    return 2;
  }
  const engines = await enginesOrExit([values.engine ?? 'reference'], undefined, undefined, { pair: false });
  if (engines.length !== 1) {
    console.error(red(`netconform diff between kernels runs one engine, not ${engines.join(', ')}`));
    return 2;
  }
  const scenarios = load(positionals, values.only);
  requireRoot();
  const abort = stopOnSignals();
  const t0 = performance.now();
  const [a, b] = kernels.map((k) => `kernel:${k.label}`);
  console.log(bold(`netconform diff: ${scenarios.length} scenarios on ${engines[0]}, ${a} (${kernels[0].kernel.release}) → ${b} (${kernels[1].kernel.release})`));
  const results = await runOnKernels(scenarios, kernels, {
    engines,
    hostIptables: values.hostIptables,
    rulePaths: !values['no-rule-paths'],
    signal: abort.signal,
    onProgress: (l) => console.log(dim(`  ${l}`)),
    onResult: (r, i, n) => console.log(progressLine(r, i, n)),
    onKernel: (l) => console.log(bold(l)),
  });
  const on = (k: NamedKernel) => (r: ScenarioResult) => r.kernel === k.label;
  // why a case failed on one kernel matters as much as that it did
  return reportDiff(a, b, results, on(kernels[0]), on(kernels[1]), values.out, t0, `${kernelMatrixReport(results)}${failureReport(results)}`);
}

async function cmdExplain(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      from: { type: 'string' },
      to: { type: 'string' },
      proto: { type: 'string', default: 'tcp' },
      port: { type: 'string' },
      published: { type: 'string' },
      source: { type: 'string' },
      phase: { type: 'string', default: '0' },
      engine: { type: 'string', default: 'reference' },
      profile: { type: 'string' },
      dockerd: { type: 'string' },
    },
  });
  const usage = 'usage: netconform explain SCENARIO --from A --to B [--proto tcp|udp|icmp] [--port P | --published web:80/tcp] [--phase N] [--engine …]';
  if (positionals.length !== 1 || !values.from || !values.to) {
    console.error(red(`netconform explain needs one scenario file, --from and --to\n${usage}`));
    return 2;
  }
  const proto = values.proto as ProbeSpec['proto'];
  const port = values.port === undefined ? undefined : Number(values.port);
  const phase = Number(values.phase);
  const bad = [
    !['tcp', 'udp', 'icmp'].includes(proto) && `--proto must be tcp, udp or icmp, not "${values.proto}"`,
    port !== undefined && !(Number.isInteger(port) && port > 0 && port < 65536) && `--port must be a port number, not "${values.port}"`,
    !(Number.isInteger(phase) && phase >= 0) && `--phase must be a whole number (0: right after the build), not "${values.phase}"`,
  ].filter(Boolean);
  if (bad.length) {
    for (const b of bad) console.error(red(`netconform explain: ${b}`));
    return 2;
  }
  const [valid] = load(positionals);
  if (!valid) {
    console.error(red(`netconform explain: no scenario in ${positionals[0]}`));
    return 2;
  }
  let sc: Scenario;
  try {
    sc = probeScenario(valid.file, valid, { from: values.from, to: values.to, proto, port, published: values.published, source: values.source, phase });
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    for (const d of e.errors) console.error(red(`netconform explain: ${d.path}: ${d.message}`));
    return 2;
  }
  requireRoot();
  const engines = await enginesOrExit(values.engine!.split(',').filter(Boolean), values.profile?.split(',').filter(Boolean), values.dockerd);
  const abort = stopOnSignals();
  console.log(bold(`netconform explain: ${sc.id}, ${values.from} → ${values.to} ${proto}${port ? '/' + port : values.published ? ` (published ${values.published})` : ''} on ${engines.join(', ')}`));
  const results = await runSuite([sc], { engines, signal: abort.signal, rulePaths: true, onProgress: (l) => console.log(dim(`  ${l}`)), ...guestKernel(chooseKernel(undefined, process.env)) });
  const { text, ok } = renderExplanation(results);
  console.log(`\n${text}`);
  return ok ? 0 : 1;
}

/**
 * The one way a run stops early: Ctrl-C, SIGTERM, its output closed (`| head`), or a bug. It
 * schedules nothing more, tears down every lab (no new one can start), then exits with `code`.
 */
function stopRun(why: string, code: number): void {
  if (teardown) return;
  runAbort.abort();
  try {
    console.error(yellow(why));
  } catch {
    /* the output is gone too */
  }
  teardown = destroyAllLabs();
  void teardown.finally(() => process.exit(code));
}

const runAbort = new AbortController();

/** The run's abort signal, aborted by SIGINT and SIGTERM. */
function stopOnSignals(): AbortController {
  for (const [sig, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    process.on(sig, () => stopRun(`\n${sig}: tearing down the labs of this run…`, code));
  }
  return runAbort;
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
  const { values } = parseArgs({ args, options: { all: { type: 'boolean', default: false }, run: { type: 'string', multiple: true } } });
  const runs = values.run?.map((v) => {
    if (/^\d+$/.test(v)) return Number(v);
    console.error(red(`netconform: gc --run takes the pid of a run (the number in ncf-PID-… names), not "${v}"`));
    process.exit(2);
  });
  requireRoot();
  const scope = { all: values.all, runs };
  // daemons first (their containers live outside the lab namespaces), then the namespaces
  const d = await gcDockerDaemons(scope);
  if (d.removed.length) console.log(`stopped and removed ${d.removed.length} docker daemons: ${d.removed.join(' ')}`);
  if (d.keptLive.length) console.log(dim(`kept ${d.keptLive.length} docker daemons of runs still alive`));
  const r = await gc(scope);
  const vms = gcGuests(scope);
  const seeds = gcSeedTemps(scope);
  console.log(r.removed.length ? `removed ${r.removed.length} namespaces: ${r.removed.join(' ')}` : 'no namespaces to clean up');
  if (vms.killed.length) console.log(`killed ${vms.killed.length} microVM guests (qemu pids ${vms.killed.join(' ')})`);
  if (vms.removed.length) console.log(`removed ${vms.removed.length} microVM job folders: ${vms.removed.join(' ')}`);
  if (seeds.length) console.log(`removed ${seeds.length} half-written data root seeds: ${seeds.join(' ')}`);
  if (r.keptLive.length) console.log(dim(`kept ${r.keptLive.length} namespaces of runs still alive (use --all to remove them too)`));
  return 0;
}

async function cmdDoctor(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'no-boot': { type: 'boolean', default: false }, dockerd: { type: 'string' } } });
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
  // `bridge` (iproute2) sets VLAN membership on switch ports (VL scenarios' bridge steps)
  const br = await run('bridge', ['-V'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  line(br.exitCode === 0, 'bridge (iproute2)', br.exitCode === 0 ? br.stdout.trim() : 'apt-get install -y iproute2');
  const ns = await run('nsenter', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  line(ns.exitCode === 0, 'nsenter', ns.exitCode === 0 ? ns.stdout.trim() : 'apt-get install -y util-linux');
  // the docker engine is optional: without it only --engine docker is unavailable
  const optional = (good: boolean, what: string, detail: string) => console.log(`${good ? green('✓') : yellow('-')} ${what.padEnd(24)} ${dim(detail)}`);
  if (values.dockerd) {
    // the build a user asked about: an unusable one is bad input (exit 2, one sentence)
    const bad = await doctorDockerd(values.dockerd);
    if (bad) {
      console.error(red(`netconform: ${bad}`));
      return 2;
    }
  } else {
    try {
      const d = await locateDocker();
      optional(true, 'dockerd (--engine docker)', `${d.dockerd}: ${d.version}; containerd ${d.containerd}`);
    } catch (e) {
      optional(false, 'dockerd (--engine docker)', (e as Error).message);
    }
  }
  console.log(bold('\nreal engines (--engine docker:RELEASE)'));
  for (const p of PROFILES) {
    const where = describeBuildSource(p);
    const there = where.startsWith('/');
    optional(there, `docker:${releaseOf(p)}`, `${where} · ${RELEASES[p]}`);
  }
  // the nftables profile (docker-29-nftables) and nft steps and checks need it
  const nft = await run('nft', ['--version'], { allowFail: true }).catch(() => ({ exitCode: 127, stdout: '' }));
  optional(nft.exitCode === 0, 'nft (nftables)', nft.exitCode === 0 ? nft.stdout.trim() : 'apt-get install -y nftables (scripts/setup.sh does)');
  const ovs = await ovsUserspace();
  optional(ovs.ok, 'openvswitch userspace', ovs.detail);
  optional(await haveConntrack(), 'conntrack', 'flushes connection tracking between scenarios on a reused dockerd (apt-get install -y conntrack)');
  const tracing = tracingReady();
  optional(tracing.ok, 'rule paths (nftables)', tracing.ok ? `traces every reach probe's packet (${tracing.detail})` : `no rule paths, decided-by: cases skipped: ${tracing.detail}`);
  if (!root) return 2;
  const caps = await detectCapabilities();
  const choice = chooseKernel(undefined);
  await doctorKernels(caps, choice, !values['no-boot'], positionals);
  return ok ? 0 : 2;
}

/**
 * `doctor --dockerd PATH`: the build, its release and profile, and every companion it would
 * run with, flagging one that comes from PATH instead of the build's folder and a dangling link.
 * Returns the sentence that makes the build unusable, if one does.
 */
async function doctorDockerd(path: string): Promise<string | undefined> {
  let d;
  try {
    d = await locateDocker(path);
  } catch (e) {
    if (!(e instanceof DockerNotFoundError)) throw e;
    // a build that lacks a companion: show where each one would come from, then the one sentence
    if (e.message.includes(' lacks ')) for (const c of findCompanions(dirname(resolve(path)))) console.log(companionLine(c));
    return e.message;
  }
  const number = versionNumber(d.version) ?? '?';
  const profile = profileOfVersion(number);
  const mark = profile ? green('✓') : yellow('-');
  // where each part came from: the MANIFEST of a cached build (a Debian package, or an upstream tag built here)
  const from = buildProvenance(dirname(d.dockerd));
  const origin = (part: string) => (from.has(part) ? ` · from ${from.get(part)}` : '');
  console.log(`${mark} ${'dockerd'.padEnd(24)} ${dim(`${d.dockerd}: ${d.version}; ${profile ? `profile ${profile} (--engine docker:${releaseOf(profile)})` : `no profile of its own: name one, e.g. --engine docker:${releaseOf(DEFAULT_PROFILE)}`}${origin('dockerd')}`)}`);
  for (const c of d.companions) console.log(companionLine(c, c.origin === 'folder' ? origin(c.name) : ''));
  return undefined;
}

function companionLine(c: Companion, origin = ''): string {
  const mark = c.origin === 'folder' ? green('✓') : c.origin === 'PATH' ? yellow('!') : c.required ? red('✗') : yellow('-');
  const where = c.origin === 'folder' ? c.path! : c.origin === 'PATH' ? `${c.path} (from PATH, not the build's folder)` : 'missing';
  const dangling = c.dangling ? `; the one beside dockerd is a link to ${c.dangling} that leads nowhere` : '';
  return `${mark} ${`  ${c.name}`.padEnd(24)} ${dim(`${where}${dangling} · ${c.role}${origin}`)}`;
}

/** Features per kernel (host, and the guest kernel when one is configured), and where each scenario runs. */
async function doctorKernels(caps: Awaited<ReturnType<typeof detectCapabilities>>, choice: KernelChoice, boot: boolean, paths: string[]): Promise<void> {
  const columns: KernelColumn[] = [{ title: `host ${release()}`, caps }];
  console.log(bold('\nguest kernel (microVM)'));
  if (choice.kernel) {
    console.log(`${green('✓')} ${choice.kernel.release} from ${choice.source}: ${dim(choice.kernel.vmlinuz)}`);
    if (boot) {
      console.log(dim('  booting it once to probe its features (about 15 s under software emulation; --no-boot skips this)…'));
      columns.push(await probeGuest(choice));
    } else columns.push({ title: `guest ${choice.kernel.release}`, note: 'not probed (--no-boot)' });
  } else {
    console.log(`${yellow('-')} ${choice.error ?? choice.source}: ${dim('scripts/get-kernel.sh fetches one (README, "Kernels the host does not have")')}`);
  }
  console.log(bold('\nkernel features'));
  for (const l of featureTable(columns, (ok) => (ok === undefined ? dim('?') : ok ? green('✓') : yellow('-')))) console.log(l);
  const { scenarios } = loadScenarios(defaultPaths(paths));
  console.log(bold('\nscenarios (where each runs)'));
  for (const l of placementLines(scenarios, caps, choice, columns[1]?.caps)) console.log(l);
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'run':
      return cmdRun(rest);
    case 'diff':
      return cmdDiff(rest);
    case 'explain':
      return cmdExplain(rest);
    case 'merge':
      return cmdMerge(rest);
    case 'validate':
      return cmdValidate(rest);
    case 'list':
      return cmdList(rest);
    case 'gc':
      return cmdGc(rest);
    case 'doctor':
      return cmdDoctor(rest);
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

// A bug must not leave labs behind: tear them down, then exit with the error.
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (e) => stopRun(red(`netconform: internal error (${event}): ${(e as Error)?.stack ?? String(e)}`), 2));
}
// Nobody reads the output any more (`netconform run … | head` ended): stop as on SIGPIPE, with
// the labs torn down; writes that fail after that are dropped, not thrown.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') stopRun('netconform: the output was closed: tearing down the labs of this run…', 141);
    else stopRun(`netconform: cannot write the output: ${e.message}`, 2);
  });
}

main(process.argv.slice(2)).then(
  // after a signal the run ends early; its teardown (labs, daemons) exits the process when done
  (code) => (teardown ? undefined : process.exit(code)),
  (e) => {
    // the message is for the user; NETCONFORM_TRACE=1 adds where it came from, for a bug report
    console.error(red(`netconform: ${process.env.NETCONFORM_TRACE ? ((e as Error).stack ?? e) : (e as Error).message}`));
    destroyAllLabs().finally(() => process.exit(2));
  },
);
