// Kernel modules of the guest kernel: which files to load, in which order, for a list of
// module names. Reads the package's own modules.dep (written by depmod) and modules.builtin,
// so the order is the kernel's, not a guess; a module built into the kernel needs no loading.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ModuleIndex {
  /** module name → path relative to the modules folder, e.g. "8021q" → "kernel/net/8021q/8021q.ko" */
  paths: Map<string, string>;
  /** module name → names it depends on (direct and indirect, as depmod lists them) */
  deps: Map<string, string[]>;
  builtin: Set<string>;
  /** soft "pre:" dependencies (modules.softdep), e.g. libcrc32c → crc32c, by module or alias name */
  softPre: Map<string, string[]>;
  /** exact aliases (modules.alias) → module names, e.g. crc32c → crc32c_intel, crc32c_generic */
  aliases: Map<string, string[]>;
}

export interface ModuleFile {
  name: string;
  /** relative to the modules folder */
  path: string;
  /** a soft dependency: loaded when it can be, as modprobe does, and never fatal */
  optional?: boolean;
}

/** Module names use "_" and "-" interchangeably; the kernel reports them with "_". */
export function moduleName(pathOrName: string): string {
  const base = pathOrName.split('/').pop()!;
  return base.replace(/\.ko(\.(xz|gz|zst))?$/, '').replace(/-/g, '_');
}

export function parseModulesDep(depText: string, builtinText = '', softdepText = '', aliasText = ''): ModuleIndex {
  const paths = new Map<string, string>();
  const deps = new Map<string, string[]>();
  for (const line of depText.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const path = line.slice(0, colon).trim();
    const name = moduleName(path);
    paths.set(name, path);
    deps.set(name, line.slice(colon + 1).trim().split(/\s+/).filter(Boolean).map(moduleName));
  }
  const builtin = new Set(builtinText.split('\n').map((l) => l.trim()).filter(Boolean).map(moduleName));
  const softPre = new Map<string, string[]>();
  for (const line of softdepText.split('\n')) {
    const m = /^softdep\s+(\S+)\s+(.*)$/.exec(line.trim());
    const pre = m && /(?:^|\s)pre:\s*(.*?)(?:\s+post:.*)?$/.exec(m[2]);
    if (m && pre) softPre.set(moduleName(m[1]), [...(softPre.get(moduleName(m[1])) ?? []), ...pre[1].split(/\s+/).filter(Boolean)]);
  }
  const aliases = new Map<string, string[]>();
  for (const line of aliasText.split('\n')) {
    const m = /^alias\s+(\S+)\s+(\S+)$/.exec(line.trim());
    if (m && !/[*?[]/.test(m[1])) aliases.set(m[1], [...(aliases.get(m[1]) ?? []), moduleName(m[2])]);
  }
  return { paths, deps, builtin, softPre, aliases };
}

export function readModuleIndex(modulesDir: string): ModuleIndex {
  // only modules.dep is required; the others are absent on some kernels
  const optional = (name: string) => {
    try {
      return readFileSync(join(modulesDir, name), 'utf8');
    } catch {
      return '';
    }
  };
  return parseModulesDep(readFileSync(join(modulesDir, 'modules.dep'), 'utf8'), optional('modules.builtin'), optional('modules.softdep'), optional('modules.alias'));
}

export class UnknownModuleError extends Error {
  constructor(readonly modules: string[]) {
    super(`the guest kernel has no module ${modules.join(', ')} (neither a loadable module in modules.dep nor built in)`);
  }
}

/**
 * The files to insmod, dependencies first, each once, for the wanted modules. Built-in
 * modules are left out; a name the kernel knows nothing of is an error naming it. Soft
 * dependencies come first, marked optional (every module an alias names, as modprobe does).
 */
export function resolveModules(index: ModuleIndex, wanted: string[]): ModuleFile[] {
  const out: ModuleFile[] = [];
  const done = new Set<string>();
  const unknown: string[] = [];
  const visit = (name: string, chain: string[], optional = false) => {
    if (done.has(name) || index.builtin.has(name) || chain.includes(name)) return;
    const path = index.paths.get(name);
    if (!path) {
      if (!optional) unknown.push(chain.length ? `${name} (needed by ${chain.join(' → ')})` : name);
      return;
    }
    for (const soft of index.softPre.get(name) ?? []) {
      for (const m of index.paths.has(moduleName(soft)) ? [moduleName(soft)] : (index.aliases.get(soft) ?? [])) visit(m, [...chain, name], true);
    }
    for (const d of index.deps.get(name) ?? []) visit(d, [...chain, name], optional);
    done.add(name);
    out.push(optional ? { name, path, optional } : { name, path });
  };
  for (const w of wanted) visit(moduleName(w), []);
  if (unknown.length) throw new UnknownModuleError(unknown);
  return out;
}
