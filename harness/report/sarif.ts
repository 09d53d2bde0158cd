// SARIF 2.1.0 (`--sarif PATH`) for security tooling such as GitHub code scanning: every failed
// case is a result of level error, every compliance finding one of level warning; rule IDs are
// the catalogue's (a comparison of engines is rule DIFF), with the catalogue's text; each
// result points at the scenario file and the line of its expectation.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { CATALOGUE } from '../catalogue.js';
import { packageRoot } from '../paths.js';
import type { CaseResult, ScenarioResult } from './results.js';
import type { RunRecord } from './record.js';
import { portableResults } from './record.js';
import { isComparison } from './timings.js';

export const SARIF_SCHEMA_URI = 'https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json';
const DIFF_RULE = { id: 'DIFF', text: 'two engines running the same scenario agree: packet verdicts, rule sets, addresses and ports' };
/** Longest message text kept (a rule-set diff can be long; the HTML report has all of it). */
const MAX_MESSAGE = 8000;

function version(): string {
  try {
    return (JSON.parse(readFileSync(`${packageRoot()}/package.json`, 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
}

function ruleOf(id: string): { id: string; text: string } {
  return id === DIFF_RULE.id ? DIFF_RULE : { id, text: CATALOGUE[id] ?? id };
}

function messageOf(r: ScenarioResult, c: CaseResult): string {
  const advisory = c.advisories ? ` [${c.advisories.join(', ')}]` : '';
  const head = c.status === 'passed' ? `${c.finding} (${c.name}) on ${r.engine}${advisory}` : `${c.name} failed on ${r.engine}${advisory}`;
  const text = [head, c.status === 'passed' ? '' : (c.message ?? ''), c.diff ?? ''].filter(Boolean).join('\n\n');
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}\n… (cut; report.html has all of it)` : text;
}

export function buildSarif(record: RunRecord): object {
  const results = portableResults(record.results);
  const picked = results.flatMap((r) =>
    r.cases
      .filter((c) => c.status === 'failed' || c.status === 'error' || (c.status === 'passed' && c.finding))
      .map((c) => ({ r, c })),
  );
  // every catalogue rule, so a viewer can show the text of any ID, and DIFF when engines were compared
  const ids = [...Object.keys(CATALOGUE), ...(results.some(isComparison) ? [DIFF_RULE.id] : [])];
  const extra = [...new Set(picked.map((p) => p.c.id))].filter((id) => !ids.includes(id));
  const rules = [...ids, ...extra].map(ruleOf);
  const index = new Map(rules.map((rule, i) => [rule.id, i]));
  return {
    $schema: SARIF_SCHEMA_URI,
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'netconform',
            version: version(),
            rules: rules.map((rule) => ({
              id: rule.id,
              name: rule.id.replace(/-/g, ''),
              shortDescription: { text: rule.text },
              fullDescription: { text: `${rule.id}: ${rule.text}` },
              help: { text: `Catalogue behaviour ${rule.id}: ${rule.text}. The scenario file states it with real packets and rule sets; see the README's catalogue.` },
              defaultConfiguration: { level: 'error' },
            })),
          },
        },
        invocations: [{ executionSuccessful: true, startTimeUtc: record.startedAt, properties: { targets: record.targets, ...(record.shard ? { shard: `${record.shard.index}/${record.shard.count}` } : {}) } }],
        results: picked.map(({ r, c }) => {
          const finding = c.status === 'passed';
          return {
            ruleId: c.id,
            ruleIndex: index.get(c.id),
            level: finding ? 'warning' : 'error',
            kind: 'fail',
            message: { text: messageOf(r, c) },
            locations: [
              {
                physicalLocation: {
                  artifactLocation: { uri: c.loc.file, uriBaseId: '%SRCROOT%' },
                  region: { startLine: c.loc.line, ...(c.loc.col ? { startColumn: c.loc.col } : {}) },
                },
              },
            ],
            // one alert per case and target across runs, whatever the message says this time
            partialFingerprints: { netconformCase: createHash('sha256').update(`${r.scenarioId}\0${r.engine}\0${c.name}\0${finding ? 'finding' : 'failure'}`).digest('hex').slice(0, 32) },
            properties: { scenario: r.scenarioId, target: r.engine, case: c.name, status: finding ? 'finding' : c.status, ...(c.advisories ? { advisories: c.advisories, tags: ['security', ...c.advisories] } : {}) },
          };
        }),
      },
    ],
  };
}

export function writeSarif(path: string, record: RunRecord): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, JSON.stringify(buildSarif(record), null, 1) + '\n');
}
