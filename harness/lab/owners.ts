// Everything a run leaves on the machine (lab namespaces, docker state folders, microVM job
// folders) carries the pid of the run that made it. A gc cleans up after runs that are gone.
import { readFileSync } from 'node:fs';

/** A run is alive while its process exists and is not a zombie (a SIGKILLed run not yet reaped). */
export function runAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Which runs a gc cleans up after: those no longer alive (every run with `all`), and with
 *  `runs` only those. The calling process counts as alive: a gc never pulls labs from under
 *  its own caller (spec files run side by side, and more than one may gc). */
export interface GcScope {
  all?: boolean;
  runs?: number[];
}

export function collectable(owner: number, scope: GcScope): boolean {
  if (scope.runs && !scope.runs.includes(owner)) return false;
  return Boolean(scope.all) || !runAlive(owner);
}

/** Kept because its run is alive, and in scope: what a gc reports as kept. */
export function keptLive(owner: number, scope: GcScope): boolean {
  return !collectable(owner, scope) && (!scope.runs || scope.runs.includes(owner));
}
