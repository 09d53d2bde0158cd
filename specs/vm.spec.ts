// Unit specs of the microVM kernel runner: module resolution, the initramfs archive, kernel
// validation and choice, qemu arguments and accelerator choice, scenario placement, and gc.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { cpioArchive, parentDirs } from '../harness/vm/cpio.js';
import { BOOT_MODULES, buildInitramfs, initramfsEntries, isStaticElf } from '../harness/vm/initramfs.js';
import { KernelError, bzImageRelease, chooseKernel, resolveKernel, type GuestKernel } from '../harness/vm/kernel.js';
import { UnknownModuleError, moduleName, parseModulesDep, readModuleIndex, resolveModules } from '../harness/vm/modules.js';
import { chooseAccel, kernelCmdline, qemuArgs } from '../harness/vm/qemu.js';
import { placeScenarios, splitForGuests } from '../harness/vm/plan.js';
import { loadScenarios } from '../harness/scenario/load.js';
import { packageRoot } from '../harness/paths.js';
import { consoleTail, gcGuests, guestStatus, stripTerminalControls } from '../harness/vm/guest.js';
import { guestInitScript } from '../harness/vm/guest-init.js';
import type { Scenario } from '../harness/scenario/types.js';

const DEP = `kernel/net/8021q/8021q.ko: kernel/net/802/garp.ko kernel/net/802/stp.ko kernel/net/802/mrp.ko kernel/net/llc/llc.ko
kernel/net/802/garp.ko: kernel/net/802/stp.ko kernel/net/llc/llc.ko
kernel/net/802/stp.ko: kernel/net/llc/llc.ko
kernel/net/802/mrp.ko:
kernel/net/llc/llc.ko:
kernel/drivers/net/veth.ko:
kernel/net/netfilter/nf_tables.ko: kernel/net/netfilter/nfnetlink.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nfnetlink.ko:
kernel/lib/libcrc32c.ko:
kernel/crypto/crc32c_generic.ko:
arch/x86/crypto/crc32c-intel.ko:
`;
const SOFTDEP = '# soft\nsoftdep libcrc32c pre: crc32c\n';
const ALIAS = 'alias crypto-crc32c crc32c_intel\nalias crc32c crc32c_intel\nalias crc32c crc32c_generic\nalias pci:v*d* something\n';

const temps: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'ncf-spec-'));
  temps.push(d);
  return d;
}
afterEach(() => {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The smallest file with a bzImage setup header naming `release`. */
function fakeBzImage(release: string): Buffer {
  const b = Buffer.alloc(0x600);
  b.write('HdrS', 0x202, 'latin1');
  b.writeUInt16LE(0x300, 0x20e); // version string at 0x300 + 0x200
  b.write(`${release} (debian-kernel@lists.debian.org) #1 SMP`, 0x500, 'latin1');
  return b;
}

function fakeKernelDir(release = '6.1.0-99-amd64', opts: { modules?: boolean } = {}): string {
  const d = tempDir();
  mkdirSync(join(d, 'boot'));
  writeFileSync(join(d, 'boot', `vmlinuz-${release}`), fakeBzImage(release));
  if (opts.modules !== false) {
    mkdirSync(join(d, 'lib', 'modules', release), { recursive: true });
    writeFileSync(join(d, 'lib', 'modules', release, 'modules.dep'), DEP);
  }
  return d;
}

describe('module resolution (modules.dep, builtin, softdep)', () => {
  const index = parseModulesDep(DEP, 'kernel/net/ipv6/ipv6.ko\nkernel/net/packet/af_packet.ko\n', SOFTDEP, ALIAS);

  it('puts every dependency before its user, each once', () => {
    const names = resolveModules(index, ['8021q', 'veth', 'garp']).map((m) => m.name);
    expect(names).toEqual(['llc', 'stp', 'garp', 'mrp', '8021q', 'veth']);
  });

  it('loads soft dependencies first, every module of an alias, as optional', () => {
    const mods = resolveModules(index, ['nf_tables']);
    expect(mods.map((m) => `${m.optional ? '?' : ''}${m.name}`)).toEqual(['nfnetlink', '?crc32c_intel', '?crc32c_generic', 'libcrc32c', 'nf_tables']);
  });

  it('leaves built-in modules out and accepts - for _', () => {
    expect(resolveModules(index, ['ipv6', 'af-packet'])).toEqual([]);
    expect(moduleName('arch/x86/crypto/crc32c-intel.ko.xz')).toBe('crc32c_intel');
  });

  it('names a module the kernel does not have', () => {
    expect(() => resolveModules(index, ['veth', 'openvswitch'])).toThrow(UnknownModuleError);
    expect(() => resolveModules(index, ['openvswitch'])).toThrow(/no module openvswitch/);
  });
});

/** A minimal newc reader, to read back what the writer made. */
function readCpio(buf: Buffer): { name: string; mode: number; data: Buffer }[] {
  const out: { name: string; mode: number; data: Buffer }[] = [];
  let off = 0;
  const up4 = (n: number) => (n + 3) & ~3;
  for (;;) {
    expect(buf.toString('ascii', off, off + 6)).toBe('070701');
    const field = (i: number) => parseInt(buf.toString('ascii', off + 6 + i * 8, off + 14 + i * 8), 16);
    const mode = field(1);
    const size = field(6);
    const nameSize = field(11);
    const name = buf.toString('utf8', off + 110, off + 110 + nameSize - 1);
    const dataAt = up4(off + 110 + nameSize);
    if (name === 'TRAILER!!!') return out;
    out.push({ name, mode, data: buf.subarray(dataAt, dataAt + size) });
    off = up4(dataAt + size);
  }
}

describe('initramfs', () => {
  it('cpio archives read back: folders, files with modes, symlinks, trailer', () => {
    const entries = readCpio(
      cpioArchive([
        { type: 'dir', path: 'bin' },
        { type: 'file', path: 'bin/x', data: Buffer.from('hello'), mode: 0o755 },
        { type: 'symlink', path: 'sbin/y', target: '/bin/x' },
      ]),
    );
    expect(entries.map((e) => [e.name, e.mode.toString(8), e.data.toString()])).toEqual([
      ['bin', '40755', ''],
      ['bin/x', '100755', 'hello'],
      ['sbin/y', '120777', '/bin/x'],
    ]);
    expect(parentDirs(['a/b/c', 'a/d', 'e'])).toEqual(['a', 'a/b']);
  });

  it('holds busybox, the init, the agent and the modules (soft dependencies marked) under lib/modules/<release>', () => {
    const kernel: GuestKernel = { vmlinuz: '/k', release: '6.1.0-99-amd64', modulesDir: '/m' };
    const staticElf = readFileSync('/bin/busybox');
    const read = (p: string) => (p === '/bin/busybox' || p === '/agent' ? staticElf : Buffer.from(`content of ${p}`));
    const entries = initramfsEntries(kernel, [{ name: 'llc', path: 'kernel/net/llc/llc.ko' }, { name: 'crc', path: 'c.ko', optional: true }], read, '/agent');
    const byPath = new Map(entries.map((e) => [e.path, e]));
    expect([...byPath.keys()]).toEqual(expect.arrayContaining(['init', 'bin/busybox', 'sbin/modprobe', 'sbin/ncf-agent', 'etc/netconform/modules', 'lib/modules/6.1.0-99-amd64/kernel/net/llc/llc.ko', 'host', 'job', 'newroot', 'proc', 'dev']));
    const mod = byPath.get('lib/modules/6.1.0-99-amd64/kernel/net/llc/llc.ko')!;
    expect(mod.type === 'file' && mod.data.toString()).toBe('content of /m/kernel/net/llc/llc.ko');
    const list = byPath.get('etc/netconform/modules')!;
    expect(list.type === 'file' && list.data.toString()).toBe('llc kernel/net/llc/llc.ko\n-crc c.ko\n');
    // folders come before what they hold
    const order = entries.map((e) => e.path);
    expect(order.indexOf('lib/modules/6.1.0-99-amd64/kernel/net/llc')).toBeLessThan(order.indexOf('lib/modules/6.1.0-99-amd64/kernel/net/llc/llc.ko'));
  });

  it('refuses an agent that is not a static binary (the guest has no libc)', () => {
    const kernel: GuestKernel = { vmlinuz: '/k', release: 'r', modulesDir: '/m' };
    const read = (p: string) => readFileSync(p === '/bin/busybox' ? '/bin/busybox' : process.execPath);
    expect(() => initramfsEntries(kernel, [], read, '/agent')).toThrow(/not a static binary: build it with npm run build/);
  });

  it('refuses a dynamically linked busybox', () => {
    expect(isStaticElf(readFileSync('/bin/busybox'))).toBe(true);
    expect(isStaticElf(readFileSync(process.execPath))).toBe(false);
    const kernel: GuestKernel = { vmlinuz: '/k', release: 'r', modulesDir: '/m' };
    expect(() => initramfsEntries(kernel, [], () => readFileSync(process.execPath))).toThrow(/busybox-static/);
  });

  it('is built once and reused from the cache by content', () => {
    const dir = fakeKernelDir();
    const release = '6.1.0-99-amd64';
    const mods = join(dir, 'lib', 'modules', release);
    // boot modules of a fake kernel: every one is a tiny file
    const lines = BOOT_MODULES.map((m) => `kernel/${m}.ko:`);
    writeFileSync(join(mods, 'modules.dep'), lines.join('\n'));
    for (const l of lines) {
      mkdirSync(join(mods, 'kernel'), { recursive: true });
      writeFileSync(join(mods, l.slice(0, -1)), l);
    }
    const kernel = resolveKernel(dir);
    const cache = tempDir();
    const modules = resolveModules(readModuleIndex(kernel.modulesDir), BOOT_MODULES);
    const build = () => buildInitramfs(kernel, modules, { cacheDir: cache, agent: '/bin/busybox' });
    const a = build();
    const b = build();
    expect(b).toBe(a);
    const names = readCpio(gunzipSync(readFileSync(a))).map((e) => e.name);
    for (const m of BOOT_MODULES) expect(names).toContain(`lib/modules/${release}/kernel/${m}.ko`);
    writeFileSync(join(mods, 'kernel/9p.ko'), 'changed');
    expect(build()).not.toBe(a);
  });

  it('the init stops on a failed module, naming it, and powers off; else hands PID 1 to the agent', () => {
    const init = guestInitScript();
    expect(init).toMatch(/say module-failed "\$name"/);
    expect(init).toMatch(/poweroff -f/);
    expect(init).toMatch(/exec \/sbin\/ncf-agent\n$/);
  });
});

describe('guest kernel', () => {
  it('accepts a folder from get-kernel.sh and reads the release', () => {
    const dir = fakeKernelDir('6.1.0-99-amd64');
    const k = resolveKernel(dir);
    expect(k.release).toBe('6.1.0-99-amd64');
    expect(k.modulesDir).toBe(join(dir, 'lib', 'modules', '6.1.0-99-amd64'));
    expect(bzImageRelease(k.vmlinuz)).toBe('6.1.0-99-amd64');
  });

  it('accepts a vmlinuz file with an explicit modules folder', () => {
    const dir = fakeKernelDir('6.1.0-99-amd64');
    const img = join(tempDir(), 'bzImage');
    writeFileSync(img, fakeBzImage('6.1.0-99-amd64'));
    const k = resolveKernel(img, join(dir, 'lib', 'modules', '6.1.0-99-amd64'));
    expect(k.release).toBe('6.1.0-99-amd64');
  });

  it('gives clear errors for a wrong path, a non-kernel file and a kernel without modules', () => {
    expect(() => resolveKernel('/nonexistent/kernel')).toThrow(/does not exist.*get-kernel\.sh/);
    expect(() => resolveKernel(tempDir())).toThrow(/has no boot\/vmlinuz-\*/);
    expect(() => resolveKernel('/etc/hostname')).toThrow(/not a Linux kernel image/);
    expect(() => resolveKernel(fakeKernelDir('6.1.0-98-amd64', { modules: false }))).toThrow(KernelError);
    expect(() => resolveKernel(fakeKernelDir('6.1.0-98-amd64', { modules: false }))).toThrow(/has no modules.*depmod/);
  });

  it('is chosen from --kernel, then NETCONFORM_KERNEL, then the get-kernel.sh cache', () => {
    const flag = fakeKernelDir('6.1.0-1-amd64');
    const env = fakeKernelDir('6.1.0-2-amd64');
    const cache = tempDir();
    symlinkSync(fakeKernelDir('6.1.0-3-amd64'), join(cache, 'current')); // as get-kernel.sh links the newest
    expect(chooseKernel(flag, { NETCONFORM_KERNEL: env, NETCONFORM_KERNEL_CACHE: cache }).kernel?.release).toBe('6.1.0-1-amd64');
    expect(chooseKernel(undefined, { NETCONFORM_KERNEL: env, NETCONFORM_KERNEL_CACHE: cache }).kernel?.release).toBe('6.1.0-2-amd64');
    expect(chooseKernel(undefined, { NETCONFORM_KERNEL_CACHE: cache }).kernel?.release).toBe('6.1.0-3-amd64');
    expect(chooseKernel(undefined, { NETCONFORM_KERNEL: 'none', NETCONFORM_KERNEL_CACHE: cache }).kernel).toBeUndefined();
    expect(chooseKernel(undefined, { NETCONFORM_KERNEL_CACHE: tempDir() })).toEqual({ source: 'no kernel configured' });
    expect(chooseKernel(undefined, { NETCONFORM_KERNEL: '/nope' }).error).toMatch(/does not exist/);
  });
});

describe('qemu', () => {
  const base = { vmlinuz: '/k/vmlinuz', initramfs: '/c/initrd.gz', jobDir: '/tmp/ncf-vm-1-x', memoryMb: 2048, cpus: 2 };

  it('gives the guest no network device, the root read-only and the job folder writable', () => {
    const args = qemuArgs({ ...base, accel: 'tcg' });
    const after = (flag: string) => args.filter((_, i) => args[i - 1] === flag);
    expect(after('-nic')).toEqual(['none']);
    expect(args).toContain('-nodefaults');
    expect(args).toContain('-no-reboot');
    expect(after('-accel')).toEqual(['tcg']);
    const [root, job] = after('-virtfs');
    expect(root).toMatch(/^local,path=\/,mount_tag=hostroot,.*readonly=on/);
    expect(job).toMatch(/^local,path=\/tmp\/ncf-vm-1-x,mount_tag=ncfjob,/);
    expect(job).not.toMatch(/readonly/);
    expect(after('-kernel')).toEqual(['/k/vmlinuz']);
    expect(after('-append')[0]).toBe(kernelCmdline());
    expect(kernelCmdline()).toMatch(/console=ttyS0.*panic=-1/);
    expect(qemuArgs({ ...base, accel: 'kvm' })).toContain('host');
  });

  it('uses KVM only when /dev/kvm works and the CPU shows vmx or svm', () => {
    const vmx = 'flags\t\t: fpu vme vmx sse\n';
    const none = 'flags\t\t: fpu vme sse hypervisor\n';
    expect(chooseAccel({}, vmx, true).accel).toBe('kvm');
    expect(chooseAccel({}, 'flags : svm\n', true).accel).toBe('kvm');
    expect(chooseAccel({}, none, true)).toEqual({ accel: 'tcg', reason: expect.stringMatching(/no vmx\/svm/) });
    expect(chooseAccel({}, vmx, false).accel).toBe('tcg');
    expect(chooseAccel({ NETCONFORM_VM_ACCEL: 'kvm' }, none, false).accel).toBe('kvm');
  });
});

describe('placement', () => {
  const sc = (id: string, requires: string[]) => ({ id, requires }) as unknown as Scenario;
  const missing = new Map([['8021q', 'Unknown device type']]);
  const list = [sc('plain', []), sc('vlan', ['8021q']), sc('mv', ['macvlan'])];

  it('sends scenarios the host kernel cannot run to the microVM when a kernel is configured', () => {
    expect(placeScenarios(list, missing, { vmAvailable: true }).map((p) => p.where)).toEqual(['host', 'vm', 'host']);
  });

  it('skips them, naming the feature and how to get a kernel, when none is', () => {
    const p = placeScenarios(list, missing, { vmAvailable: false });
    expect(p.map((x) => x.where)).toEqual(['host', 'skip', 'host']);
    expect(p[1].reason).toMatch(/lacks 8021q.*get-kernel\.sh/);
  });

  it('sends an Open vSwitch scenario to the microVM when the host kernel has no openvswitch datapath', () => {
    const noOvs = new Map([['openvswitch', 'no ovs_datapath netlink family: Unknown generic netlink family']]);
    const ovs = [sc('ovs', ['openvswitch']), sc('plain', [])];
    expect(placeScenarios(ovs, noOvs, { vmAvailable: true }).map((p) => [p.where, p.reason])).toEqual([
      ['vm', 'host kernel lacks openvswitch'],
      ['host', 'runs on any kernel'],
    ]);
    expect(placeScenarios(ovs, noOvs, { vmAvailable: false })[0].reason).toMatch(/lacks openvswitch.*get-kernel\.sh/);
  });

  it('sends everything to the microVM for run --kernel', () => {
    expect(placeScenarios(list, missing, { vmAvailable: true, allInVm: true }).map((p) => p.where)).toEqual(['vm', 'vm', 'vm']);
  });
});

describe('scenarios over guests side by side', () => {
  const vlan = loadScenarios([join(packageRoot(), 'scenarios', 'vlan')]).scenarios;
  const ids = (groups: Scenario[][]) => groups.map((g) => g.map((s) => s.id));

  it('gives the heaviest scenario (Open vSwitch: two daemons, slow ovs-vsctl) a guest of its own', () => {
    expect(vlan.map((s) => s.id).sort()).toEqual(['vlan-access-ports', 'vlan-access-ports-ovs', 'vlan-macvlan-8021q']);
    const groups = splitForGuests(vlan, 2);
    expect(groups).toHaveLength(2);
    expect(groups.find((g) => g.some((s) => s.id === 'vlan-access-ports-ovs'))).toHaveLength(1);
  });

  it('loses no scenario, keeps their order within a guest, and makes no empty guest', () => {
    for (const n of [1, 2, 3, 8]) {
      const groups = splitForGuests(vlan, n);
      expect(groups).toHaveLength(Math.min(n, vlan.length));
      expect(groups.every((g) => g.length > 0)).toBe(true);
      expect(groups.flat().map((s) => s.id).sort()).toEqual(vlan.map((s) => s.id).sort());
      for (const g of groups) expect(g.map((s) => vlan.indexOf(s))).toEqual([...g.map((s) => vlan.indexOf(s))].sort((a, b) => a - b));
    }
    expect(ids(splitForGuests(vlan, 1))).toEqual([vlan.map((s) => s.id)]);
  });

  it('keeps scenarios that share a daemon in one guest, also through a chain of them', () => {
    const keys: Record<string, string[]> = { 'vlan-access-ports-ovs': ['d1'], 'vlan-access-ports': ['d1', 'd2'], 'vlan-macvlan-8021q': ['d3'] };
    const groups = splitForGuests(vlan, 2, (sc) => keys[sc.id]);
    expect(groups.map((g) => g.map((s) => s.id).sort())).toContainEqual(['vlan-access-ports', 'vlan-access-ports-ovs']);
    expect(groups.map((g) => g.map((s) => s.id))).toContainEqual(['vlan-macvlan-8021q']);
    // d2 links the macvlan one to the others: one guest for all three
    keys['vlan-macvlan-8021q'] = ['d2'];
    expect(splitForGuests(vlan, 2, (sc) => keys[sc.id])).toEqual([vlan]);
  });
});

describe('guest plumbing', () => {
  it('reads the init status lines, with or without a kernel timestamp', () => {
    expect(guestStatus('[    2.350729] netconform-guest: module-failed 8021q insmod: can\'t insert')).toMatchObject({ event: 'module-failed', args: ['8021q', 'insmod:', "can't", 'insert'] });
    expect(guestStatus('netconform-guest: harness-ready 6.95')).toMatchObject({ event: 'harness-ready', args: ['6.95'] });
    expect(guestStatus('[    1.0] 9pnet: Installing 9P2000 support')).toBeUndefined();
  });

  it('strips the firmware escape sequences from console lines', () => {
    expect(stripTerminalControls('\x1bc\x1b[?7l\x1b[2Jnetconform-guest: init 1.9')).toBe('netconform-guest: init 1.9');
  });

  it('keeps the tail of a long console for messages', () => {
    const log = Array.from({ length: 100 }, (_, i) => `line ${i}`).join('\n');
    const tail = consoleTail(log, 3);
    expect(tail.split('\n')).toEqual(['… (97 earlier lines in the JUnit system-out)', 'line 97', 'line 98', 'line 99']);
  });

  it('gc kills only the qemu whose command line names the job folder of a dead run, and removes the folder', async () => {
    const base = tempDir();
    const deadPid = 4194000; // above pid_max of most systems: a run that is gone
    const mine = join(base, `ncf-vm-${deadPid}-aaaaaa`);
    const other = join(base, `ncf-vm-${deadPid}-bbbbbb`);
    const live = join(base, `ncf-vm-${process.pid}-cccccc`);
    for (const d of [mine, other, live]) mkdirSync(d);
    const ours = spawn('sh', ['-c', 'sleep 30', mine], { stdio: 'ignore' }); // cmdline names the folder
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      writeFileSync(join(mine, 'qemu.pid'), String(ours.pid));
      writeFileSync(join(other, 'qemu.pid'), String(stranger.pid));
      const gone = new Promise((r) => ours.once('exit', r));
      const r = gcGuests({ dir: base });
      expect(r.killed).toEqual([ours.pid]);
      expect(r.removed.sort()).toEqual([mine, other].sort());
      await gone;
      expect(stranger.exitCode).toBeNull();
      expect(existsSync(live)).toBe(true); // a live run's folder stays (gc --all takes it)
    } finally {
      stranger.kill('SIGKILL');
      ours.kill('SIGKILL');
    }
  });
});
