// Which iptables a lab host runs. Hosts in the field run iptables-nft (Debian's default since
// buster) or iptables-legacy (x_tables); a lab picks one per host and calls that variant's
// binaries by their explicit names, so the machine's alternatives (`update-alternatives
// --set iptables …`) are never consulted nor changed. An address family per tool set, so a
// driver can write ip6tables beside iptables.
import { run } from '../../lab/exec.js';

export const IPTABLES_VARIANTS = ['nft', 'legacy'] as const;
export type IptablesVariant = (typeof IPTABLES_VARIANTS)[number];
export type AddressFamily = 'ipv4' | 'ipv6';

export interface IptablesTools {
  variant: IptablesVariant;
  family: AddressFamily;
  /** e.g. iptables-legacy, ip6tables-nft */
  iptables: string;
  save: string;
  restore: string;
}

export function isIptablesVariant(v: string): v is IptablesVariant {
  return (IPTABLES_VARIANTS as readonly string[]).includes(v);
}

export function iptablesTools(variant: IptablesVariant, family: AddressFamily = 'ipv4'): IptablesTools {
  const base = family === 'ipv4' ? 'iptables' : 'ip6tables';
  return { variant, family, iptables: `${base}-${variant}`, save: `${base}-${variant}-save`, restore: `${base}-${variant}-restore` };
}

let machineDefault: Promise<IptablesVariant> | undefined;

/**
 * The variant the machine's own `iptables` is (its alternative): a run uses it unless told
 * otherwise. `iptables --version` says "(nf_tables)" or "(legacy)".
 */
export function machineIptablesVariant(): Promise<IptablesVariant> {
  machineDefault ??= run('iptables', ['--version'], { allowFail: true })
    .then((r) => (r.stdout.includes('legacy') ? 'legacy' : 'nft'))
    .catch(() => 'nft' as const);
  return machineDefault;
}

/** The multi-call binary behind a variant's commands (a daemon's PATH shim links to it). */
export function xtablesMulti(variant: IptablesVariant): string {
  return `xtables-${variant}-multi`;
}
