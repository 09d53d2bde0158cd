// NETCONFORM_TRACE=1 prints, on stderr, every command the lab runs and the runner's milestones,
// each with its start offset and duration: where a lab's milliseconds go.
const t0 = performance.now();
export const tracing = Boolean(process.env.NETCONFORM_TRACE);

export function traceLine(startedAt: number, what: string): void {
  if (!tracing) return;
  const at = (startedAt - t0).toFixed(1).padStart(8);
  const took = (performance.now() - startedAt).toFixed(1).padStart(6);
  process.stderr.write(`[trace] ${at} ms +${took} ms  ${what.replace(/\n/g, '; ').slice(0, 140)}\n`);
}

/** Awaits `p` and traces how long it took from now. */
export async function traced<T>(what: string, p: Promise<T>): Promise<T> {
  if (!tracing) return p;
  const started = performance.now();
  try {
    return await p;
  } finally {
    traceLine(started, what);
  }
}
