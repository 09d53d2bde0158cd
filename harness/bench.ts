// `npm run bench`: figures to read, never assertions. Each section is one module under
// bench/; `npm run bench -- NAME…` runs only the named sections.
import { destroyAllLabs } from './lab/lab.js';
import { dockerVsReference } from './bench/docker-vs-reference.js';

const SECTIONS: Record<string, () => Promise<unknown>> = {
  'docker-vs-reference': () => dockerVsReference(),
};

async function main(names: string[]): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the benchmarks build labs: run them as root');
  const chosen = names.length ? names : Object.keys(SECTIONS);
  for (const n of chosen) {
    const run = SECTIONS[n];
    if (!run) throw new Error(`unknown section ${n} (known: ${Object.keys(SECTIONS).join(', ')})`);
    await run();
    console.log('');
  }
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => void destroyAllLabs().finally(() => process.exit(130)));
main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.error(`bench: ${(e as Error).message}`);
    void destroyAllLabs().finally(() => process.exit(2));
  },
);
