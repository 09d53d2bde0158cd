// What `doctor` says about kernels: the features of the host kernel and of the configured
// guest kernel (found by booting it once), and where each scenario will run and why.
import type { Capability } from '../lab/capabilities.js';
import { GUEST_MODULES } from '../lab/capabilities.js';
import type { Scenario } from '../scenario/types.js';
import { bootGuest } from './guest.js';
import { GET_KERNEL_HINT, type KernelChoice } from './kernel.js';
import { placeScenarios } from './plan.js';

export interface KernelColumn {
  title: string;
  caps?: Capability[];
  /** why there are no capabilities for this kernel */
  note?: string;
}

/** Boot the guest once and ask its kernel what it can do. */
export async function probeGuest(choice: KernelChoice, onLine?: (l: string) => void): Promise<KernelColumn> {
  const k = choice.kernel!;
  const g = await bootGuest({ kind: 'capabilities', color: false }, { kernel: k, modules: GUEST_MODULES, timeoutMs: 180_000, bootTimeoutMs: 60_000, onLine });
  const title = `guest ${k.release}`;
  if (g.outcome !== 'ok' || !g.capabilities) return { title, note: `probe boot failed (${g.outcome}): ${g.detail}` };
  const secs = (ms?: number) => (ms === undefined ? '?' : (ms / 1000).toFixed(1));
  return { title: `${title} (${g.accel}, boot ${secs(g.timing.bootMs)} s, harness ready ${secs(g.timing.harnessReadyMs)} s)`, caps: g.capabilities.capabilities };
}

export function featureTable(columns: KernelColumn[], mark: (ok: boolean | undefined) => string): string[] {
  const features = [...new Set(columns.flatMap((c) => (c.caps ?? []).map((x) => x.feature)))].sort();
  const lines = columns.map((c, i) => `  [${i + 1}] ${c.title}${c.note ? `: ${c.note}` : ''}`);
  lines.push(`  ${'feature'.padEnd(24)} ${columns.map((_, i) => `[${i + 1}]`).join('  ')}`);
  for (const f of features) {
    const cells = columns.map((c) => mark(c.caps?.find((x) => x.feature === f)?.ok) + '  ');
    const why = columns
      .map((c, i) => [i, c.caps?.find((x) => x.feature === f)] as const)
      .filter(([, x]) => x && !x.ok)
      .map(([i, x]) => `[${i + 1}] ${x!.detail}`);
    lines.push(`  ${f.padEnd(24)} ${cells.join('  ')}${why.join('; ')}`);
  }
  return lines;
}

/** Where each scenario runs, and why; a guest that lacks the feature too makes it a skip. */
export function placementLines(scenarios: Scenario[], host: Capability[], choice: KernelChoice, guest?: Capability[]): string[] {
  const hostMissing = new Map(host.filter((c) => !c.ok).map((c) => [c.feature, c.detail]));
  const plan = placeScenarios(scenarios, hostMissing, { vmAvailable: Boolean(choice.kernel), noVmReason: choice.error ?? `no guest kernel (${choice.source}): ${GET_KERNEL_HINT}` });
  return plan.map((p) => {
    const needs = p.scenario.requires.length ? `requires ${p.scenario.requires.join(', ')}` : 'no requirements';
    let where: string = p.where;
    let reason = p.reason;
    if (p.where === 'vm' && guest) {
      const guestMissing = p.scenario.requires.filter((f) => guest.find((c) => c.feature === f)?.ok === false);
      if (guestMissing.length) {
        where = 'skip';
        reason = `host kernel lacks ${p.missing.join(', ')}; the guest lacks ${guestMissing.join(', ')} too (skipped in the guest)`;
      }
    }
    const name = `${p.scenario.id} (${p.scenario.covers.join(' ')})`;
    return `  ${where.padEnd(5)} ${name.padEnd(44)} ${needs}: ${reason}`;
  });
}
