// reports/report.html: the run for a person. One self-contained file (inline style and a few
// lines of script, no fonts, images or anything fetched), readable with scripting off: the
// summary, then what failed with its diff and YAML location, compliance findings, the engines'
// disagreements, every scenario's truth table (rows from, columns to, expected against actual,
// colour-coded), and the timings. Failing scenarios come first; filters and anchors to jump.
import type { CaseResult } from './results.js';
import { formatMs, rulePathOf, shownOf, type CaseItem, type Probe, type ReportView, type RunGroup, type RunView, type ScenarioView, type Shown, type TruthTable } from './view.js';
import { matrixCells } from './kernel-matrix.js';

const MARK: Record<Shown, string> = { passed: '✓', failed: '✗', error: '!', skipped: '–', finding: '⚑' };
const WORD: Record<Shown, string> = { passed: 'passed', failed: 'failed', error: 'error', skipped: 'skipped', finding: 'finding' };

export function esc(s: string | number | undefined): string {
  return String(s ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function badge(s: Shown, text = WORD[s]): string {
  return `<span class="badge ${s}">${MARK[s]} ${esc(text)}</span>`;
}

function loc(c: CaseResult): string {
  return `<code class="loc">${esc(c.loc.file)}:${c.loc.line}${c.loc.col ? `:${c.loc.col}` : ''}</code>`;
}

/** A unified diff with its added and removed lines coloured. */
function diffBlock(diff: string): string {
  const lines = diff.split('\n').map((l) => {
    const cls = l.startsWith('+++') || l.startsWith('---') ? 'dh' : l.startsWith('@@') ? 'dh' : l.startsWith('+') ? 'da' : l.startsWith('-') ? 'dd' : '';
    return cls ? `<span class="${cls}">${esc(l)}</span>` : esc(l);
  });
  return `<pre class="diff">${lines.join('\n')}</pre>`;
}

function rulePathBlock(c: CaseResult, open: boolean): string {
  const p = rulePathOf(c);
  return p ? `<details class="rulepath"${open ? ' open' : ''}><summary>rule path</summary><pre>${esc(p)}</pre></details>` : '';
}

function filterAttrs(status: Shown, text: string): string {
  return ` data-filter data-status="${status}" data-text="${esc(text.toLowerCase())}"`;
}

function summary(v: ReportView): string {
  const c = v.counts;
  const bad = c.failed + c.error;
  const runs = new Set([...v.failures, ...v.disagreements].map((x) => x.anchor)).size;
  const verdict = bad
    ? `<p class="banner failed">${MARK.failed} ${bad} case${bad === 1 ? '' : 's'} did not pass, in ${runs} scenario run${runs === 1 ? '' : 's'}</p>`
    : `<p class="banner passed">${MARK.passed} every case passed${c.findings ? `, with ${c.findings} compliance finding${c.findings === 1 ? '' : 's'}` : ''}${v.flaky.length ? `; ${v.flaky.length} flaky over ${v.rounds} rounds` : ''}</p>`;
  const card = (n: number, label: string, cls: string, href?: string) =>
    `<a class="card ${n ? cls : 'zero'}"${href ? ` href="#${href}"` : ''}><b>${n}</b><span>${label}</span></a>`;
  return `<header class="top">
<h1>${esc(v.title)}</h1>
<p class="sub">started ${esc(v.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))} · took ${esc(formatMs(v.wallMs))}${v.shards ? ` · ${esc(v.shards)}` : ''}</p>
${verdict}
<nav class="cards">
${card(c.passed, 'passed', 'passed', 'scenarios')}${card(c.failed, 'failed', 'failed', 'failures')}${card(c.error, 'errors', 'error', 'failures')}${card(c.findings, 'findings', 'finding', 'findings')}${card(c.skipped, 'skipped', 'skipped', 'scenarios')}${card(v.scenarioRuns, 'scenario runs', 'plain', 'scenarios')}${card(v.probes, 'probes', 'plain')}
</nav>
<table class="env">
<tr><th>targets</th><td>${v.targets.map((t) => `<code>${esc(t)}</code>`).join(' ')}</td></tr>
<tr><th>kernel</th><td>${v.kernels.map(esc).join(', ') || '–'}</td></tr>
<tr><th>iptables</th><td>${v.iptables.map(esc).join(', ') || '–'}</td></tr>
<tr><th>duration</th><td>${esc(formatMs(v.wallMs))} wall</td></tr>
</table>
</header>`;
}

function toolbar(v: ReportView): string {
  const opt = (value: string, label: string, checked = false) =>
    `<label><input type="radio" name="show" value="${value}"${checked ? ' checked' : ''}> ${label}</label>`;
  const links = [
    v.failures.length ? `<a href="#failures">failures</a>` : '',
    v.findings.length ? `<a href="#findings">findings</a>` : '',
    v.disagreements.length ? `<a href="#disagreements">disagreements</a>` : '',
    `<a href="#scenarios">scenarios</a>`,
    `<a href="#timings">timings</a>`,
  ].filter(Boolean);
  return `<nav class="toolbar" aria-label="filters">
<span class="show">show ${opt('all', 'all', true)} ${opt('attention', 'not passing')} ${opt('finding', 'findings')} ${opt('passed', 'passed')} ${opt('skipped', 'skipped')}</span>
<input id="q" type="search" placeholder="filter: scenario, ID, target, text…" aria-label="filter by text">
<span class="jump">${links.join(' · ')}</span>
</nav>`;
}

function caseArticle(x: CaseItem, scenarioLink = true): string {
  const c = x.c;
  const s = shownOf(c);
  return `<article class="case ${s}"${filterAttrs(s, `${x.scenarioId} ${x.target} ${c.name} ${c.message ?? ''}`)}>
<h3>${badge(s)} ${esc(c.name)}</h3>
<p class="where">${scenarioLink ? `<a href="#${x.anchor}">${esc(x.scenarioId)}</a> on <code>${esc(x.target)}</code> · ` : ''}${loc(c)}</p>
${c.message ? `<pre class="msg">${esc(c.message)}</pre>` : ''}${c.diff ? diffBlock(c.diff) : ''}${rulePathBlock(c, true)}
</article>`;
}

function failures(v: ReportView): string {
  if (!v.failures.length) return '';
  return `<section id="failures"><h2>Failures <small>${v.failures.length}</small></h2>
${v.failures.map((x) => caseArticle(x)).join('\n')}
</section>`;
}

function findings(v: ReportView): string {
  if (!v.findings.length) return '';
  const rows = v.findings.map(
    (x) => `<tr${filterAttrs('finding', `${x.scenarioId} ${x.target} ${x.c.id} ${x.c.finding}`)}><td>${badge('finding', x.c.id)}</td><td>${esc(x.c.finding)}</td><td><a href="#${x.anchor}">${esc(x.scenarioId)}</a></td><td><code>${esc(x.target)}</code></td><td>${loc(x.c)}</td></tr>`,
  );
  return `<section id="findings"><h2>Compliance findings <small>${v.findings.length}</small></h2>
<p class="note">Cases that passed: the engine behaves as documented, and the scenario marks that behaviour an exposure (<code>finding:</code>).</p>
<table class="list"><thead><tr><th>ID</th><th>finding</th><th>scenario</th><th>target</th><th>YAML</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function flaky(v: ReportView): string {
  if (!v.flaky.length) return '';
  const rows = v.flaky.map(
    (x) => `<tr${filterAttrs(shownOf(x.c), `${x.scenarioId} ${x.target} ${x.c.name} flaky`)}><td>${esc(x.c.name)}</td><td>${esc(x.c.flaky)}</td><td><a href="#${x.anchor}">${esc(x.scenarioId)}</a></td><td><code>${esc(x.target)}</code></td><td>${loc(x.c)}</td></tr>`,
  );
  return `<section id="flaky"><h2>Flaky cases <small>${v.flaky.length}</small></h2>
<p class="note">Cases whose verdict changed between the ${v.rounds ?? 'repeated'} rounds (<code>--repeat</code>); each is shown with its worst round. A flaky case is a bug to find, not a retry that passed.</p>
<table class="list"><thead><tr><th>case</th><th>rounds</th><th>scenario</th><th>target</th><th>YAML</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

function disagreements(v: ReportView): string {
  if (!v.disagreements.length) return '';
  return `<section id="disagreements"><h2>Engine disagreements <small>${v.disagreements.length}</small></h2>
<p class="note">The same scenario on two engines, compared: packet verdicts, rule sets chain by chain (engine-specific names made symbolic), addresses and ports.</p>
${v.disagreements.map((x) => caseArticle(x)).join('\n')}
</section>`;
}

function probeHtml(p: Probe): string {
  const d = p.detail;
  const verdict = p.shown === 'failed' || p.shown === 'error' ? `${esc(d.actual)} <span class="exp">expected ${esc(d.expected)}</span>` : esc(d.actual);
  const seenBad = d.expectedSeen !== undefined && (d.seen ?? 'none') !== d.expectedSeen;
  const seen =
    d.expectedSeen !== undefined
      ? `<span class="seen${seenBad ? ' bad' : ''}">seen ${esc(d.seen ?? 'none')}${seenBad ? ` <span class="exp">expected ${esc(d.expectedSeen)}</span>` : ''}</span>`
      : d.seen
        ? `<span class="seen">seen ${esc(d.seen)}</span>`
        : '';
  const tip = `${p.c.name} — ${p.c.transcript ?? ''} (${p.c.loc.file}:${p.c.loc.line})${p.c.finding ? ` — finding: ${p.c.finding}` : ''}`;
  // the YAML line tells probes of one pair apart (phases of a scenario come later in its file)
  return `<div class="probe ${p.shown}" title="${esc(tip)}"><span class="mark">${MARK[p.shown]}</span> <span class="proto">${esc(p.label)}</span> <span class="verdict">${verdict}</span> <span class="ln">:${p.c.loc.line}</span>${seen}${rulePathBlock(p.c, false)}</div>`;
}

function truthTable(t: TruthTable): string {
  const head = t.tos.map((to) => `<th scope="col">${esc(to)}</th>`).join('');
  const rows = t.froms.map((from) => {
    const cells = t.tos.map((to) => {
      const probes = t.cells.get(from)?.get(to);
      if (!probes) return '<td class="none"></td>';
      const cls = probes.map((p) => p.shown);
      const w = (['error', 'failed', 'finding', 'skipped', 'passed'] as Shown[]).find((s) => cls.includes(s))!;
      return `<td class="cell ${w}" data-from="${esc(from)}" data-to="${esc(to)}">${probes.map(probeHtml).join('')}</td>`;
    });
    return `<tr><th scope="row">${esc(from)}</th>${cells.join('')}</tr>`;
  });
  return `<div class="scroll"><table class="truth"><thead><tr><th class="corner">from ↓ to →</th>${head}</tr></thead><tbody>
${rows.join('\n')}
</tbody></table></div>`;
}

function caseLine(c: CaseResult): string {
  const s = shownOf(c);
  const bad = c.status === 'failed' || c.status === 'error';
  const more = bad
    ? `${c.message ? `<pre class="msg">${esc(c.message)}</pre>` : ''}${c.diff ? diffBlock(c.diff) : ''}${rulePathBlock(c, true)}`
    : `${c.status === 'skipped' && c.message ? `<span class="why">${esc(c.message)}</span>` : ''}${c.finding ? `<span class="why">finding: ${esc(c.finding)}</span>` : ''}`;
  const unstable = c.flaky ? `<span class="why">flaky: ${esc(c.flaky)}</span>` : '';
  return `<li class="${s}"><span class="mark">${MARK[s]}</span> ${esc(c.name)} ${loc(c)}${more}${unstable}</li>`;
}

/** Cases beside the truth table: what did not pass in full, what passed folded away. */
function otherCases(cases: CaseResult[]): string {
  if (!cases.length) return '';
  const open = cases.filter((c) => c.status !== 'passed' || c.finding);
  const folded = cases.filter((c) => !(c.status !== 'passed' || c.finding));
  const list = (cs: CaseResult[]) => `<ul class="cases">${cs.map(caseLine).join('\n')}</ul>`;
  return `${open.length ? list(open) : ''}${folded.length ? `<details class="passed-cases"><summary>${folded.length} ${open.length ? 'more ' : ''}check${folded.length === 1 ? '' : 's'} passed</summary>${list(folded)}</details>` : ''}`;
}

function runHeading(run: RunView): string {
  const r = run.r;
  const n = run.counts;
  const parts = [`${n.passed} passed`, n.failed ? `${n.failed} failed` : '', n.error ? `${n.error} errors` : '', n.findings ? `${n.findings} findings` : '', n.skipped ? `${n.skipped} skipped` : ''].filter(Boolean);
  return `<span class="target" id="${run.anchor}">${badge(run.shown, run.target)} <span class="counts">${parts.join(', ')} · ${r.probes} probes · ${esc(formatMs(r.timeMs))}</span></span>`;
}

/** One block for runs that came out the same (the targets agree), one per run that differs. */
function groupBlock(g: RunGroup): string {
  const bad = g.shown === 'failed' || g.shown === 'error';
  const stories = bad
    ? g.runs
        .filter((run) => !run.comparison && (run.r.transcript.length || run.r.ruleDump))
        .map((run) => `<details class="story"><summary>probe transcript and rules on ${esc(run.target)}</summary><pre>${esc(run.r.transcript.join('\n'))}</pre>${run.r.ruleDump ? `<pre>${esc(run.r.ruleDump)}</pre>` : ''}</details>`)
        .join('')
    : '';
  const same = g.runs.length > 1 ? `<span class="same">the same on ${g.runs.length} targets</span>` : '';
  return `<div class="run ${g.shown}">
<h4>${g.runs.map(runHeading).join('<br>')}${same}</h4>
${g.table ? truthTable(g.table) : ''}${otherCases(g.others)}${stories}
</div>`;
}

function scenarioIndex(v: ReportView): string {
  const rows = v.scenarios.map((s) => {
    const chips = s.runs.map((run) => `<a class="chip ${run.shown}" href="#${run.anchor}" title="${esc(WORD[run.shown])}">${MARK[run.shown]} ${esc(run.target)}</a>`).join(' ');
    const ms = s.runs.reduce((a, run) => a + run.r.timeMs, 0);
    return `<tr${filterAttrs(s.shown, `${s.id} ${s.title} ${s.covers.join(' ')} ${s.runs.map((x) => x.target).join(' ')}`)}><td>${badge(s.shown)}</td><td><a href="#${s.anchor}">${esc(s.id)}</a><div class="title">${esc(s.title)}</div></td><td>${s.covers.map((c) => `<code>${esc(c)}</code>`).join(' ')}</td><td>${chips}</td><td class="num">${esc(formatMs(ms))}</td></tr>`;
  });
  return `<table class="list index"><thead><tr><th>status</th><th>scenario</th><th>covers</th><th>targets</th><th class="num">time</th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table>`;
}

function scenarioSection(s: ScenarioView): string {
  return `<section class="scenario ${s.shown}" id="${s.anchor}"${filterAttrs(s.shown, `${s.id} ${s.title} ${s.covers.join(' ')} ${s.runs.map((x) => x.target).join(' ')}`)}>
<h3>${badge(s.shown)} ${esc(s.id)} <span class="title">${esc(s.title)}</span></h3>
<p class="where"><code>${esc(s.file)}</code> · covers ${s.covers.map((c) => `<code>${esc(c)}</code>`).join(' ')}</p>
${s.groups.map(groupBlock).join('\n')}
</section>`;
}

function timings(v: ReportView): string {
  const max = v.timings.reduce((m, t) => Math.max(m, t.r.timeMs), 1);
  const shown = new Map(v.scenarios.map((s) => [s.id, s.shown]));
  const rows = v.timings.map((t) => {
    const p = t.r.phaseMs;
    const seg = (ms: number, cls: string, what: string) => (ms > 0 ? `<span class="seg ${cls}" style="width:${((100 * ms) / max).toFixed(2)}%" title="${what} ${esc(formatMs(ms))}"></span>` : '');
    return `<tr${filterAttrs(shown.get(t.scenarioId) ?? 'passed', `${t.scenarioId} ${t.target}`)}><td><a href="#${t.anchor}">${esc(t.scenarioId)}</a></td><td><code>${esc(t.target)}</code></td><td class="num">${esc(formatMs(t.r.timeMs))}</td><td class="num">${esc(formatMs(p.build))}</td><td class="num">${esc(formatMs(p.probe))}</td><td class="num">${esc(formatMs(p.teardown))}</td><td class="num">${p.engine !== undefined ? esc(formatMs(p.engine)) : '–'}</td><td class="bar">${seg(p.build, 'build', 'build')}${seg(p.probe, 'probe', 'probes')}${seg(p.teardown, 'teardown', 'teardown')}</td></tr>`;
  });
  return `<section id="timings"><h2>Timings</h2>
<p class="note">Scenario runs, slowest first. Build: lab, engine and probe agents; probes: traffic and assertions; engine: inside the engine's own calls, whenever they were made. <span class="seg build key"></span> build <span class="seg probe key"></span> probes <span class="seg teardown key"></span> teardown</p>
<table class="list timings"><thead><tr><th>scenario</th><th>target</th><th class="num">total</th><th class="num">build</th><th class="num">probes</th><th class="num">teardown</th><th class="num">engine</th><th></th></tr></thead><tbody>
${rows.join('\n')}
</tbody></table></section>`;
}

const STYLE = `
:root{--fg:#1f2328;--muted:#59636e;--bg:#fff;--panel:#f6f8fa;--line:#d1d9e0;
--pass:#1a7f37;--pass-bg:#dafbe1;--fail:#cf222e;--fail-bg:#ffebe9;--err:#8250df;--err-bg:#fbefff;
--find:#9a6700;--find-bg:#fff8c5;--skip:#59636e;--skip-bg:#eff2f5;--link:#0969da}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--panel:#151b23;--line:#3d444d;
--pass:#3fb950;--pass-bg:#12261e;--fail:#ff7b72;--fail-bg:#2d1214;--err:#d2a8ff;--err-bg:#231a33;
--find:#e3b341;--find-bg:#2b230d;--skip:#9198a1;--skip-bg:#1f242c;--link:#4493f8}}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link);text-decoration:none}a:hover{text-decoration:underline}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
pre{background:var(--panel);border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow:auto;margin:6px 0;white-space:pre-wrap;word-break:break-word}
header.top,main{max-width:1400px;margin:0 auto;padding:0 20px}
h1{font-size:24px;margin:18px 0 2px}h2{font-size:19px;margin:28px 0 10px;padding-bottom:4px;border-bottom:1px solid var(--line)}
h2 small{color:var(--muted);font-weight:normal}h3{font-size:15px;margin:6px 0}h4{font-size:14px;margin:10px 0 6px}
.sub,.note,.where,.title,.counts,.why{color:var(--muted)}.note{margin:4px 0 10px}
.banner{font-size:17px;font-weight:600;padding:10px 14px;border-radius:8px;margin:12px 0}
.banner.failed{background:var(--fail-bg);color:var(--fail)}.banner.passed{background:var(--pass-bg);color:var(--pass)}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}
.card{display:flex;flex-direction:column;min-width:110px;padding:8px 14px;border:1px solid var(--line);border-radius:8px;color:var(--fg)}
.card b{font-size:22px}.card span{color:var(--muted)}.card.zero{opacity:.55}
.card.passed b{color:var(--pass)}.card.failed{border-color:var(--fail);background:var(--fail-bg)}.card.failed b{color:var(--fail)}
.card.error{border-color:var(--err);background:var(--err-bg)}.card.error b{color:var(--err)}
.card.finding{border-color:var(--find);background:var(--find-bg)}.card.finding b{color:var(--find)}
table.env{border-collapse:collapse;margin:6px 0 4px}table.env th{text-align:left;color:var(--muted);font-weight:normal;padding:1px 14px 1px 0}
.toolbar{position:sticky;top:0;z-index:5;display:flex;flex-wrap:wrap;gap:8px 18px;align-items:center;padding:8px 20px;background:var(--bg);border-bottom:1px solid var(--line);margin-top:10px}
.toolbar label{margin-right:6px;white-space:nowrap}.toolbar input[type=search]{flex:1;min-width:220px;max-width:420px;padding:5px 8px;border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
.badge{display:inline-block;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;white-space:nowrap;vertical-align:1px}
.badge.passed,.chip.passed{background:var(--pass-bg);color:var(--pass)}.badge.failed,.chip.failed{background:var(--fail-bg);color:var(--fail)}
.matrix td.passed{background:var(--pass-bg);color:var(--pass)}.matrix td.failed{background:var(--fail-bg);color:var(--fail)}.matrix td.error{background:var(--err-bg);color:var(--err)}.matrix td.finding{background:var(--find-bg);color:var(--find)}.matrix td.skipped{background:var(--skip-bg);color:var(--skip)}
.badge.error,.chip.error{background:var(--err-bg);color:var(--err)}.badge.finding,.chip.finding{background:var(--find-bg);color:var(--find)}
.badge.skipped,.chip.skipped{background:var(--skip-bg);color:var(--skip)}
.chip{display:inline-block;padding:0 6px;border-radius:4px;font-size:12px;margin:1px 0}
article.case{border:1px solid var(--line);border-left:4px solid var(--fail);border-radius:6px;padding:8px 12px;margin:10px 0}
article.case.error{border-left-color:var(--err)}
.diff .da{color:var(--pass);background:var(--pass-bg)}.diff .dd{color:var(--fail);background:var(--fail-bg)}.diff .dh{color:var(--muted)}
table.list{border-collapse:collapse;width:100%}table.list th,table.list td{text-align:left;padding:5px 8px;border-bottom:1px solid var(--line);vertical-align:top}
table.list th{color:var(--muted);font-weight:600;font-size:12.5px}table.list td>code:only-child{white-space:nowrap}.num{text-align:right!important;white-space:nowrap}
section.scenario{border:1px solid var(--line);border-radius:8px;padding:6px 14px 10px;margin:14px 0}
section.scenario.failed,section.scenario.error{border-color:var(--fail)}
.run{margin:8px 0 4px;padding-top:4px;border-top:1px dashed var(--line)}.run:first-of-type{border-top:none}
.scroll{overflow-x:auto}
table.truth{border-collapse:separate;border-spacing:3px;margin:4px 0}
table.truth th{font-weight:600;font-size:12.5px;padding:4px 8px;background:var(--panel);border-radius:4px;white-space:nowrap}
table.truth th.corner{color:var(--muted);font-weight:normal}
table.truth td{vertical-align:top;padding:4px 6px;border-radius:5px;min-width:120px}
td.none{background:transparent}
td.cell.passed{background:var(--pass-bg)}td.cell.failed{background:var(--fail-bg);outline:2px solid var(--fail)}
td.cell.error{background:var(--err-bg);outline:2px solid var(--err)}td.cell.finding{background:var(--find-bg)}td.cell.skipped{background:var(--skip-bg)}
.probe{white-space:nowrap;font-size:12.5px}.probe .mark{font-weight:700}
.probe.passed .mark{color:var(--pass)}.probe.failed .mark,.probe.failed .verdict{color:var(--fail);font-weight:600}
.probe.error .mark,.probe.error .verdict{color:var(--err);font-weight:600}.probe.finding .mark{color:var(--find)}.probe.skipped{color:var(--skip)}
.probe .proto{font-family:ui-monospace,Menlo,Consolas,monospace}.probe .exp{color:var(--muted);font-weight:normal}
.probe .ln{color:var(--muted);font-size:11px}.probe .seen{display:block;color:var(--muted);padding-left:16px}.probe .seen.bad{color:var(--fail)}
details.rulepath summary,details.story summary{cursor:pointer;color:var(--link);font-size:12.5px}
ul.cases{list-style:none;padding:0;margin:6px 0}ul.cases li{padding:2px 0}ul.cases .mark{display:inline-block;width:16px;font-weight:700}
ul.cases li.passed .mark{color:var(--pass)}ul.cases li.failed .mark{color:var(--fail)}ul.cases li.error .mark{color:var(--err)}
ul.cases li.finding .mark{color:var(--find)}ul.cases li.skipped{color:var(--skip)}
ul.cases .loc{color:var(--muted);font-size:11.5px;margin-left:6px}ul.cases .why{display:block;padding-left:16px}
td.bar{width:35%;white-space:nowrap}.seg{display:inline-block;height:10px;vertical-align:middle}
.seg.build{background:#54aeff}.seg.probe{background:#4ac26b}.seg.teardown{background:#d4a72c}.seg.key{width:12px}
.legend{color:var(--muted);font-size:12.5px}.same{display:block;color:var(--muted);font-weight:normal;font-size:12.5px;margin-top:2px}
details.passed-cases summary{cursor:pointer;color:var(--muted);font-size:12.5px}h4 .target{line-height:1.9}
footer{max-width:1400px;margin:30px auto;padding:0 20px 30px;color:var(--muted);font-size:12.5px}
[hidden]{display:none!important}
`;

// Filters: a radio (all / not passing / findings / passed / skipped) and a text box; every
// element marked data-filter is shown or hidden. Without scripting everything stays visible.
const SCRIPT = `
(function(){
  var q=document.getElementById('q');
  function apply(){
    var mode=(document.querySelector('input[name=show]:checked')||{}).value||'all';
    var text=(q.value||'').toLowerCase().trim();
    var items=document.querySelectorAll('[data-filter]');
    for(var i=0;i<items.length;i++){
      var el=items[i],st=el.getAttribute('data-status');
      var okMode=mode==='all'||(mode==='attention'?(st==='failed'||st==='error'):st===mode);
      var okText=!text||el.getAttribute('data-text').indexOf(text)>=0;
      el.hidden=!(okMode&&okText);
    }
  }
  document.addEventListener('change',function(e){if(e.target&&e.target.name==='show')apply();});
  q.addEventListener('input',apply);
})();
`;

/** Scenario × kernel, when the run went over several guest kernels. */
function kernelMatrix(v: ReportView): string {
  if (!v.kernelMatrix) return '';
  const [head, ...rows] = matrixCells(v.kernelMatrix, MARK);
  const shown = v.kernelMatrix.rows.map((r) => v.kernelMatrix!.kernels.map((k) => r.cells.get(k)?.shown ?? 'skipped'));
  return `<section id="kernel-matrix"><h2>Kernel matrix <small>${v.kernelMatrix.kernels.length} kernels</small></h2>
<table class="matrix"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${rows
  .map((r, i) => {
    const lead = r.length - v.kernelMatrix!.kernels.length;
    return `<tr>${r.map((c, j) => (j < lead ? `<td>${esc(c)}</td>` : `<td class="${shown[i][j - lead]}">${esc(c)}</td>`)).join('')}</tr>`;
  })
  .join('\n')}
</tbody></table></section>`;
}

export function renderHtml(v: ReportView): string {
  const c = v.counts;
  const title = `${v.title}: ${c.failed + c.error ? `${c.failed + c.error} not passing` : 'all passed'}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${STYLE}</style>
</head>
<body>
${summary(v)}
${toolbar(v)}
<main>
${kernelMatrix(v)}
${failures(v)}
${findings(v)}
${flaky(v)}
${disagreements(v)}
<section id="scenarios"><h2>Scenarios <small>${v.scenarios.length}</small></h2>
<p class="legend">Truth tables: rows are sources, columns destinations; each cell holds the probes of that pair: ${MARK.passed} as expected, ${MARK.failed} not as expected (with what was expected), ${MARK.finding} as expected and marked a compliance finding, ${MARK.skipped} skipped; <i>seen</i> is the source address the listener saw. Hover a probe for its case, transcript and YAML line.</p>
${scenarioIndex(v)}
${v.scenarios.map(scenarioSection).join('\n')}
</section>
${timings(v)}
</main>
<footer>netconform · generated ${esc(v.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))} · one self-contained file: no network access needed to read it · JUnit, SARIF and the run record (run.json) are beside it</footer>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
