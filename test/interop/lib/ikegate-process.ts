/**
 * Runs the real `ikegate` command (services/cli) inside a namespace, as a user would, and reads
 * its pino log lines back (one JSON object per line; `msg` is the event name). The control API is
 * reached from inside the namespace with a one-shot `node -e fetch(...)`, with a bearer token from
 * the access file each process writes into its directory (put `access.file` in the config).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type ApiAccess, type ApiRole, writeApiAccess } from '@ikegate/testkit';

export const IKEGATE_BIN = new URL('../../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;

export type LogLine = Record<string, unknown> & { msg: string };

/** The fields of a `/v1/sas` item the interop suites read. */
export interface SaView {
  readonly spi: string;
  readonly status: string;
  readonly peerId?: string;
  readonly peer?: string;
  readonly transport: string;
  readonly remote: string;
  readonly virtualIp?: string;
  readonly children: readonly unknown[];
}

/** The fields of a `/v1/pools` item the interop suites read. */
export interface PoolView {
  readonly name: string;
  readonly size: number;
  readonly inUse: number;
}

/** The largest page `/v1/sas` gives (its `limit` maximum). */
const MAX_PAGE = 1000;

export class IkegateProcess {
  readonly lines: LogLine[] = [];
  readonly stderr: string[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-proc-'));
  /** Tokens for this process's control API: `access.file` goes in the config as control.accessFile. */
  readonly access: ApiAccess = writeApiAccess(this.dir);
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

  /**
   * Calls the control API inside the namespace with `role`'s bearer token (none when null);
   * returns status and parsed JSON (or text).
   */
  api(
    method: string,
    path: string,
    body?: unknown,
    role: ApiRole | null = 'admin',
  ): { status: number; body: unknown } {
    const headers = {
      ...(role !== null ? this.access.headers(role) : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    };
    const script = `fetch('http://127.0.0.1:${this.controlPort}${path}', { method: ${JSON.stringify(method)}, headers: ${JSON.stringify(headers)}, ${
      body === undefined ? '' : `body: ${JSON.stringify(JSON.stringify(body))}`
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

  /**
   * Every IKE SA on `GET /v1/sas` (`query` adds filters, e.g. `state=established`): pages of the
   * largest size, `next` followed as the cursor until it is null. Throws on a status other than 200
   * or a worker reported unreachable, so a caller never sees part of the table as the whole.
   */
  sas(query = ''): SaView[] {
    const out: SaView[] = [];
    for (let cursor: string | null = null; ;) {
      const q = [`limit=${MAX_PAGE}`, ...(query ? [query] : []), ...(cursor ? [`cursor=${cursor}`] : [])];
      const r = this.api('GET', `/v1/sas?${q.join('&')}`, undefined, 'viewer');
      if (r.status !== 200) throw new Error(`GET /v1/sas: ${r.status} ${JSON.stringify(r.body)}`);
      const page = r.body as { items: SaView[]; next: string | null; unreachable: string[] };
      if (page.unreachable.length > 0)
        throw new Error(`GET /v1/sas: workers unreachable: ${page.unreachable.join(', ')}`);
      out.push(...page.items);
      if (page.next === null) return out;
      cursor = encodeURIComponent(page.next);
    }
  }

  /** `GET /v1/pools`: every pool with its use (not paged). */
  pools(): PoolView[] {
    const r = this.api('GET', '/v1/pools', undefined, 'viewer');
    if (r.status !== 200) throw new Error(`GET /v1/pools: ${r.status} ${JSON.stringify(r.body)}`);
    return (r.body as { items: PoolView[] }).items;
  }

  /** One pool's `inUse` by name (the gatewayConfig pool is `rw`). */
  poolInUse(name = 'rw'): number {
    const pool = this.pools().find((p) => p.name === name);
    if (!pool) throw new Error(`no pool ${name} on GET /v1/pools`);
    return pool.inUse;
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
  /** control.accessFile (IkegateProcess.access.file): without it the API has no /v1 routes. */
  accessFile: string;
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
control: { address: 127.0.0.1, port: 8080, accessFile: '${o.accessFile}' }
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
