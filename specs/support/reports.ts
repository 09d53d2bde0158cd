// Spec helpers for the reports: a real run of the CLI into a folder of its own, and the
// published schemas the outputs are checked against (vendored under specs/fixtures/schemas,
// each named with its source in that folder's README).
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { XmlDocument, XmlValidateError, XsdValidator } from 'libxml2-wasm';
import AjvDraft04 from 'ajv-draft-04';
import addFormats from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

export const ROOT = join(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'harness', 'cli.js');
export const FIXTURE = 'specs/fixtures/reports/wrong-expectations.yaml';

export interface CliRun {
  dir: string;
  exitCode: number;
  stdout: string;
  stderr: string;
  read: (name: string) => string;
}

/** `netconform <args>` from the package root, its reports into a new temporary folder. */
export async function runCli(args: string[], env: Record<string, string> = {}, dir = mkdtempSync(join(tmpdir(), 'ncf-reports-'))): Promise<CliRun> {
  const r = await execa('node', [CLI, ...args.map((a) => a.replace('{dir}', dir))], { cwd: ROOT, env: { NO_COLOR: '1', ...env }, reject: false });
  return { dir, exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), read: (name) => readFileSync(join(dir, name), 'utf8') };
}

/** The line of the fixture that holds a marker comment ("WRONG-REACH"), 1-based. */
export function lineOf(file: string, marker: string): number {
  const i = readFileSync(join(ROOT, file), 'utf8')
    .split('\n')
    .findIndex((l) => l.includes(marker));
  if (i < 0) throw new Error(`${marker} not in ${file}`);
  return i + 1;
}

/**
 * What JUnit XML carries beyond Jenkins' JUnit schema (the xunit plugin's junit-10.xsd), and
 * why: the schema has no place for them, while the tools that read the file use them.
 */
export const JUNIT_EXTENSIONS: { pattern: RegExp; why: string }[] = [
  { pattern: /^Element 'testsuites', attribute 'skipped': The attribute 'skipped' is not allowed\./, why: 'the skip count on the root (junit-report-builder writes it; GitLab reads it)' },
  { pattern: /^Element 'testcase', attribute 'file': The attribute 'file' is not allowed\./, why: 'the scenario file of a case (GitLab, action-junit-report)' },
  { pattern: /^Element 'testcase', attribute 'line': The attribute 'line' is not allowed\./, why: 'the YAML line of a case (action-junit-report)' },
  { pattern: /^Element 'properties': This element is not expected\./, why: "a case's properties (finding, microVM kernel): Jenkins' junit plugin and pytest's xunit2 write them" },
];

export interface XsdProblem {
  message: string;
  xpath: string;
  line: number;
}

/** Problems of a JUnit document against junit-10.xsd: those the extensions explain, and the rest. */
export function junitProblems(xml: string): { unexpected: XsdProblem[]; extensions: XsdProblem[] } {
  const xsd = XmlDocument.fromString(readFileSync(join(ROOT, 'specs/fixtures/schemas/junit-10.xsd'), 'utf8'));
  const validator = XsdValidator.fromDoc(xsd);
  const doc = XmlDocument.fromString(xml);
  try {
    validator.validate(doc);
    return { unexpected: [], extensions: [] };
  } catch (e) {
    if (!(e instanceof XmlValidateError)) throw e;
    const all = e.details.map((d) => ({ message: d.message.trim(), xpath: d.xpath ?? '', line: d.line }));
    const known = (p: XsdProblem) => JUNIT_EXTENSIONS.some((x) => x.pattern.test(p.message)) && (!p.message.startsWith("Element 'properties'") || /\/testcase\[\d+\]\/properties/.test(p.xpath));
    return { unexpected: all.filter((p) => !known(p)), extensions: all.filter(known) };
  } finally {
    doc.dispose();
    validator.dispose();
    xsd.dispose();
  }
}

let sarif: ValidateFunction | undefined;

/** OASIS's SARIF 2.1.0 schema (draft-04) compiled with ajv. */
export function sarifValidator(): ValidateFunction {
  if (sarif) return sarif;
  const Ajv = AjvDraft04 as unknown as typeof import('ajv-draft-04').default;
  const ajv = new Ajv({ allErrors: true, strict: false });
  (addFormats as unknown as (a: unknown) => void)(ajv);
  sarif = ajv.compile(JSON.parse(readFileSync(join(ROOT, 'specs/fixtures/schemas/sarif-schema-2.1.0.json'), 'utf8')));
  return sarif;
}
