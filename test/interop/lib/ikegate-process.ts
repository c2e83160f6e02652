/**
 * Runs the real `ikegate` command (services/cli) inside a namespace, as a user would, and reads
 * its pino log lines back (one JSON object per line; `msg` is the event name). The control API is
 * reached from inside the namespace with a one-shot `node -e fetch(...)`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export const IKEGATE_BIN = new URL('../../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;

export type LogLine = Record<string, unknown> & { msg: string };

export class IkegateProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-proc-'));
  #proc: ChildProcess | undefined;
  #buf = '';

  constructor(
    readonly netns: string,
    readonly controlPort = 8080,
  ) {}

  /** Writes `config` (YAML text) to a file and starts `ikegate <args> --config file` in the namespace. */
  start(command: string[], config?: string): ChildProcess {
    const args = [...command];
    if (config !== undefined) {
      const file = join(this.dir, 'ikegate.yaml');
      writeFileSync(file, config);
      args.push('--config', file);
    }
    this.#proc = spawn('ip', ['netns', 'exec', this.netns, process.execPath, IKEGATE_BIN, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.#proc.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as LogLine);
        } catch {
          this.lines.push({ msg: 'non-json', line });
        }
      }
    });
    this.#proc.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
    return this.#proc;
  }

  get exitCode(): number | null {
    return this.#proc?.exitCode ?? null;
  }

  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  count(msg: string, match: (l: LogLine) => boolean = () => true): number {
    return this.lines.filter((l) => l.msg.startsWith(msg) && match(l)).length;
  }

  /** Resolves with the n-th line whose msg starts with `msg` (and matches); rejects after timeoutMs. */
  async waitFor(
    msg: string,
    opts: { timeoutMs?: number; n?: number; match?: (l: LogLine) => boolean } = {},
  ): Promise<LogLine> {
    const n = opts.n ?? 1;
    const match = opts.match ?? (() => true);
    const until = Date.now() + (opts.timeoutMs ?? 15_000);
    for (;;) {
      const found = this.lines.filter((l) => l.msg.startsWith(msg) && match(l));
      if (found.length >= n) return found[n - 1]!;
      if (this.exitCode !== null)
        throw new Error(`ikegate exited (${this.exitCode}) before ${msg}; stderr: ${this.stderr.join('')}`);
      if (Date.now() > until)
        throw new Error(
          `no ${msg} x${n} from ikegate; last lines: ${JSON.stringify(this.lines.slice(-15))} ${this.stderr.join('')}`,
        );
      await sleep(50);
    }
  }

  /** Calls the control API inside the namespace; returns status and parsed JSON (or text). */
  api(method: string, path: string, body?: unknown): { status: number; body: unknown } {
    const script = `fetch('http://127.0.0.1:${this.controlPort}${path}', { method: ${JSON.stringify(method)}, ${
      body === undefined
        ? ''
        : `headers: {'content-type': 'application/json'}, body: ${JSON.stringify(JSON.stringify(body))}`
    } }).then(async (r) => { const t = await r.text(); process.stdout.write(JSON.stringify({ status: r.status, text: t })); })`;
    const out = execFileSync('ip', ['netns', 'exec', this.netns, process.execPath, '-e', script], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    const r = JSON.parse(out) as { status: number; text: string };
    let parsed: unknown = r.text;
    try {
      parsed = JSON.parse(r.text);
    } catch {
      // not JSON (e.g. /metrics)
    }
    return { status: r.status, body: parsed };
  }

  /** SIGTERM, then SIGKILL if it has not exited within timeoutMs. */
  async stop(timeoutMs = 8_000): Promise<void> {
    const p = this.#proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill('SIGTERM');
    const until = Date.now() + timeoutMs;
    while (p.exitCode === null && p.signalCode === null && Date.now() < until) await sleep(50);
    if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  }
}

/** The YAML for a gateway in the Chain3 topology: one PSK road-warrior peer class with a pool. */
export function gatewayConfig(o: {
  listen: string;
  pool: string;
  psk: string;
  hostNet: string;
  outInterface: string;
  tun: string;
  extra?: string;
  childSeconds?: number;
  ikeSeconds?: number;
}): string {
  return `identity: { id: gw.example.org }
listen:
  udp: { address: ${o.listen} }
  tcp: { address: ${o.listen} }
  tls: { address: ${o.listen} }
control: { address: 127.0.0.1, port: 8080 }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
pools:
  - { name: rw, cidr: ${o.pool} }
peers:
  - name: road-warriors
    id: '*@example.org'
    auth: { psk: '${o.psk}' }
    pool: rw
    localTs: [${o.hostNet}]
    remoteTs: [dynamic]
lifetimes: { ikeSeconds: ${o.ikeSeconds ?? 14400}, childSeconds: ${o.childSeconds ?? 3600}, rekeyMarginSeconds: 60 }
dataplane:
  tun: { name: ${o.tun}, mtu: 1400 }
  masquerade: { enabled: true, outInterface: ${o.outInterface} }
log: { level: debug }
${o.extra ?? ''}`;
}
