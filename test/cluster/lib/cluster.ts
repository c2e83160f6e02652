/**
 * A whole ikegate cluster on loopback for tests: a real redis-server, N workers, M edges and the
 * control process, each the real `ikegate` command in its own process (the same config file plus
 * role flags), and `ikegate loadgen` processes as the peers. Ports are ones the kernel just handed
 * out as free, so parallel suites do not collide; `stop()` ends everything it started.
 *
 * The API needs a bearer token (issue #10): `start()` writes an access file with a viewer, an
 * operator and an admin token into the cluster's directory and names it in the config, and every
 * call through `api`/`ctl` carries one (admin unless a role is given). Worker and edge admin
 * endpoints take the same tokens under `/internal/v1/...`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type ApiAccess,
  type ApiRole,
  freePort,
  makeTestPki,
  type TestPki,
  writeApiAccess,
} from '@ikegate/testkit';
import { type RedisServer, startRedisServer } from '../../../libs/store/src/testing/redis-server.js';
import {
  type SentinelTopology,
  startSentinelTopology,
} from '../../../libs/store/src/testing/redis-sentinel.js';
import { allocatorEnv } from '../../../services/cli/src/allocator.js';

export const IKEGATE_BIN = new URL('../../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;
export const PSK = 'cluster-test-psk-3e8a51f02c';
const HOST = '127.0.0.1';

export type Line = Record<string, unknown> & { msg?: string };

/** One `ikegate` process and its JSON log lines. */
export class Proc {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  readonly child: ChildProcess;
  #buf = '';

  constructor(
    readonly name: string,
    args: string[],
    netns?: string,
  ) {
    // Every role on the allocator the image gives it (Containerfile LD_PRELOAD: jemalloc, when
    // installed here; services/cli allocator.ts), not only those that re-execute for a TUN device.
    const env = { ...process.env, ...allocatorEnv() };
    this.child = netns
      ? spawn('ip', ['netns', 'exec', netns, process.execPath, IKEGATE_BIN, ...args], {
          stdio: ['ignore', 'pipe', 'pipe'],
          env,
        })
      : spawn(process.execPath, [IKEGATE_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      for (let nl = this.#buf.indexOf('\n'); nl >= 0; nl = this.#buf.indexOf('\n')) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line) as Line);
        } catch {
          this.lines.push({ msg: 'non-json', line });
        }
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => this.stderr.push(d.toString()));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  async waitFor(msg: string, timeoutMs = 20_000, match: (l: Line) => boolean = () => true): Promise<Line> {
    return this.waitLine((x) => x.msg === msg && match(x), msg, timeoutMs);
  }

  async waitLine(match: (l: Line) => boolean, what: string, timeoutMs = 20_000): Promise<Line> {
    const until = Date.now() + timeoutMs;
    const msg = what;
    for (;;) {
      const l = this.lines.find(match);
      if (l) return l;
      if (!this.alive)
        throw new Error(`${this.name} exited before ${msg}: ${this.stderr.join('').slice(-2000)}`);
      if (Date.now() > until)
        throw new Error(
          `${this.name}: no ${msg} in ${timeoutMs} ms; last: ${JSON.stringify(this.lines.slice(-5))}`,
        );
      await sleep(50);
    }
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 10_000): Promise<void> {
    if (!this.alive) return;
    // A process holding a TUN re-executed itself (libs/tun): its child does the work, and would
    // outlive a SIGKILLed launcher (keeping our stdio pipes, so this test process never exits).
    if (signal === 'SIGKILL' && this.child.pid) spawnSync('pkill', ['-KILL', '-P', String(this.child.pid)]);
    this.child.kill(signal);
    const until = Date.now() + timeoutMs;
    while (this.alive && Date.now() < until) await sleep(50);
    if (this.alive) this.child.kill('SIGKILL');
  }
}

export interface WorkerProc {
  readonly id: string;
  readonly admin: number;
  readonly proc: Proc;
}
export interface EdgeProc {
  readonly id: string;
  /** Where its IKE/TCP listeners are (127.0.0.1 unless `addEdge` was given an address). */
  readonly address: string;
  readonly admin: number;
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
  /** RFC 9329 over TLS (on 127.0.0.1 unless `addEdge` was given an address). */
  readonly tls: number;
  readonly proc: Proc;
}

export interface ApiResponse {
  readonly status: number;
  readonly body: unknown;
  readonly headers: Headers;
}

export interface ApiInit {
  readonly method?: string;
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Whose token to send (default admin); `none` sends no Authorization header. */
  readonly role?: ApiRole | 'none';
}

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'ikegate-cluster-'));
  readonly configFile = join(this.dir, 'ikegate.yaml');
  readonly workers: WorkerProc[] = [];
  readonly edges: EdgeProc[] = [];
  readonly loadgens: Proc[] = [];
  control: Proc | undefined;
  redis: RedisServer | undefined;
  /** With `sentinelRedis`: the Redis topology (`redis.port` is then its first primary). */
  sentinel: SentinelTopology | undefined;
  controlPort = 0;
  #access: ApiAccess | undefined;
  #pki: TestPki | undefined;

  constructor(
    readonly leaseTtlMs = 3000,
    /** Data-plane variant: edges on all addresses, the peers' virtual IPs from `pool`. */
    readonly dataplane?: { readonly pool: string; readonly localTs: string },
    /** Redis over TLS only, with an ACL user (the default user off): `cluster.redis.username/password/tls`. */
    readonly secureRedis = false,
    /**
     * Redis as a Sentinel topology (primary, replica, 3 sentinels; testing/redis-sentinel.ts),
     * reached through `cluster.redis.sentinels` (replicaAcks 1, the default with sentinels).
     */
    readonly sentinelRedis = false,
  ) {}

  /** With `secureRedis`: the ACL user the cluster uses. */
  static readonly REDIS_USER = { name: 'ikegate', password: 'redis-acl-secret-7d1c' };

  /** A relay certificate from the cluster's relay CA with subject CN `cn` (after `start()`). */
  issueRelayCert(name: string, cn: string): { certificate: string; key: string } {
    if (!this.#pki) throw new Error('TestCluster.start() first');
    return this.#pki.issue(name, cn);
  }

  /** The API tokens (written by `start()`). */
  get access(): ApiAccess {
    if (!this.#access) throw new Error('TestCluster.start() first');
    return this.#access;
  }

  /** A port the kernel just handed out as free (TCP and UDP), so parallel suites never collide. */
  port(): Promise<number> {
    return freePort();
  }

  async start(): Promise<void> {
    this.controlPort = await this.port();
    // The relay runs over mutual TLS: one CA, a certificate every worker shares (CN worker), and
    // one per edge (CN edge:<id>) issued in addEdge.
    this.#pki = makeTestPki(this.dir);
    const workerCert = this.#pki.issue('relay-worker', 'worker');
    const edgeTls = this.#pki.issue('edge-tls', 'gw.example.org', 'DNS:gw.example.org');
    const redisCert = this.secureRedis ? this.#pki.issue('redis-server', 'redis', 'IP:127.0.0.1') : undefined;
    let r: RedisServer | string;
    if (this.sentinelRedis) {
      const topo = await startSentinelTopology();
      if (typeof topo === 'string') throw new Error(topo);
      this.sentinel = topo;
      r = { port: topo.nodes[0]!.port, stop: () => topo.stop() };
    } else {
      r = await startRedisServer(
        'redis-server',
        redisCert ? { tls: { ...redisCert, ca: this.#pki.ca }, user: TestCluster.REDIS_USER } : {},
      );
    }
    if (typeof r === 'string') throw new Error(r);
    this.redis = r;
    writeFileSync(join(this.dir, 'kek.hex'), randomBytes(32).toString('hex'));
    const redisSecurity = redisCert
      ? `, username: ${TestCluster.REDIS_USER.name}, password: ${TestCluster.REDIS_USER.password}, tls: { ca: ${this.#pki.ca} }`
      : '';
    this.#access = writeApiAccess(this.dir);
    writeFileSync(
      this.configFile,
      `identity: { id: gw.example.org }
listen:
  udp: { address: ${this.dataplane ? '0.0.0.0' : HOST} }
  tcp: { address: ${this.dataplane ? '0.0.0.0' : HOST} }
  tls: { address: ${HOST}, certificate: ${edgeTls.certificate}, key: ${edgeTls.key} }
control: { address: ${HOST}, port: ${this.controlPort}, accessFile: ${this.#access.file} }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
${this.dataplane ? `pools:\n  - { name: rw, cidr: ${this.dataplane.pool} }\n` : ''}peers:
  - name: load
    id: '*@example.org'
    auth: { psk: '${PSK}' }
    localTs: [${this.dataplane?.localTs ?? '10.0.0.0/8'}]
    remoteTs: [${this.dataplane ? 'dynamic' : '0.0.0.0/0'}]
${this.dataplane ? '    pool: rw\n' : ''}
dpd: { intervalSeconds: 0 }
dataplane:
  masquerade: { enabled: false }
log: { level: ${process.env.IKEGATE_TEST_LOG_LEVEL ?? 'info'} }
cluster:
  redis: ${
    this.sentinel
      ? `{ sentinels: [${this.sentinel.sentinels.map((n) => `{ host: ${n.host}, port: ${n.port} }`).join(', ')}], name: ${this.sentinel.name} }`
      : `{ host: ${HOST}, port: ${r.port}${redisSecurity} }`
  }
  kek: { file: kek.hex }
  leaseTtlMs: ${this.leaseTtlMs}
  relayTls: { ca: ${this.#pki.ca}, certificate: ${workerCert.certificate}, key: ${workerCert.key} }
`,
    );
  }

  async addWorker(id: string, tun?: string): Promise<WorkerProc> {
    const admin = await this.port();
    const relay = await this.port();
    const proc = new Proc(id, [
      'worker',
      '--config',
      this.configFile,
      '--id',
      id,
      '--relay',
      `${HOST}:${relay}`,
      '--admin',
      `${HOST}:${admin}`,
      ...(tun ? ['--tun', tun] : []),
    ]);
    const w = { id, admin, proc };
    this.workers.push(w);
    await proc.waitFor('worker-up');
    return w;
  }

  /**
   * An edge on loopback with free ports, or on `o.address` (an address of this namespace, e.g. a
   * veth end toward a peer's namespace) with the given UDP ports (strongSwan needs 500/4500).
   */
  async addEdge(id: string, o: { address?: string; ike?: number; natT?: number } = {}): Promise<EdgeProc> {
    const admin = await this.port();
    const ike = o.ike ?? (await this.port());
    const natT = o.natT ?? (await this.port());
    const tcp = await this.port();
    const tls = await this.port();
    const address = o.address ?? HOST;
    const cert = this.#pki!.issue(`relay-edge-${id}`, `edge:${id}`);
    const proc = new Proc(id, [
      'edge',
      '--relay-cert',
      cert.certificate,
      '--relay-key',
      cert.key,
      '--config',
      this.configFile,
      '--id',
      id,
      '--admin',
      `${HOST}:${admin}`,
      '--udp-ike',
      String(ike),
      '--udp-natt',
      String(natT),
      '--tcp',
      String(tcp),
      '--tls',
      String(tls),
      ...(o.address ? ['--address', o.address] : []),
    ]);
    const e = { id, address, admin, ike, natT, tcp, tls, proc };
    this.edges.push(e);
    await proc.waitFor('edge-up');
    return e;
  }

  async startControl(): Promise<void> {
    this.control = new Proc('control', ['control', '--config', this.configFile]);
    await this.control.waitFor('control-up');
  }

  /** Starts `ikegate loadgen --hold --json` against an edge; resolves with its summary once set up. */
  async loadgen(
    edge: EdgeProc,
    o: { count: number; transport: 'udp' | 'tcp'; idPrefix: string; concurrency?: number },
  ): Promise<{ proc: Proc; summary: Record<string, unknown> }> {
    const proc = this.spawnLoadgen(edge, { ...o, hold: true });
    const summary = await proc.waitLine(
      (l) => 'established' in l && 'attempted' in l,
      'loadgen summary',
      180_000,
    );
    return { proc, summary };
  }

  /**
   * `ikegate loadgen --json --quiet` against an edge, not waited for: `hold` keeps its SAs up until
   * stopped; otherwise `deleteAtEnd` deletes them (INFORMATIONAL DELETE) before it exits.
   */
  spawnLoadgen(
    edge: EdgeProc,
    o: {
      count: number;
      transport: 'udp' | 'tcp';
      idPrefix: string;
      concurrency?: number;
      rate?: number;
      hold?: boolean;
      deleteAtEnd?: boolean;
    },
  ): Proc {
    const proc = new Proc(`loadgen-${o.idPrefix}`, [
      'loadgen',
      '--server',
      edge.address,
      '--port-ike',
      String(edge.ike),
      '--port-natt',
      String(edge.natT),
      '--port-tcp',
      String(edge.tcp),
      '--transport',
      o.transport,
      '--count',
      String(o.count),
      '--concurrency',
      String(o.concurrency ?? 32),
      ...(o.rate !== undefined ? ['--rate', String(o.rate)] : []),
      '--id',
      `${o.idPrefix}-{n}@example.org`,
      '--remote-id',
      'gw.example.org',
      '--psk',
      PSK,
      '--ts',
      '10.0.0.0/8',
      '--timeout',
      '90',
      ...(o.hold ? ['--hold'] : []),
      ...(o.deleteAtEnd ? ['--delete-at-end'] : []),
      '--no-vip',
      '--json',
      '--quiet',
    ]);
    this.loadgens.push(proc);
    return proc;
  }

  /** `ikegate connect --no-tun --no-vip` over TCP to `edge`, with the other edges as alternates. */
  async client(edge: EdgeProc, id: string): Promise<Proc> {
    const alternates = this.edges
      .filter((e) => e !== edge)
      .flatMap((e) => ['--alternate', `${e.address}:${e.tcp}`]);
    const proc = new Proc(`connect-${id}`, [
      'connect',
      '--server',
      edge.address,
      '--port-tcp',
      String(edge.tcp),
      ...alternates,
      '--transport',
      'tcp',
      '--no-tun',
      '--no-vip',
      '--dpd',
      '0',
      '--id',
      id,
      '--remote-id',
      'gw.example.org',
      '--psk',
      PSK,
      '--ts',
      '10.0.0.0/8',
    ]);
    this.loadgens.push(proc);
    await proc.waitFor('ike-sa-established');
    return proc;
  }

  /** Any `ikegate` command, stopped with the cluster. */
  spawn(name: string, args: string[], netns?: string): Proc {
    const p = new Proc(name, args, netns);
    this.loadgens.push(p);
    return p;
  }

  /** The redis-server's pid (for SIGSTOP/SIGCONT). */
  redisPid(): number {
    const out = spawnSync('pgrep', ['-f', `redis-server .*:${this.redis!.port}`], {
      encoding: 'utf8',
    }).stdout;
    const pid = Number(out.trim().split('\n')[0]);
    if (!Number.isInteger(pid) || pid <= 0)
      throw new Error(`redis-server on port ${this.redis!.port} not found`);
    return pid;
  }

  /** One HTTP call to a process's API (control, or a worker's or edge's admin port), with a token. */
  async api(port: number, path: string, init: ApiInit = {}): Promise<ApiResponse> {
    const role = init.role ?? 'admin';
    const r = await fetch(`http://${HOST}:${port}${path}`, {
      method: init.method ?? 'GET',
      headers: {
        ...(role !== 'none' ? this.access.headers(role) : {}),
        ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await r.text();
    try {
      return { status: r.status, body: JSON.parse(text), headers: r.headers };
    } catch {
      return { status: r.status, body: text, headers: r.headers };
    }
  }

  /** A call to the control API. */
  async ctl(path: string, init: ApiInit = {}): Promise<ApiResponse> {
    return this.api(this.controlPort, path, init);
  }

  /** GET /v1/shards. */
  async shards(): Promise<ShardList> {
    const r = await this.ctl('/v1/shards');
    if (r.status !== 200) throw new Error(`GET /v1/shards: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body as ShardList;
  }

  /** Every SA the control API lists (all pages of GET /v1/sas, `query` as filters). */
  async allSas(query = ''): Promise<{ items: SaItem[]; unreachable: string[] }> {
    const items: SaItem[] = [];
    const unreachable = new Set<string>();
    let cursor: string | null = null;
    for (let pages = 0; pages < 1000; pages++) {
      const q = `limit=1000${query ? `&${query}` : ''}${cursor ? `&cursor=${cursor}` : ''}`;
      const r = await this.ctl(`/v1/sas?${q}`);
      if (r.status !== 200) throw new Error(`GET /v1/sas?${q}: ${r.status} ${JSON.stringify(r.body)}`);
      const page = r.body as SaList;
      items.push(...page.items);
      for (const w of page.unreachable) unreachable.add(w);
      cursor = page.next;
      if (cursor === null) return { items, unreachable: [...unreachable] };
    }
    throw new Error('GET /v1/sas: more than 1000 pages');
  }

  /** One worker's SAs (every page of its GET /internal/v1/sas), `query` as filters. */
  async workerSas(w: WorkerProc, query = ''): Promise<SaItem[]> {
    const out: SaItem[] = [];
    let after = '';
    for (let pages = 0; pages < 1000; pages++) {
      const q = `limit=1000${query ? `&${query}` : ''}${after ? `&after=${after}` : ''}`;
      const r = await this.api(w.admin, `/internal/v1/sas?${q}`);
      if (r.status !== 200)
        throw new Error(`${w.id} GET /internal/v1/sas?${q}: ${r.status} ${JSON.stringify(r.body)}`);
      const page = r.body as { items: SaItem[]; more: boolean };
      out.push(...page.items);
      if (!page.more || page.items.length === 0) return out;
      after = page.items.at(-1)!.spi;
    }
    throw new Error(`${w.id}: more than 1000 pages`);
  }

  /** Established SAs per worker, from each worker's admin API. */
  async sasByWorker(): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    for (const w of this.workers) {
      if (!w.proc.alive) continue;
      const sas = await this.workerSas(w, 'state=established').catch(() => undefined);
      if (sas)
        out.set(
          w.id,
          sas.map((s) => s.spi),
        );
    }
    return out;
  }

  async metric(port: number, name: string, labels: Record<string, string> = {}): Promise<number> {
    const text = String((await this.api(port, '/metrics', { role: 'none' })).body);
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
      if (!m || m[1] !== name) continue;
      const l = m[2] ?? '';
      if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
    }
    return sum;
  }

  async stop(): Promise<void> {
    // Killed for speed; but a bench taking CPU profiles (scripts/bench/lib/cpu-profile-preload.mjs)
    // needs the processes to exit, which is when they write them.
    const signal = process.env.IKEGATE_CPU_PROFILE_DIR ? 'SIGTERM' : 'SIGKILL';
    await Promise.all(this.loadgens.map((l) => l.stop(signal)));
    await Promise.all([...this.edges, ...this.workers].map((p) => p.proc.stop(signal)));
    await this.control?.stop(signal);
    await this.redis?.stop();
  }
}

/** An SA as GET /v1/sas and a worker's GET /internal/v1/sas list it (schemas.ts saOutput). */
export interface SaItem {
  readonly spi: string;
  readonly status: string;
  readonly peerId?: string;
  readonly peer?: string;
  readonly shard: number;
  readonly worker?: string;
  readonly epoch?: number;
  readonly edge?: string;
  readonly transport: string;
  readonly virtualIp?: string;
  readonly lastActivity?: string;
  readonly children: readonly unknown[];
}

export interface SaList {
  readonly items: SaItem[];
  readonly next: string | null;
  readonly counts: Record<string, number>;
  readonly unreachable: string[];
}

export interface ShardList {
  readonly count: number;
  readonly owned: number;
  readonly byWorker: Record<string, number>;
  readonly items: { shard: number; owner?: string; epoch?: number; expiresAt?: string }[];
}

/** Polls `f` until `ok` (bounded); returns the last value. */
export async function until<T>(f: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let v = await f();
  while (!ok(v) && Date.now() < end) {
    await sleep(200);
    v = await f();
  }
  return v;
}
