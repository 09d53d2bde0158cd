// Probes go out in waves that fit the kernel's neighbour table (see lab/neighbours.ts): each
// probed pair can cost two ARP entries, the table is shared by the whole machine, and entries
// younger than 5 s cannot be reclaimed. When the next wave would not fit, the lab's own
// entries are forgotten first (ARP is simply redone later), so a matrix of any size gets
// trustworthy verdicts. Scenarios of a few hundred probes run as one wave.
import { neighbourStats } from '../lab/neighbours.js';

const MIN_WAVE = 64;

export async function inNeighbourWaves<T, R>(items: T[], each: (item: T) => Promise<R>, forgetLabEntries: () => Promise<void>): Promise<R[]> {
  const first = await neighbourStats();
  if (!first) return Promise.all(items.map(each));
  const room = async () => {
    const s = await neighbourStats();
    return Math.floor((s?.threshold ?? first.threshold) * 0.8) - (s?.entries ?? 0);
  };
  const out: R[] = [];
  for (let i = 0; i < items.length; ) {
    let free = await room();
    const left = items.length - i;
    if (free < 2 * Math.min(left, MIN_WAVE * 4)) {
      await forgetLabEntries();
      free = await room();
    }
    const size = Math.max(MIN_WAVE, Math.floor(free / 2));
    const wave = items.slice(i, i + size);
    out.push(...(await Promise.all(wave.map(each))));
    i += wave.length;
  }
  return out;
}
