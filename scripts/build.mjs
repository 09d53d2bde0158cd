// npm run build: TypeScript to dist/ (tsc), then the C programs (dist/harness/native.js).
// tsc takes 1.7 s even with nothing to do (it loads the whole program to find out); a run
// after a run skips it when no file it reads is newer than its last build.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = join(import.meta.dirname, '..');
// written after each tsc that succeeded (tsc leaves its own files alone when nothing changed)
const stamp = join(root, 'dist', '.built');

function newestUnder(dir) {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestUnder(p) : e.name.endsWith('.ts') ? statSync(p).mtimeMs : 0);
  }
  return newest;
}

const inputs = Math.max(newestUnder(join(root, 'harness')), ...['tsconfig.json', 'package.json', 'package-lock.json'].map((f) => statSync(join(root, f)).mtimeMs));
if (!existsSync(stamp) || statSync(stamp).mtimeMs < inputs) {
  execFileSync(join(root, 'node_modules', '.bin', 'tsc'), ['-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  writeFileSync(stamp, `${new Date().toISOString()}\n`);
}
execFileSync(process.execPath, [join(root, 'dist', 'harness', 'native.js')], { stdio: 'inherit' });
