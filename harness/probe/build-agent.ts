// Builds the C probe agent (dist/probe-agent) from harness/probe/agent.c; run by `npm run build`.
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { packageRoot } from '../paths.js';

export function agentPath(): string {
  return join(packageRoot(), 'dist', 'probe-agent');
}

export function buildAgent(): string {
  const root = packageRoot();
  const src = join(root, 'harness', 'probe', 'agent.c');
  const out = agentPath();
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(dirname(out), { recursive: true });
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-o', out, src], { stdio: 'inherit' });
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw new Error(missing ? 'no C compiler: install gcc (apt-get install -y gcc libc6-dev)' : `building the probe agent failed: ${(e as Error).message}`);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildAgent();
}
