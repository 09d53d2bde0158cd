// Benchmark section `noisy`: the noisy-neighbour check. `npm test`, then `npm run
// suite`, exactly as the README has a user type them, with `stress-ng --cpu N` busy beside them;
// /proc/loadavg sampled every 5 s says what load they met. Prints each spec file's verdict (from
// vitest's JSON report), vitest's Duration, the suite's summary and each command's wall time,
// and rejects when anything failed (the bench then exits 1). Only this section's own children
// are stopped, by pid: stress-ng at the end, on failure and on SIGINT/SIGTERM; a command still
// running on SIGINT/SIGTERM gets the signal as its process group (a terminal's Ctrl-C would
// have sent it the same). Output of each command goes to reports/noisy/.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { packageRoot } from '../paths.js';

const SAMPLE_MS = 5_000;
const HEARTBEAT_MS = 30_000;

export interface LoadSample {
  atMs: number;
  /** the 1-minute load average */
  one: number;
  /** runnable tasks at that instant (loadavg's fourth field, before the slash) */
  runnable: number;
}

export function parseLoadavg(text: string, atMs: number): LoadSample {
  const [one, , , tasks] = text.trim().split(/\s+/);
  return { atMs, one: Number(one), runnable: Number(tasks?.split('/')[0]) };
}

export interface LoadStats {
  samples: number;
  min: number;
  median: number;
  max: number;
  /** when the 1-minute load was at its highest (ms into the phase) */
  maxAtMs: number;
  peakRunnable: number;
}

export function loadStats(samples: LoadSample[]): LoadStats | undefined {
  if (!samples.length) return undefined;
  const xs = samples.map((s) => s.one).sort((a, b) => a - b);
  const mid = xs.length >> 1;
  const top = samples.reduce((a, b) => (b.one > a.one ? b : a));
  return {
    samples: xs.length,
    min: xs[0],
    median: xs.length % 2 ? xs[mid] : (xs[mid - 1] + xs[mid]) / 2,
    max: top.one,
    maxAtMs: top.atMs,
    peakRunnable: Math.max(...samples.map((s) => s.runnable)),
  };
}

/** The part of vitest's JSON report (--reporter=json) read here. */
export interface VitestReport {
  testResults: {
    name: string;
    status: string;
    message?: string;
    startTime: number;
    endTime: number;
    assertionResults: { fullName: string; status: string; failureMessages?: string[] }[];
  }[];
}

export interface FileRow {
  file: string;
  passed: number;
  failed: number;
  /** skipped, todo and pending */
  skipped: number;
  ms: number;
  ok: boolean;
  /** per failure: its name, then the first lines of its message */
  failures: string[][];
}

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

/** A failure message's first lines: up to `n`, before the stack trace. */
export function firstLines(message: string, n = 3): string[] {
  const lines = plain(message)
    .split('\n')
    .map((l) => l.trimEnd())
    .filter((l) => l.trim());
  const stack = lines.findIndex((l) => /^\s+at /.test(l));
  return lines.slice(0, Math.min(n, stack < 0 ? lines.length : Math.max(stack, 1)));
}

export function fileRows(report: VitestReport, root: string): FileRow[] {
  return report.testResults
    .map((f) => {
      const count = (st: string) => f.assertionResults.filter((t) => t.status === st).length;
      const failures = f.assertionResults.filter((t) => t.status === 'failed').flatMap((t) => (t.failureMessages?.length ? t.failureMessages : ['']).map((m) => [t.fullName, ...firstLines(m)]));
      // an error outside any test (an import, a hook): the file failed with no failing test
      if (f.status === 'failed' && f.message) failures.unshift(['(the file)', ...firstLines(f.message)]);
      const passed = count('passed');
      const failed = count('failed');
      return { file: relative(root, f.name), passed, failed, skipped: f.assertionResults.length - passed - failed, ms: Math.max(0, f.endTime - f.startTime), ok: f.status === 'passed' && failed === 0, failures };
    })
    .sort((a, b) => a.file.localeCompare(b.file));
}

export const dur = (ms: number) => (ms < 1000 ? `${Math.round(ms)} ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')} s`);

export function fileTable(rows: FileRow[]): string {
  const head = ['file', 'passed', 'failed', 'skipped', 'duration', ''];
  const cells = rows.map((r) => [r.file, String(r.passed), String(r.failed), String(r.skipped), dur(r.ms), r.ok ? 'ok' : 'FAILED']);
  const w = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 0 ? x.padEnd(w[i]) : x.padStart(w[i]))).join('  ').trimEnd();
  const out = [line(head)];
  rows.forEach((r, i) => {
    out.push(line(cells[i]));
    for (const [name, ...msg] of r.failures) out.push(`    ✗ ${name}`, ...msg.map((m) => `        ${m}`));
  });
  const sum = (k: 'passed' | 'failed' | 'skipped') => rows.reduce((n, r) => n + r[k], 0);
  out.push(`${rows.length} file${rows.length === 1 ? '' : 's'}, ${rows.filter((r) => !r.ok).length} failed; tests: ${sum('passed')} passed, ${sum('failed')} failed, ${sum('skipped')} skipped`);
  return out.join('\n');
}

/** vitest's own "Duration" line (the default reporter's summary). */
export function vitestDuration(log: string): string | undefined {
  return /^\s*Duration\s+(.+)$/m.exec(plain(log))?.[1].trim();
}

/** `npm run suite`'s summary (the two lines at its end) and the progress lines of scenarios that did not pass. */
export function suiteSummary(log: string): { summary: string[]; notPassing: string[] } {
  const lines = plain(log).split('\n');
  const at = lines.findIndex((l) => /^\d+ passed, \d+ failed, \d+ skipped/.test(l));
  return { summary: at < 0 ? [] : lines.slice(at, at + 2), notPassing: lines.filter((l) => /^\[\s*\d+\/\d+\] [✗!] /.test(l)) };
}

function options(argv: string[]) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: { only: { type: 'string' }, cpu: { type: 'string', default: '2' } } });
  } catch (e) {
    throw new Error(`noisy: ${(e as Error).message} (vitest's own options go after a second --)`);
  }
  const { values, positionals } = parsed;
  if (values.only !== undefined && !['test', 'suite'].includes(values.only)) throw new Error(`noisy: --only test|suite, not ${values.only}`);
  const cpu = Number(values.cpu);
  if (!Number.isInteger(cpu) || cpu < 0) throw new Error(`noisy: --cpu takes a worker count (0: no stress-ng), not ${values.cpu}`);
  return { only: values.only as 'test' | 'suite' | undefined, cpu, vitestArgs: positionals };
}

const loadNow = () => parseLoadavg(readFileSync('/proc/loadavg', 'utf8'), 0).one;

/** The pids to stop: stress-ng, and the process group of the command running. */
const live: { stress?: number; group?: number } = {};

function stopLive(signal: NodeJS.Signals): void {
  const kill = (pid: number | undefined, sig: NodeJS.Signals) => {
    try {
      if (pid) process.kill(pid, sig);
    } catch {
      /* gone already */
    }
  };
  kill(live.group && -live.group, signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
  kill(live.stress, 'SIGTERM');
}

interface Phase {
  exitCode?: number;
  signal?: string;
  ms: number;
  samples: LoadSample[];
  log: string;
}

/** One command in its own process group, its output to `log`, the load sampled while it runs. */
async function phase(label: string, args: string[], log: string, root: string): Promise<Phase> {
  console.log(`▶ ${label}   (output: ${relative(root, log)}; load ${loadNow().toFixed(2)})`);
  const samples: LoadSample[] = [];
  const t0 = performance.now();
  const sample = () => samples.push(parseLoadavg(readFileSync('/proc/loadavg', 'utf8'), performance.now() - t0));
  sample();
  const sampler = setInterval(sample, SAMPLE_MS);
  const heartbeat = setInterval(() => console.log(`  … ${label}: ${dur(performance.now() - t0)}, load ${samples[samples.length - 1].one.toFixed(2)}`), HEARTBEAT_MS);
  // The file itself is the command's stdout and stderr, not a pipe through this process: a
  // command stopping on SIGINT must still be able to write (`npm run suite` tears its labs down,
  // saying so) after this process has gone. execa takes any descriptor; its types list 0-9 only.
  const fd = openSync(log, 'w') as 1;
  try {
    const child = execa('npm', args, { cwd: root, stdin: 'ignore', stdout: fd, stderr: fd, detached: true, reject: false });
    live.group = child.pid;
    const r = await child;
    return { exitCode: r.exitCode, signal: r.signal, ms: performance.now() - t0, samples, log };
  } finally {
    live.group = undefined;
    sample();
    clearInterval(sampler);
    clearInterval(heartbeat);
    closeSync(fd);
  }
}

function loadLine(p: Phase): string {
  const s = loadStats(p.samples);
  return s ? `load (1-min average, ${s.samples} sample${s.samples === 1 ? '' : 's'} every ${SAMPLE_MS / 1000} s): min ${s.min.toFixed(2)}, median ${s.median.toFixed(2)}, max ${s.max.toFixed(2)} (at ${dur(s.maxAtMs)}); runnable tasks peak ${s.peakRunnable}; ${cpus().length} cores` : 'load: no samples';
}

const exitText = (p: Phase) => (p.signal ? `killed by ${p.signal}` : `exit ${p.exitCode}`);

export async function noisyNeighbour(argv: string[]): Promise<void> {
  const o = options(argv);
  const root = packageRoot();
  const out = join(root, 'reports', 'noisy');
  mkdirSync(out, { recursive: true });
  const neighbour = o.cpu ? `stress-ng --cpu ${o.cpu}` : 'no stress-ng (--cpu 0)';
  console.log(`noisy neighbour: ${o.only ? `npm ${o.only === 'test' ? 'test' : 'run suite'}` : 'npm test, then npm run suite'} with ${neighbour} beside them; ${cpus().length} cores, load ${loadNow().toFixed(2)} at the start\n`);

  const onSignal = (sig: NodeJS.Signals) => {
    console.log(`\nnoisy: ${sig}: stopping stress-ng${live.stress ? ` (pid ${live.stress})` : ''}${live.group ? ` and the command running (process group ${live.group})` : ''}`);
    stopLive(sig);
  };
  const onExit = () => stopLive('SIGTERM');
  process.on('SIGINT', onSignal).on('SIGTERM', onSignal).on('exit', onExit);
  const failed: string[] = [];
  const phases: [string, Phase][] = [];
  let stressGone: string | undefined;
  const stress = o.cpu ? execa('stress-ng', ['--cpu', String(o.cpu)], { stdin: 'ignore', all: true, reject: false }) : undefined;
  try {
    if (stress) {
      if (stress.pid === undefined) throw new Error(`stress-ng did not start (${(await stress).shortMessage}); ./scripts/setup.sh installs it`);
      live.stress = stress.pid;
      void stress.then((r) => (stressGone ??= `stress-ng ended early (${r.signal ?? `exit ${r.exitCode}`}): ${(r.all ?? '').trim().split('\n').pop()}`));
      console.log(`stress-ng started (pid ${stress.pid})`);
    }

    if (o.only !== 'suite') {
      const json = join(out, 'vitest.json');
      rmSync(json, { force: true });
      const p = await phase('npm test', ['test', '--', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...o.vitestArgs], join(out, 'test.log'), root);
      phases.push(['npm test', p]);
      const text = readFileSync(p.log, 'utf8');
      console.log(`npm test: ${exitText(p)}, wall ${dur(p.ms)}; vitest's Duration: ${vitestDuration(text) ?? '(not printed)'}`);
      console.log(`  ${loadLine(p)}`);
      let rows: FileRow[] = [];
      try {
        rows = fileRows(JSON.parse(readFileSync(json, 'utf8')) as VitestReport, root);
        console.log(`\n${fileTable(rows)}\n`);
      } catch (e) {
        console.log(`  no JSON report from vitest (${(e as Error).message.split('\n')[0]}): see ${relative(root, p.log)}\n`);
      }
      if (p.exitCode !== 0 || !rows.length || rows.some((r) => !r.ok)) failed.push(`npm test (${exitText(p)}, ${rows.filter((r) => !r.ok).length} files failed)`);
    }

    if (o.only !== 'test') {
      const p = await phase('npm run suite', ['run', 'suite'], join(out, 'suite.log'), root);
      phases.push(['npm run suite', p]);
      const { summary, notPassing } = suiteSummary(readFileSync(p.log, 'utf8'));
      console.log(`npm run suite: ${exitText(p)}, wall ${dur(p.ms)}`);
      console.log(`  ${loadLine(p)}`);
      for (const l of [...notPassing, ...(summary.length ? summary : [`(no summary: see ${relative(root, p.log)})`])]) console.log(`  ${l}`);
      console.log('');
      if (p.exitCode !== 0) failed.push(`npm run suite (${exitText(p)})`);
    }
  } finally {
    // stress-ng ends here whatever happened; execa sends SIGKILL if SIGTERM has not ended it in 5 s
    if (stress?.pid !== undefined && !stressGone) {
      stressGone = 'stopped';
      stress.kill('SIGTERM');
      await stress;
      console.log(`stress-ng stopped (pid ${stress.pid})`);
    }
    live.stress = undefined;
    process.off('SIGINT', onSignal).off('SIGTERM', onSignal).off('exit', onExit);
  }
  if (stressGone && stressGone !== 'stopped') failed.push(stressGone);

  const all = phases.flatMap(([name, p]) => p.samples.map((s) => ({ name, ...s })));
  const peak = all.length ? all.reduce((a, b) => (b.one > a.one ? b : a)) : undefined;
  if (peak) console.log(`load peak: ${peak.one.toFixed(2)} (1-min average, during ${peak.name} at ${dur(peak.atMs)}); runnable tasks peak ${Math.max(...all.map((s) => s.runnable))}; ${cpus().length} cores`);
  console.log(`wall: ${phases.map(([name, p]) => `${name} ${dur(p.ms)}`).join(', ')}`);
  if (failed.length) throw new Error(`noisy: not everything passed beside ${neighbour}: ${failed.join('; ')}`);
  console.log(`noisy: everything passed beside ${neighbour}`);
}
