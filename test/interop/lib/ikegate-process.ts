/**
 * Runs the real `ikegate` command (services/cli) inside a namespace, as a user would, and reads
 * its pino log lines back (one JSON object per line; `msg` is the event name). The control API is
 * reached from inside the namespace with a one-shot `node -e fetch(...)`.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
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

  /** The control API's /metrics (Prometheus text); read samples with `metricValue`. */
  metrics(): string {
    return String(this.api('GET', '/metrics').body);
  }

  /**
   * SIGKILL to the process this object started and every descendant (`ikegate connect` with a TUN
   * re-executes itself: the child holds the sockets), deepest first, so nothing can say goodbye
   * (no DELETE, no orderly close). Returns the pids signalled.
   */
  killHard(): number[] {
    const root = this.#proc?.pid;
    if (root === undefined || this.#proc?.exitCode !== null || this.#proc?.signalCode !== null) return [];
    const pids = [root, ...descendants(root)].reverse();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    return pids;
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

/** Pids of every live descendant of `pid`, breadth first (from /proc/<pid>/stat's ppid). */
function descendants(pid: number): number[] {
  const parentOf = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parentOf.set(ppid, [...(parentOf.get(ppid) ?? []), Number(name)]);
    } catch {
      // exited while we looked
    }
  }
  const out: number[] = [];
  for (let queue = [pid]; queue.length > 0;) {
    const children = queue.flatMap((p) => parentOf.get(p) ?? []);
    out.push(...children);
    queue = children;
  }
  return out;
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
  /** dpd.intervalSeconds (the gateway's default when omitted). */
  dpdSeconds?: number;
  /** ike.retransmit: first interval and how many retransmissions before the peer is dead. */
  retransmit?: { initialMs: number; maxRetransmits: number };
  /** failover.waitSeconds: how long an SA whose TCP stream closed waits for its peer. */
  failoverWaitSeconds?: number;
}): string {
  const optional = [
    o.dpdSeconds !== undefined ? `dpd: { intervalSeconds: ${o.dpdSeconds} }` : '',
    o.retransmit
      ? `ike: { retransmit: { initialMs: ${o.retransmit.initialMs}, maxRetransmits: ${o.retransmit.maxRetransmits} } }`
      : '',
    o.failoverWaitSeconds !== undefined
      ? `failover: { policy: wait-for-reconnect, waitSeconds: ${o.failoverWaitSeconds} }`
      : '',
  ].filter((l) => l !== '');
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
${optional.map((l) => `${l}\n`).join('')}${o.extra ?? ''}`;
}

/**
 * One sample from Prometheus text (`/metrics`): the value of `name` whose labels include all of
 * `labels` (in any order), or 0 when there is no such line (a counter never incremented).
 */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = new Map([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) return Number(m[3]);
  }
  return 0;
}

/** When ikegate logged `line` (ms since the epoch): pino's `time`, an ISO string or a number. */
export function logTime(line: LogLine): number {
  const t = line.time;
  const ms = typeof t === 'number' ? t : Date.parse(String(t));
  if (!Number.isFinite(ms)) throw new Error(`no time on log line ${JSON.stringify(line)}`);
  return ms;
}
