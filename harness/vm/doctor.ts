// What `doctor` says about kernels: the features of the host kernel and of the configured
// guest kernel (found by booting it once), and where each scenario will run and why.
import type { Capability } from '../lab/capabilities.js';
import { GUEST_MODULES } from '../lab/capabilities.js';
import { guestCapabilities } from './guest-caps.js';
import type { Scenario } from '../scenario/types.js';
import { startGuest } from './guest.js';
import { GET_KERNEL_HINT, type KernelChoice } from './kernel.js';
import { placeScenarios } from './plan.js';

export interface KernelColumn {
  title: string;
  caps?: Capability[];
  /** why there are no capabilities for this kernel */
  note?: string;
}

/** Start the guest once and ask its kernel what it can do. */
export async function probeGuest(choice: KernelChoice, onLine?: (l: string) => void): Promise<KernelColumn> {
  const k = choice.kernel!;
  const g = await startGuest({ kernel: k, modules: GUEST_MODULES, onLine });
  const title = `guest ${k.release}`;
  try {
    if (!g.ready) return { title, note: `probe boot failed (${g.outcome}): ${g.detail}` };
    const { capabilities: caps } = await guestCapabilities(g);
    const secs = (ms?: number) => (ms === undefined ? '?' : (ms / 1000).toFixed(1));
    const how = g.timing.restored ? 'restored' : `booted in ${secs(g.timing.bootMs)} s`;
    return { title: `${title} (${g.accel}, ${how}, ready ${secs(g.timing.readyMs)} s, a process ${g.timing.processMs?.toFixed(0)} ms)`, caps };
  } catch (e) {
    return { title, note: `probing the guest failed: ${(e as Error).message}` };
  } finally {
    await g.stop();
  }
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
