// Starting the guest: the qemu command line (a pure function, unit-tested), the choice of
// accelerator, and the process itself, whose serial console is read line by line. The guest
// has no network device (-nic none): it sees the machine's root read-only and one job folder,
// and talks to the host over one virtio-serial port (its agent) and qemu's QMP monitor (to save
// a booted guest). Both are unix sockets this process listens on and qemu connects to.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { JOB_TAG, ROOT_TAG } from './guest-init.js';

export type Accel = 'kvm' | 'tcg';

export interface QemuConfig {
  vmlinuz: string;
  initramfs: string;
  /** host folder shared read-write as the job share */
  jobDir: string;
  accel: Accel;
  memoryMb: number;
  cpus: number;
  /** unix socket (listening here) for the guest agent's virtio-serial port */
  agentSocket: string;
  /** unix socket (listening here) for qemu's QMP monitor */
  qmpSocket: string;
  /** wait for a saved guest (QMP migrate-incoming) instead of booting the kernel */
  incoming?: boolean;
  /** qemu's -icount: the guest's clock counts its instructions, not the host's time */
  icount?: string;
  /** host folder shared read-only as the guest's root (the machine's "/") */
  rootDir?: string;
  /** extra kernel command line words */
  append?: string[];
}

/** The virtio-serial port name the agent looks for. */
export const AGENT_PORT = 'org.netconform.agent';

export const QEMU = 'qemu-system-x86_64';
/** A minimal firmware that boots a kernel directly, a few hundred ms faster than SeaBIOS under TCG. */
const QBOOT = '/usr/share/qemu/qboot.rom';

export function kernelCmdline(extra: string[] = []): string {
  // quiet + loglevel keep the console for the init's lines and real errors; panic=-1 turns a
  // dead PID 1 into a reboot, which -no-reboot turns into a qemu exit.
  return ['console=ttyS0', 'quiet', 'loglevel=3', 'panic=-1', 'mitigations=off', 'random.trust_cpu=on', 'printk.devkmsg=on', ...extra].join(' ');
}

export function qemuArgs(c: QemuConfig): string[] {
  // The root share spans several host file systems: remap inode numbers so they never collide.
  const share = (path: string, tag: string, readonly: boolean) => `local,path=${path},mount_tag=${tag},security_model=none${readonly ? ',readonly=on,multidevs=remap' : ''}`;
  return [
    '-nodefaults',
    '-no-user-config',
    '-nographic',
    '-no-reboot',
    '-machine', 'q35', ...(existsSync(QBOOT) ? ['-bios', QBOOT] : []),
    '-accel', c.accel,
    '-cpu', c.accel === 'kvm' ? 'host' : 'max',
    '-m', String(c.memoryMb),
    '-smp', String(c.cpus),
    '-kernel', c.vmlinuz,
    '-initrd', c.initramfs,
    '-append', kernelCmdline(c.append),
    '-nic', 'none',
    '-serial', 'stdio',
    '-virtfs', share(c.rootDir ?? '/', ROOT_TAG, true),
    '-virtfs', share(c.jobDir, JOB_TAG, false),
    '-device', 'virtio-serial-pci,id=vser',
    '-chardev', `socket,id=agent,path=${c.agentSocket}`,
    '-device', `virtserialport,bus=vser.0,chardev=agent,name=${AGENT_PORT}`,
    '-chardev', `socket,id=qmp,path=${c.qmpSocket}`,
    '-mon', 'chardev=qmp,mode=control',
    ...(c.icount ? ['-icount', c.icount] : []),
    ...(c.incoming ? ['-incoming', 'defer'] : []),
  ];
}

export interface AccelChoice {
  accel: Accel;
  reason: string;
}

/**
 * KVM only when it can work: /dev/kvm usable and the CPU shows vmx or svm. A /dev/kvm without
 * them (a nested VM that hides virtualisation) leaves a KVM guest hanging at "Booting from ROM",
 * so software emulation (TCG) is chosen instead. NETCONFORM_VM_ACCEL=kvm|tcg overrides.
 */
export function chooseAccel(env: NodeJS.ProcessEnv = process.env, cpuinfo = readCpuinfo(), kvmUsable = canOpenKvm()): AccelChoice {
  const forced = env.NETCONFORM_VM_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `NETCONFORM_VM_ACCEL=${forced}` };
  if (!kvmUsable) return { accel: 'tcg', reason: '/dev/kvm is missing or not writable: software emulation' };
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1].split(/\s+/) ?? [];
  if (!flags.includes('vmx') && !flags.includes('svm')) return { accel: 'tcg', reason: '/dev/kvm exists but the CPU shows no vmx/svm flag (KVM guests hang here): software emulation' };
  return { accel: 'kvm', reason: '/dev/kvm and vmx/svm present' };
}

function readCpuinfo(): string {
  try {
    return readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return '';
  }
}

function canOpenKvm(): boolean {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function qemuInstalled(): boolean {
  return (process.env.PATH ?? '/usr/bin:/bin').split(':').some((d) => existsSync(`${d}/${QEMU}`));
}

/** A running qemu whose serial console arrives line by line. */
export class QemuProcess {
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: string }>;
  private constructor(private readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (e) => resolve({ code: null, signal: null, error: `${QEMU}: ${e.message}` }));
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Start qemu in its own process group (the run, not the terminal, decides when it ends), at a
   * lower CPU priority: an emulated CPU takes a whole core for as long as it may, while the
   * host's labs beside it forward packets in softirq threads and answer probes within a fixed
   * probe timeout; the guest's own limits are scaled by its slowness measured as it runs so.
   * (`nice` execs qemu: the pid is qemu's.)
   */
  static start(args: string[], onLine: (line: string) => void): QemuProcess {
    const child = spawn('nice', ['-n', '10', QEMU, ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const q = new QemuProcess(child);
    const read = (s: NodeJS.ReadableStream) => createInterface({ input: s }).on('line', (l) => onLine(l.replace(/\r$/, '')));
    read(child.stdout!);
    read(child.stderr!);
    return q;
  }

  /** SIGKILL by pid; idempotent, synchronous (safe in signal and exit handlers). */
  kill(): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}
