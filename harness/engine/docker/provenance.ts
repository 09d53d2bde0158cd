// Where each part of a cached engine build came from, read from the MANIFEST its script wrote
// (scripts/get-engines.sh: the Debian packages unpacked; scripts/build-engine.sh: the upstream
// tags built, their commit and sha256): for `doctor --dockerd` and the engine-matrix table.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The part each Debian package, or each upstream source, provides. */
const PARTS: Record<string, string[]> = {
  'docker.io': ['dockerd', 'docker-proxy'],
  moby: ['dockerd', 'docker-proxy'],
  containerd: ['containerd', 'containerd-shim-runc-v2'],
  runc: ['runc'],
  tini: ['docker-init'],
};

/** part name → "source moby docker-v29.7.2 (6a43e3d5af, sha256 23f24306…)" or "Debian package containerd 1.7.24~ds1-6". */
export function provenance(manifest: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of manifest.split('\n')) {
    const source = /^source (\S+) (\S+) ([0-9a-f]+) sha256:([0-9a-f]+)$/.exec(line);
    const pkg = /^Package: (\S+) Version: (\S+)$/.exec(line);
    const [name, origin] = source ? [source[1], `source ${source[1]} ${source[2]} (commit ${source[3].slice(0, 10)}, sha256 ${source[4].slice(0, 12)}…)`] : pkg && PARTS[pkg[1]] ? [pkg[1], `Debian package ${pkg[1]} ${pkg[2]}`] : [];
    for (const part of (name && PARTS[name]) || []) out.set(part, origin!);
  }
  return out;
}

/** The provenance of the build whose dockerd is in `dir`; empty when it has no MANIFEST (a dockerd on PATH, a build of one's own). */
export function buildProvenance(dir: string): Map<string, string> {
  const file = join(dir, 'MANIFEST');
  return existsSync(file) ? provenance(readFileSync(file, 'utf8')) : new Map();
}
