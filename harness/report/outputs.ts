// The set of files a run (or a merge of runs) leaves for people and pipelines, all rendered
// from one run record: JUnit, the HTML report, the same in Markdown (and in GitHub's step
// summary when $GITHUB_STEP_SUMMARY is set), SARIF when asked, the record itself, timings.
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeJunit } from './junit.js';
import { renderHtml } from './html.js';
import { appendStepSummary, renderMarkdown } from './markdown.js';
import { portableResults, writeRecord, type RunRecord } from './record.js';
import { writeSarif } from './sarif.js';
import { readTimings, recordTimings, writeTimings } from './timings.js';
import { buildView } from './view.js';

export interface OutputPaths {
  junit: string;
  /** absent: not written */
  html?: string;
  markdown?: string;
  record?: string;
  sarif?: string;
  /** update this timings table with the record's durations */
  timings?: string;
}

/**
 * The default paths: everything beside the JUnit file. A JUnit sent to a device (`--junit
 * /dev/null`) asks for no files: then only what is named explicitly is written.
 */
export function besideJunit(junit: string, over: Partial<OutputPaths> = {}): OutputPaths {
  const dir = dirname(junit);
  const discard = isDevice(junit);
  const beside = (name: string) => (discard ? undefined : join(dir, name));
  return {
    junit,
    html: over.html ?? beside('report.html'),
    markdown: over.markdown ?? beside('report.md'),
    record: over.record ?? beside('run.json'),
    ...(over.sarif ? { sarif: over.sarif } : {}),
    ...(over.timings ? { timings: over.timings } : {}),
  };
}

/** A path that exists and is not a file (/dev/null): output sent there asks for no files beside it. */
export function isDevice(path: string): boolean {
  return existsSync(path) && !statSync(path).isFile();
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

/** Writes every output; returns "what: path" lines for the terminal. */
export function writeOutputs(run: RunRecord, paths: OutputPaths, env: NodeJS.ProcessEnv = process.env): string[] {
  // every report names files as the record does: relative to the checkout
  const record = { ...run, results: portableResults(run.results) };
  const done: string[] = [];
  if (paths.record) {
    writeRecord(paths.record, record);
    done.push(`run record: ${paths.record}`);
  }
  writeJunit(paths.junit, record.results);
  done.push(`JUnit: ${paths.junit}`);
  const view = buildView(record);
  if (paths.html) {
    write(paths.html, renderHtml(view));
    done.push(`report: ${paths.html}`);
  }
  if (paths.markdown) {
    write(paths.markdown, renderMarkdown(view));
    done.push(`Markdown: ${paths.markdown}`);
  }
  if (env.GITHUB_STEP_SUMMARY) {
    const n = appendStepSummary(env.GITHUB_STEP_SUMMARY, view);
    done.push(`step summary: ${(n / 1024).toFixed(0)} KiB appended to $GITHUB_STEP_SUMMARY`);
  }
  if (paths.sarif) {
    writeSarif(paths.sarif, record);
    done.push(`SARIF: ${paths.sarif}`);
  }
  if (paths.timings) {
    writeTimings(paths.timings, recordTimings(readTimings(paths.timings), record.results));
    done.push(`timings: ${paths.timings}`);
  }
  return done;
}
