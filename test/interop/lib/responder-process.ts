/**
 * Runs test/interop/core-responder.ts (the protocol-core responder) inside a namespace and
 * collects its JSON-line events.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export class Responder {
  readonly events: Record<string, unknown>[] = [];
  #proc: ChildProcess | undefined;
  #buf = '';
  start(ns: string, config: Record<string, unknown>, extraEnv: Record<string, string> = {}): Promise<void> {
    const env = {
      ...process.env,
      IKEGATE_INTEROP: JSON.stringify(config),
      ...extraEnv,
      IKEGATE_INTEROP_LIFETIME_MS: '120000',
    };
    const script = new URL('../core-responder.ts', import.meta.url).pathname;
    this.#proc = spawn('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', script], {
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.#proc.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let nl = this.#buf.indexOf('\n');
      while (nl >= 0) {
        this.events.push(JSON.parse(this.#buf.slice(0, nl)) as Record<string, unknown>);
        this.#buf = this.#buf.slice(nl + 1);
        nl = this.#buf.indexOf('\n');
      }
    });
    return this.waitFor('listening', 15_000).then(() => undefined);
  }
  count(event: string): number {
    return this.events.filter((e) => e.event === event).length;
  }
  async waitFor(event: string, timeoutMs = 10_000, n = 1): Promise<Record<string, unknown>> {
    const until = Date.now() + timeoutMs;
    while (this.count(event) < n) {
      if (Date.now() > until) throw new Error(`no ${event} event; got ${JSON.stringify(this.events)}`);
      await sleep(50);
    }
    return this.events.filter((e) => e.event === event)[n - 1]!;
  }
  stop(): void {
    this.#proc?.kill('SIGTERM');
  }
}
