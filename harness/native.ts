// The suite's small C programs, built by `npm run build` into dist/: the probe agent
// (harness/probe/agent.c, one per namespace that sends or receives probes), the reference
// engine's helper (harness/engine/reference/refd.c: container mount namespaces, embedded DNS)
// and the microVM guest's agent (harness/vm/agent.c, static: it runs from the initramfs), and
// the trace monitor (harness/trace/tracemon.c: nftables trace events of a Docker host).
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { packageRoot } from './paths.js';

const PROGRAMS = {
  // static: one agent per namespace and one helper per Docker host start in every scenario, and
  // in an emulated guest a dynamic program's loader and libc cost more than the program does
  'probe-agent': { source: 'harness/probe/agent.c', flags: ['-static'] },
  refd: { source: 'harness/engine/reference/refd.c', flags: ['-static'] },
  'ncf-agent': { source: 'harness/vm/agent.c', flags: ['-static'] },
  tracemon: { source: 'harness/trace/tracemon.c', flags: [] },
} as const;

export function nativePath(name: keyof typeof PROGRAMS): string {
  return join(packageRoot(), 'dist', name);
}

export const agentPath = () => nativePath('probe-agent');
export const refdPath = () => nativePath('refd');
export const guestAgentPath = () => nativePath('ncf-agent');
export const tracemonPath = () => nativePath('tracemon');

export function buildNative(): void {
  const root = packageRoot();
  for (const [name, { source, flags }] of Object.entries(PROGRAMS)) {
    const src = join(root, source);
    const out = nativePath(name as keyof typeof PROGRAMS);
    // older than its source, or than this file (its flags)
    const newest = Math.max(statSync(src).mtimeMs, statSync(join(root, 'harness', 'native.ts')).mtimeMs);
    if (existsSync(out) && statSync(out).mtimeMs >= newest) continue;
    mkdirSync(dirname(out), { recursive: true });
    try {
      execFileSync('cc', ['-O2', '-Wall', '-Wextra', ...flags, '-o', out, src], { stdio: 'inherit' });
    } catch (e) {
      const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
      throw new Error(missing ? 'no C compiler: install gcc (apt-get install -y gcc libc6-dev)' : `building ${source} failed: ${(e as Error).message}`);
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildNative();
}
