// The kernel's IPv4 neighbour (ARP) table is one table for every namespace of the machine,
// with global limits (net.ipv4.neigh.default.gc_thresh3, 1024 by default, settable only in the
// initial namespace). Entries younger than 5 s cannot be reclaimed, so a burst of probes
// between more distinct pairs than that fills it, and the kernel then drops packets that need
// a new entry. Such drops are an artefact of the lab, not a verdict about the behaviour under
// test: the runner watches the table's overflow counter and refuses to trust a "timeout" or
// "unreachable" seen while it moved.
// The table is the machine's: a microVM guest has its own, read there.
import { currentMachine } from '../machine/machine.js';

export interface NeighbourStats {
  /** entries in the table now (all namespaces) */
  entries: number;
  /** times an entry could not be created because the table was full (all CPUs) */
  tableFulls: number;
  /** entries the table holds (gc_thresh3) */
  threshold: number;
}

export async function neighbourStats(): Promise<NeighbourStats | undefined> {
  const m = currentMachine();
  let text: string;
  try {
    text = await m.readFile('/proc/net/stat/arp_cache');
  } catch {
    return undefined; // no procfs view: nothing to guard with
  }
  const [head, ...rows] = text.trim().split('\n');
  const cols = head.trim().split(/\s+/);
  const iEntries = cols.indexOf('entries');
  const iFull = cols.indexOf('table_fulls');
  if (iEntries < 0 || iFull < 0 || rows.length === 0) return undefined;
  const values = rows.map((r) => r.trim().split(/\s+/).map((h) => parseInt(h, 16)));
  const threshold = await m.readFile('/proc/sys/net/ipv4/neigh/default/gc_thresh3').then(
    (t) => Number(t.trim()),
    () => 1024,
  );
  return { entries: values[0][iEntries], tableFulls: values.reduce((n, v) => n + v[iFull], 0), threshold };
}
