/**
 * tcpdump inside a namespace for captures with bulk traffic (tens of MB through a tunnel): like
 * capture.ts's Capture, written packet by packet (--immediate-mode -U), but with a large kernel
 * buffer (-B) so the capture keeps up, and with tcpdump's own statistics read back at the end so a
 * test can tell "the kernel dropped packets before tcpdump saw them" from "not on the wire".
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CaptureStats {
  readonly captured: number;
  readonly receivedByFilter: number;
  readonly droppedByKernel: number;
}

export class BulkCapture {
  #proc: ChildProcess | undefined;
  #stderr = '';

  constructor(
    readonly netns: string,
    readonly iface: string,
    readonly file: string,
    readonly filter: string,
    /** tcpdump -B, in KiB. */
    readonly bufferKiB = 128 * 1024,
  ) {}

  async start(): Promise<void> {
    this.#proc = spawn(
      'ip',
      [
        'netns',
        'exec',
        this.netns,
        'tcpdump',
        '--immediate-mode',
        '-U',
        '-Z',
        'root',
        '-B',
        String(this.bufferKiB),
        '-i',
        this.iface,
        '-w',
        this.file,
        this.filter,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.#proc.stderr?.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    const until = Date.now() + 5000;
    while (!(existsSync(this.file) && statSync(this.file).size >= 24)) {
      if (Date.now() > until) throw new Error(`tcpdump did not start: ${this.#stderr}`);
      await sleep(20);
    }
    await sleep(100);
  }

  /** Stops tcpdump (bounded) and returns its statistics, or undefined if it printed none. */
  async stop(): Promise<CaptureStats | undefined> {
    const p = this.#proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      await sleep(200);
      p.kill('SIGTERM');
      const until = Date.now() + 5000;
      while (p.exitCode === null && p.signalCode === null && Date.now() < until) await sleep(20);
    }
    return this.stats;
  }

  get stats(): CaptureStats | undefined {
    const n = (what: string) =>
      /(\d+) packets? /.exec(this.#stderr.split('\n').find((l) => l.includes(what)) ?? '');
    const c = n('captured');
    const r = n('received by filter');
    const d = n('dropped by kernel');
    if (!c || !r || !d) return undefined;
    return { captured: Number(c[1]), receivedByFilter: Number(r[1]), droppedByKernel: Number(d[1]) };
  }

  get stderr(): string {
    return this.#stderr;
  }
}
