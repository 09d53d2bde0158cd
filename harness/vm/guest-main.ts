// The harness inside the guest (started by the guest init with chroot): runs the job the host
// wrote into the job share and writes the results back there, after every scenario so that
// a crash later on loses nothing already done. Progress goes to the serial console.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { release } from 'node:os';
import { detectCapabilities } from '../lab/capabilities.js';
import { destroyAllLabs } from '../lab/lab.js';
import { packageRoot } from '../paths.js';
import type { ScenarioResult } from '../report/results.js';
import { runSuite } from '../run/suite.js';
import { GUEST_MARK } from './guest-init.js';
import { dockerLeftovers, prepareGuestDocker } from './guest-docker.js';
import { CAPABILITIES_FILE, MODULES_FILE, RESULTS_FILE, type GuestJob } from './job.js';

async function main(jobPath: string): Promise<number> {
  const dir = join(jobPath, '..');
  const job = JSON.parse(readFileSync(jobPath, 'utf8')) as GuestJob;
  if (!job.color) process.env.NO_COLOR = '1';
  process.chdir(packageRoot());
  const { progressLine } = await import('../report/terminal.js'); // after NO_COLOR is settled
  console.log(`${GUEST_MARK} harness-ready ${uptime()}`);
  if (job.kind === 'capabilities') {
    writeFileSync(join(dir, CAPABILITIES_FILE), JSON.stringify({ release: release(), capabilities: await detectCapabilities() }));
  } else {
    const results: ScenarioResult[] = [];
    prepareGuestDocker(job.dockerds);
    await runSuite(job.scenarios, {
      engines: job.engines,
      hostIptables: job.hostIptables,
      kernel: null, // already in the guest: never boot another one
      compare: false, // the host compares the engines' runs once they are back
      rulePaths: job.rulePaths,
      onProgress: (l) => console.log(`  ${l}`),
      onResult: (r, i, n) => {
        results.push(r);
        writeFileSync(join(dir, RESULTS_FILE), JSON.stringify(results));
        console.log(progressLine(r, i, n));
      },
    });
    writeFileSync(join(dir, RESULTS_FILE), JSON.stringify(results));
    const left = await dockerLeftovers();
    if (left.length) console.log(`${GUEST_MARK} docker-leftovers ${left.join(' ')}`);
  }
  writeFileSync(join(dir, MODULES_FILE), loadedModules().join('\n'));
  return 0;
}

function uptime(): string {
  return readFileSync('/proc/uptime', 'utf8').split(' ')[0];
}

function loadedModules(): string[] {
  return readFileSync('/proc/modules', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[0])
    .filter(Boolean)
    .sort();
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  async (e) => {
    console.error(`${GUEST_MARK} harness-error ${(e as Error).stack ?? e}`);
    await destroyAllLabs();
    process.exit(3);
  },
);
