// The few iptables idioms every Docker release uses to program its rules, on the in-memory
// rule editor: add a rule unless present, and keep a jump at the top of a chain.
import type { RuleEditor } from '../../../rules/iptables/editor.js';

/** An address as a host prefix (/32, or /128 for IPv6): how iptables and ip6tables print it. */
export const hostCidr = (ip: string) => `${ip}/${ip.includes(':') ? 128 : 32}`;

/** A DNAT target: ip6tables writes IPv6 addresses in brackets. */
export const natTarget = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** All addresses: 0.0.0.0, or :: in IPv6. */
export const isAnyAddress = (ip: string) => ip === '0.0.0.0' || ip === '::';

/** -I unless present (libnetwork's Rule.Insert / programChainRule). */
export function insertOnce(ed: RuleEditor, table: string, chain: string, rule: string): void {
  if (!ed.exists(table, chain, rule)) ed.insert(table, chain, rule, 1);
}

/** -A unless present (libnetwork's Rule.Append / appendOrDelChainRule). */
export function appendOnce(ed: RuleEditor, table: string, chain: string, rule: string): void {
  if (!ed.exists(table, chain, rule)) ed.append(table, chain, rule);
}

/** Delete every copy of a rule. */
export function deleteAll(ed: RuleEditor, table: string, chain: string, rule: string): void {
  while (ed.delete(table, chain, rule)) {
    /* remove every copy */
  }
}

/** Delete, then insert at the top (libnetwork's EnsureJumpRule). */
export function ensureJumpFirst(ed: RuleEditor, chain: string, target: string): void {
  deleteAll(ed, 'filter', chain, `-j ${target}`);
  ed.insert('filter', chain, `-j ${target}`, 1);
}
