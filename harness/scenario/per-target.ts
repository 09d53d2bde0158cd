// Expectations that differ by engine profile or engine. A scenario states them as
//
//   result: { docker-20.10: connected, default: timeout }     # per profile, with a default
//   result: { docker:docker-28: refused, default: timeout }   # one target (engine:profile) only
//   profiles: [docker-28, docker-29]                          # where an expectation applies
//
// and each run resolves them for its target (engine + profile) before anything is probed.
//
// A backend variant (docker-29-nftables: Docker 29 with its nftables firewall backend) has the
// verdicts of its release unless stated otherwise: a value or a profile list for docker-29
// holds for it too. Checks of Docker's iptables rules (`rules:` without `family:`) are the
// exception: they hold for an nftables profile only where its list names it, and a run under
// one leaves the others out (Docker writes no iptables rules then). The hosts of such a run
// are prepared as Docker's nftables documentation asks: forwarding enabled by the
// administrator (the engine never enables it), `--firewall-backend=nftables` for the daemon.
import { ENGINES, PROFILES, baseProfile, firewallBackend, isProfile, type Target } from '../targets.js';
import type { Expectation, HostSpec, Scenario } from './types.js';

/** Why a key of a per-target map is not valid, or undefined when it is. */
export function targetKeyProblem(key: string): string | undefined {
  if (key === 'default' || isProfile(key) || (ENGINES as readonly string[]).includes(key)) return undefined;
  const [engine, profile] = key.split(':');
  // `docker:docker-28`: what the real 28 does where the reference engine's profile cannot follow
  if ((ENGINES as readonly string[]).includes(engine) && profile !== undefined && isProfile(profile)) return undefined;
  return `unknown profile or engine '${key}' (expected one of: ${[...PROFILES, ...ENGINES, 'reference:PROFILE', 'docker:PROFILE', 'default'].join(', ')})`;
}

/** The value for a target: engine:profile, then engine, then profile (then its release's), then default. */
export function pickForTarget<T>(byTarget: Record<string, T>, t: Target): T | undefined {
  const base = t.profile && baseProfile(t.profile) !== t.profile ? baseProfile(t.profile) : undefined;
  const keys = [t.profile ? `${t.engine}:${t.profile}` : undefined, base ? `${t.engine}:${base}` : undefined, t.engine, t.profile, base, 'default'];
  for (const k of keys) if (k !== undefined && k in byTarget) return byTarget[k];
  return undefined;
}

/** Profiles a map leaves without a value (it has no default and names neither them nor their release). */
export function uncoveredProfiles(byTarget: Record<string, unknown>, scope: readonly string[]): string[] {
  if ('default' in byTarget || 'reference' in byTarget) return [];
  const named = (p: string) => p in byTarget || `reference:${p}` in byTarget;
  const missing = scope.filter((p) => !named(p) && !named(baseProfile(p)));
  // naming the release covers its backend variants: say only the release
  return missing.filter((p) => baseProfile(p) === p || !missing.includes(baseProfile(p)));
}

/** Whether a profile list covers the target: by name, or by the release of a backend variant. */
function appliesTo(profiles: string[] | undefined, t: Target, byReleaseToo = true): boolean {
  if (!profiles || !t.profile) return true;
  return profiles.includes(t.profile) || (byReleaseToo && profiles.includes(baseProfile(t.profile)));
}

/** A check of the iptables rule set: under an nftables profile it holds only where named. */
const readsIptables = (e: Expectation) => e.kind === 'rules' && !e.family;

/** A host as the nftables backend needs it: forwarding on (the administrator's part), the daemon told. */
function nftablesHost(h: HostSpec): HostSpec {
  return { ...h, sysctls: { 'net.ipv4.ip_forward': '1', ...h.sysctls }, daemon: { ...h.daemon, 'firewall-backend': 'nftables' } };
}

/**
 * The scenario as one target sees it: results picked; expectations stated for other profiles
 * marked `notFor` (left out of the run), and those that cannot be checked marked `skipReason`.
 */
export function resolveForTarget(sc: Scenario, t: Target): Scenario {
  const backend = t.profile ? firewallBackend(t.profile) : 'iptables';
  const expect = sc.expect.map((e): Expectation => {
    if (!appliesTo(sc.profiles, t)) return { ...e, skipReason: `the scenario runs under ${sc.profiles!.join(', ')} only (this run: ${t.label})` };
    if (sc.firewallBackends && !sc.firewallBackends.includes(backend)) return { ...e, skipReason: `the scenario runs under the ${sc.firewallBackends.join(', ')} firewall backend only (${t.label} writes ${backend})` };
    if (backend === 'nftables' && readsIptables(e)) {
      if (!e.profiles?.includes(t.profile!)) return { ...e, notFor: `checks Docker's iptables rules; ${t.label} writes nftables (name it in profiles: to check iptables under it)` };
    } else if (!appliesTo(e.profiles, t)) return { ...e, notFor: `stated for ${e.profiles!.join(', ')} only` };
    const finding = e.findingBy ? { finding: pickForTarget(e.findingBy, t) } : {};
    if (e.kind !== 'reach') return { ...e, ...finding };
    const out = { ...e, ...finding };
    if (e.resultBy) {
      const r = pickForTarget(e.resultBy, t);
      if (r === undefined) return { ...e, skipReason: `states no result for ${t.label} (add it, or a default)` };
      out.result = r;
    }
    if (e.seenSourceBy) out.seenSource = pickForTarget(e.seenSourceBy, t);
    if (e.decidedByBy) out.decidedBy = pickForTarget(e.decidedByBy, t);
    return out;
  });
  return { ...sc, expect, ...(backend === 'nftables' ? { hosts: sc.hosts.map(nftablesHost) } : {}) };
}
