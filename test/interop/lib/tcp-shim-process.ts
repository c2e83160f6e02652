/**
 * Runs the real `ikegate tcp-shim` command inside a namespace, as a user would, and reads its JSON
 * log lines back (one object per line; `event` is the event name: listening, upstream_connected,
 * upstream_closed, closed, ...).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { IKEGATE_BIN } from './ikegate-process.js';

export type ShimLine = Record<string, unknown> & { event: string };

export class TcpShimProcess {
  readonly lines: ShimLine[] = [];
  readonly stderr: string[] = [];
  #proc: ChildProcess | undefined;
  #buf = '';

  constructor(readonly netns: string) {}

  /** Starts `ikegate tcp-shim <args>` in the namespace and waits (bounded) for `listening`. */
  async start(args: string[], timeoutMs = 20_000): Promise<ShimLine> {
    this.#proc = spawn(
      'ip',
      ['netns', 'exec', this.netns, process.execPath, IKEGATE_BIN, 'tcp-shim', ...args],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    this.#proc.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          const o = JSON.parse(line) as Record<string, unknown>;
          this.lines.push({ ...o, event: String(o.event ?? 'non-json') });
        } catch {
          this.lines.push({ event: 'non-json', line });
        }
      }
    });
    this.#proc.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    return this.waitFor('listening', { timeoutMs });
  }

  get exitCode(): number | null {
    return this.#proc?.exitCode ?? null;
  }

  count(event: string): number {
    return this.lines.filter((l) => l.event === event).length;
  }

  /** Resolves with the n-th line with this event; rejects after timeoutMs or if the shim exits. */
  async waitFor(event: string, opts: { timeoutMs?: number; n?: number } = {}): Promise<ShimLine> {
    const n = opts.n ?? 1;
    const until = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      const found = this.lines.filter((l) => l.event === event);
      if (found.length >= n) return found[n - 1]!;
      if (this.exitCode !== null)
        throw new Error(
          `tcp-shim exited (${this.exitCode}) before ${event}; stderr: ${this.stderr.join('')}`,
        );
      if (Date.now() > until)
        throw new Error(`no ${event} x${n} from tcp-shim; lines: ${JSON.stringify(this.lines.slice(-10))}`);
      await sleep(50);
    }
  }

  /** SIGTERM (the shim logs `closed` with its counters), then SIGKILL after timeoutMs. */
  async stop(timeoutMs = 5_000): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const until = Date.now() + timeoutMs;
    while (p.exitCode === null && p.signalCode === null && Date.now() < until) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}
