// Docker's -p syntax: hostPort:containerPort, ip:hostPort:containerPort, ip::containerPort,
// containerPort; each with /tcp or /udp; port ranges of equal length expand to one entry each.
// An IPv6 host address goes in brackets: [::1]:8080:80, [2001:db8:1::1]:8080:80.
import type { PublishSpec } from './types.js';

const IPV4 = '\\d{1,3}(?:\\.\\d{1,3}){3}';
const RANGE = '\\d{1,5}(?:-\\d{1,5})?';
const IPV6 = '\\[[0-9a-fA-F:]*:[0-9a-fA-F:]*\\]';
const FORM = new RegExp(`^(?:(?:(${IPV4}|${IPV6}):)?(${RANGE})?:)?(${RANGE})(?:/(tcp|udp))?$`);

function range(s: string): [number, number] {
  const [a, b] = s.split('-').map(Number);
  return [a, b ?? a];
}

/** Parse one -p value; throws an Error saying what was expected. */
export function parsePublish(raw: string | number): PublishSpec[] {
  const text = String(raw);
  const m = FORM.exec(text);
  if (!m) throw new Error(`"${text}" is not a -p form (expected hostPort:containerPort, ip:hostPort:containerPort, ip::containerPort or containerPort, with an optional /tcp or /udp)`);
  const [, bracketed, hostPart, containerPart, proto = 'tcp'] = m;
  const hostIp = bracketed?.replace(/^\[|\]$/g, '');
  const [c0, c1] = range(containerPart);
  const host = hostPart ? range(hostPart) : undefined;
  for (const p of [c0, c1, ...(host ?? [])]) if (p < 1 || p > 65535) throw new Error(`"${text}": port ${p} is out of range 1-65535`);
  if (c1 < c0 || (host && host[1] < host[0])) throw new Error(`"${text}": a range must go upwards`);
  if (host && host[1] - host[0] !== c1 - c0) throw new Error(`"${text}": host and container port ranges must have the same length`);
  const out: PublishSpec[] = [];
  for (let i = 0; i <= c1 - c0; i++) {
    out.push({ raw: text, hostIp: hostIp || undefined, hostPort: host ? host[0] + i : undefined, hostPortEnd: host?.[1], containerPort: c0 + i, proto: proto as 'tcp' | 'udp' });
  }
  return out;
}
