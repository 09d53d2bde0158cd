// A cpio archive in the "newc" format the kernel unpacks as an initramfs: directories, files
// and symlinks, no device nodes (the guest mounts devtmpfs). Small enough to write here; it
// keeps the runner free of a Debian `cpio` dependency.

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; data: Buffer; mode?: number }
  | { type: 'symlink'; path: string; target: string };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, '0');
}

function pad4(n: number): Buffer {
  return Buffer.alloc((4 - (n % 4)) % 4);
}

function record(ino: number, name: string, mode: number, data: Buffer): Buffer[] {
  const nameBuf = Buffer.from(name + '\0');
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor, rdevminor, namesize, check
  const fields = [ino, mode, 0, 0, mode & S_IFDIR ? 2 : 1, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0];
  const header = Buffer.from('070701' + fields.map(hex8).join(''), 'ascii');
  return [header, nameBuf, pad4(header.length + nameBuf.length), data, pad4(data.length)];
}

/** Paths are relative to the archive root ("init", "bin/busybox"); mtime 0 keeps archives reproducible. */
export function cpioArchive(entries: CpioEntry[]): Buffer {
  const parts: Buffer[] = [];
  let ino = 1;
  for (const e of entries) {
    const path = e.path.replace(/^\/+/, '');
    if (e.type === 'dir') parts.push(...record(ino++, path, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0)));
    else if (e.type === 'file') parts.push(...record(ino++, path, S_IFREG | (e.mode ?? 0o644), e.data));
    else parts.push(...record(ino++, path, S_IFLNK | 0o777, Buffer.from(e.target)));
  }
  parts.push(...record(0, 'TRAILER!!!', 0, Buffer.alloc(0)));
  return Buffer.concat(parts);
}

/** Every parent folder of the given paths, parents first, for an archive that names each one. */
export function parentDirs(paths: string[]): string[] {
  const dirs = new Set<string>();
  for (const p of paths) {
    const parts = p.replace(/^\/+/, '').split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  return [...dirs].sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b));
}
