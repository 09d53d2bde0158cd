// `netconform diff` end to end: the same scenarios in real labs under docker-20.10 and
// docker-29, and the report lists the chain changes of that upgrade and the verdicts that change.
import { describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const isRoot = process.getuid?.() === 0;
const root = join(import.meta.dirname, '..');
const paths = ['scenarios/bridge/default-bridge.yaml', 'scenarios/bridge/custom-bridge.yaml', 'scenarios/ingress/direct-routing.yaml'];

describe.skipIf(!isRoot)('netconform diff reference:docker-20.10 → reference:docker-29', () => {
  it('reports the chains, rules and verdicts that change', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ncf-diff-'));
    try {
      const out = join(dir, 'upgrade.md');
      const r = await execa('node', ['dist/harness/cli.js', 'diff', '--from', 'reference:docker-20.10', '--to', 'reference:docker-29', '--out', out, ...paths], {
        cwd: root,
        env: { NO_COLOR: '1' },
        reject: false,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      const md = readFileSync(out, 'utf8');
      expect(r.stdout).toContain(md.trim());
      for (const chain of ['DOCKER-FORWARD', 'DOCKER-BRIDGE', 'DOCKER-CT', 'DOCKER-INTERNAL']) expect(md).toContain(`| filter | ${chain} | appears | all 3 scenarios |`);
      for (const chain of ['DOCKER-ISOLATION-STAGE-1', 'DOCKER-ISOLATION-STAGE-2']) expect(md).toContain(`| filter | ${chain} | disappears | all 3 scenarios |`);
      // the skip-DNAT RETURN per bridge, docker0's and the named network's
      expect(md).toMatch(/### nat DOCKER\n\n```diff\n(.*\n)*- -A DOCKER -i docker0 -j RETURN {4}# all 3 scenarios\n/);
      expect(md).toContain('- -A DOCKER -i ${bridge:lab} -j RETURN    # 1 of 3: custom-bridge');
      expect(md).toContain('+ -A FORWARD -j DOCKER-FORWARD    # all 3 scenarios');
      // what a neighbour that routes to the container subnet can reach once FORWARD is opened
      expect(md).toMatch(/\| ingress-direct-routing \| IN-08 .*\[wan → web tcp\/81\] \| connected \| timeout \| reachable → blocked \| direct-routing\.yaml:\d+ \|/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('shows what a LAN neighbour gains or loses, SC by SC', async () => {
    const verdicts = async (to: string) => {
      const r = await execa('node', ['dist/harness/cli.js', 'diff', '--from', 'reference:docker-20.10', '--to', to, '--out', '/dev/null', 'scenarios/security'], { cwd: root, env: { NO_COLOR: '1' }, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      return r.stdout.split('\n').filter((l) => l.startsWith('| security-'));
    };
    const row = (rows: string[], probe: string) => rows.find((l) => l.includes(probe));
    for (const to of ['reference:docker-28', 'reference:docker-29']) {
      const rows = await verdicts(to);
      expect(row(rows, '[laptop → 127.0.0.1 tcp/8080]')).toMatch(/\| connected \| timeout \| reachable → blocked \|/);
      expect(row(rows, '[laptop → web tcp/80]')).toMatch(/\| connected \| timeout \| reachable → blocked \|/);
      expect(row(rows, '[laptop → web tcp/81]')).toMatch(/\| connected \| timeout \|/);
      // SC-04 is a finding under every release: nothing changes for it
      expect(rows.some((l) => l.startsWith('| security-iptables-false'))).toBe(false);
      const sc05 = row(rows, '[app → host tcp/8080]');
      if (to.endsWith('29')) expect(sc05).toMatch(/\| timeout \| connected \| blocked → reachable \|/);
      else expect(sc05).toBeUndefined();
    }
  });
});
