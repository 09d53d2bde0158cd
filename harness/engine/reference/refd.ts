// The reference engine's helper process (refd.c): it holds the containers' mount namespaces
// and serves the embedded DNS inside their network namespaces, as dockerd's own goroutines do.
import { LineProcess } from '../../util/line-process.js';
import { refdPath } from '../../native.js';

export class Refd {
  private constructor(private readonly proc: LineProcess) {}

  /** Started inside the lab host namespace, so a teardown that kills what is left there finds it. */
  static async start(hostNsPath: string): Promise<Refd> {
    return new Refd(await LineProcess.start(refdPath(), ['--netns', hostNsPath], 'reference engine helper (refd)'));
  }

  private async ok(cmd: string, args: (string | number)[]): Promise<string[]> {
    const w = await this.proc.request(cmd, args);
    if (w[0] !== 'ok') throw new Error(`refd ${cmd}: ${w.join(' ')}`);
    return w.slice(1);
  }

  /** A new mount namespace with these files bind-mounted over /etc; returns its path. */
  async mountNamespace(files: { hosts: string; resolv: string; hostname: string }): Promise<string> {
    return (await this.ok('M', [files.hosts, files.resolv, files.hostname]))[0];
  }

  async releaseMountNamespace(path: string): Promise<void> {
    await this.ok('F', [path]);
  }

  /** A resolver socket on 127.0.0.11 inside a network namespace: its handle and UDP port. */
  async openResolver(netnsPath: string): Promise<{ sock: number; port: number }> {
    const [sock, port] = await this.ok('D', [netnsPath]);
    return { sock: Number(sock), port: Number(port) };
  }

  /** What the resolver answers: name → addresses (replaces the previous table). */
  async setNames(sock: number, names: Map<string, string[]>): Promise<void> {
    const text = [...names].map(([n, ips]) => `${n} ${ips.join(' ')}`).join('\n');
    await this.ok('T', [sock, Buffer.from(text).toString('base64') || '-']);
  }

  async closeResolver(sock: number): Promise<void> {
    await this.ok('C', [sock]);
  }

  stop(): Promise<void> {
    return this.proc.stop();
  }
}
