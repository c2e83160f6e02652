/**
 * A worker in a cluster (ARCHITECTURE.md "State, leases and HA"):
 *
 * - Membership: every worker keeps a heartbeat record (id, relay address, admin address) with a
 *   TTL in the store; edges and other workers read the live set.
 * - Placement: every worker computes the same sticky-rendezvous plan (libs/cluster placeShards)
 *   from the live members and the current leases, and acquires the shards the plan gives it once
 *   their old lease is released or expired. A shard the plan moves away is drained: its dirty SAs
 *   are written, the lease released, the SAs forgotten (the new owner adopts them).
 * - Write-through: SAs that changed are written (sealed, fenced by the lease epoch) by a flusher
 *   that coalesces changes; failed writes stay dirty and are retried with back-off, counted on
 *   /metrics and logged, so a Redis outage delays writes but loses none while the worker lives.
 * - Fencing: a write rejected with FencedWriteError, or a renewal refused, means another worker
 *   holds the shard now: this worker drops the shard at once and never writes it again.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Redis, Cluster } from 'ioredis';
import { placeShards } from '@ikegate/cluster';
import { FencedWriteError, type Store, VERSION_KEY } from '@ikegate/store';
import { context, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { Attr, type Logger, type Metrics, SpanName, tracer, tracingActive } from '@ikegate/telemetry';
import { Counter, Gauge, Histogram } from 'prom-client';
import { PeerWatch } from './peer-watch.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';
import type { Persistence, Worker } from './worker.js';

export interface MemberInfo {
  readonly id: string;
  /** host:port of the worker's relay server (edges connect there); '' for an edge. */
  readonly relay: string;
  /** host:port of its admin HTTP (metrics, SAs). */
  readonly admin: string;
  /** Drained by an operator (POST /v1/workers/{id}/drain): placement gives it no shard. */
  readonly draining?: boolean;
  /** The managed configuration version it applied. */
  readonly configVersion?: number;
}

/** Set by the control API while a worker is drained; read by that worker each lease round. */
export const DRAIN_PREFIX = 'ikegate:drain:worker:';
export const EDGE_MEMBER_PREFIX = 'ikegate:edge:';

/** The live set of workers. */
export interface Membership {
  heartbeat(info: MemberInfo, ttlMs: number): Promise<void>;
  leave(id: string): Promise<void>;
  list(): Promise<MemberInfo[]>;
  /** Whether an operator drained worker `id`; absent: never. */
  draining?(id: string): Promise<boolean>;
  /**
   * Ends member `id`'s record if it still names `relay` (it was seen dead there); true when a
   * record was removed. Its leases may then be taken at once (LeaseTable.acquire takeFrom).
   */
  evict?(id: string, relay: string): Promise<boolean>;
  /**
   * Shards taken from a worker that was gone (died, paused past its record), remembered for
   * `ttlMs`: placement does not give them back to it when it returns (no second move).
   */
  recordMoves?(
    moves: readonly { readonly shard: number; readonly from: string }[],
    ttlMs: number,
  ): Promise<void>;
  /** The remembered moves still in force: shard -> the worker it must not go back to. */
  moves?(): Promise<Map<number, string>>;
}

/** How long a shard taken from a gone worker stays away from it (placement `avoid`). */
export const MOVE_MEMORY_MS = 60 * 60_000;
/**
 * How long an SA's IKE messages wait for its state to reach the store (write-ahead) before they
 * go out anyway (counted in ikegate_store_durable_timeouts_total): a Redis outage delays IKE by
 * this much, it does not stop it.
 */
export const DURABLE_WAIT_MS = 1000;
/**
 * SAs a worker hands over for balance (not for drains or deaths) per periodic interval (a third of
 * the lease TTL): shards are released until this many SAs moved in the interval, so empty shards (a
 * forming cluster) move at once and a loaded worker sheds its share over several intervals instead
 * of in one burst. Counted per interval, not per round: the rounds the lease watch runs after each
 * release would otherwise shed the next share 100 ms later.
 */
export const MAX_REBALANCE_SAS_PER_INTERVAL = 1000;
/**
 * Between rounds the lease table's version (moved by every acquire and release, not by renewals)
 * is read this often, and a round runs when it moves: a shard another worker released (a
 * rebalance, a drain, a worker stopping) is taken within this, not a whole tick (a third of the
 * lease TTL) later, while no worker holds it and its SAs are in none. It used to poll only while
 * this worker's plan awaited a shard a live member held; a drain or a stop that this worker's
 * last round had not seen coming then cost every SA of the drained worker up to a tick (pings
 * lost in real-pods CI, 2026-12-06; `ikegate drill drain-worker`: p99 1.3-2.4 s, 2026-12-07).
 * One GET per worker per interval (10 a second), whatever the load.
 */
export const HANDOFF_POLL_MS = 100;

/**
 * A shard this worker could not take (the listing of its SAs failed: a Redis error) is tried again
 * this long after, then twice as long after each further failure, up to a tick: a failure that
 * lasts must not make every round fail nor move the lease version (and so run a round in every
 * worker and edge) ten times a second. A timer runs the round that retries it.
 */
export const TAKE_RETRY_MS = 500;
const MOVES_KEY = 'ikegate:placement:moved';

const MEMBER_PREFIX = 'ikegate:member:';

export interface MembershipOptions {
  /**
   * The cluster secret (from the KEK): records are written with an HMAC-SHA256 over their content
   * and key, and records without a valid one are ignored by list() (issue #11: one forged
   * `ikegate:member:*` key had made a worker give half its shards to nobody).
   */
  readonly secret?: Uint8Array;
  /** A record under our prefix that list() ignored, and why (log and count it). */
  readonly onRejected?: (key: string, why: 'unauthenticated' | 'malformed') => void;
  /**
   * heartbeat() also drops from the index the ids whose records are gone (expired: a member that
   * crashed) this often, in ms (default MEMBER_FULL_SCAN_MS). list() does it at every call, but
   * the edges' index is listed only by the control API when asked: without this, every crashed
   * edge pod (a random name each) would stay in it, and in every later list's read.
   */
  readonly pruneEveryMs?: number;
}

/**
 * A full SCAN for member keys this often per process, whenever the index is empty, and at every
 * list() while the last scan found records without an entry: it finds members that write none (a
 * version before the index, during a rolling upgrade or a rollback) and adds them to it.
 */
export const MEMBER_FULL_SCAN_MS = 30_000;

/**
 * Membership in Redis: one key per member with a TTL, and an index (a set of the member ids,
 * `<prefix without its last colon>-index`) so that list() reads the members' keys, not the whole
 * keyspace: with 100,000 SAs (200,000 keys) a SCAN for the member keys took ~170 ms and ~110 ms
 * of Redis CPU, and the lease watch and the edges' refreshes list the members in every round.
 * Ids whose key expired are dropped from the index when list() finds them gone. Workers use the
 * default prefix; edges `EDGE_MEMBER_PREFIX`.
 */
export class RedisMembership implements Membership {
  readonly #macKey: Buffer | undefined;
  readonly #indexKey: string;
  #lastFullScan = 0;
  #lastPrune = 0;
  /** The last full scan found records without an index entry. */
  #unindexedSeen = false;

  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix = MEMBER_PREFIX,
    private readonly options: MembershipOptions = {},
  ) {
    this.#macKey =
      options.secret === undefined
        ? undefined
        : createHmac('sha256', options.secret).update('ikegate member record v1').digest();
    if (!prefix.endsWith(':')) throw new Error(`membership prefix ${prefix} must end with ':'`);
    this.#indexKey = `${prefix.slice(0, -1)}-index`;
  }

  #mac(key: string, body: string): string {
    return createHmac('sha256', this.#macKey!).update(key).update('\0').update(body).digest('base64url');
  }

  async heartbeat(info: MemberInfo, ttlMs: number): Promise<void> {
    const key = `${this.prefix}${info.id}`;
    const body = JSON.stringify(info);
    const value = this.#macKey ? JSON.stringify({ body, mac: this.#mac(key, body) }) : body;
    await this.client.set(key, value, 'PX', ttlMs);
    await this.client.sadd(this.#indexKey, info.id);
    if (Date.now() - this.#lastPrune >= (this.options.pruneEveryMs ?? MEMBER_FULL_SCAN_MS)) {
      this.#lastPrune = Date.now();
      // Not awaited, best-effort: the record is written, which is what the heartbeat is for (and
      // a slow prune must not make it miss its deadline).
      void this.#prune().catch(() => undefined);
    }
  }

  /** Drops the index entries whose records are gone (see pruneEveryMs). */
  async #prune(): Promise<void> {
    const ids = await this.client.smembers(this.#indexKey);
    if (ids.length === 0) return;
    const values = await this.#getAll(ids.map((id) => `${this.prefix}${id}`));
    await this.#dropGone(ids.filter((_, i) => values[i] === null));
  }

  /** Takes `gone` (ids whose records were missing) out of the index, except any re-created since. */
  async #dropGone(gone: readonly string[]): Promise<void> {
    if (gone.length === 0) return;
    await this.client.srem(this.#indexKey, ...gone);
    // A member whose heartbeat re-created its record between our read and the SREM (its SADD
    // found the id still there) must not stay out of the index until its next heartbeat: its
    // record is written before its SADD, so reading the records again after the SREM finds it.
    const again = await this.#getAll(gone.map((id) => `${this.prefix}${id}`));
    const back = gone.filter((_, i) => again[i] !== null);
    if (back.length > 0) await this.client.sadd(this.#indexKey, ...back);
  }

  /** The record stored under `key`, if it is well formed and (with a secret) authentic. */
  #open(key: string, value: string): MemberInfo | undefined {
    try {
      let body = value;
      if (this.#macKey) {
        const sealed = JSON.parse(value) as { body?: unknown; mac?: unknown };
        const mac = typeof sealed.mac === 'string' ? Buffer.from(sealed.mac) : Buffer.alloc(0);
        const want = typeof sealed.body === 'string' ? Buffer.from(this.#mac(key, sealed.body)) : undefined;
        if (!want || mac.length !== want.length || !timingSafeEqual(mac, want)) {
          this.options.onRejected?.(key, 'unauthenticated');
          return undefined;
        }
        body = sealed.body as string;
      }
      const m = JSON.parse(body) as MemberInfo;
      if (typeof m.id === 'string' && typeof m.relay === 'string' && key === `${this.prefix}${m.id}`)
        return m;
    } catch {
      // falls through: not a record of ours
    }
    this.options.onRejected?.(key, 'malformed');
    return undefined;
  }

  async leave(id: string): Promise<void> {
    await this.client.del(`${this.prefix}${id}`);
    await this.client.srem(this.#indexKey, id);
  }

  async recordMoves(
    moves: readonly { readonly shard: number; readonly from: string }[],
    ttlMs: number,
  ): Promise<void> {
    if (moves.length === 0) return;
    const until = Date.now() + ttlMs;
    await this.client.hset(MOVES_KEY, ...moves.flatMap((m) => [String(m.shard), `${m.from}|${until}`]));
  }

  async moves(): Promise<Map<number, string>> {
    const all = await this.client.hgetall(MOVES_KEY);
    const now = Date.now();
    const out = new Map<number, string>();
    const expired: string[] = [];
    for (const [field, value] of Object.entries(all)) {
      const at = value.lastIndexOf('|');
      const shard = Number(field);
      const until = Number(value.slice(at + 1));
      if (at <= 0 || !Number.isInteger(shard) || !(until > now)) expired.push(field);
      else out.set(shard, value.slice(0, at));
    }
    if (expired.length > 0) await this.client.hdel(MOVES_KEY, ...expired);
    return out;
  }

  async evict(id: string, relay: string): Promise<boolean> {
    // One key: compare and delete atomically (a restarted worker at another address is kept).
    const r = await this.client.eval(
      `local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local ok, m = pcall(cjson.decode, v)
if ok and type(m) == 'table' and type(m.body) == 'string' then ok, m = pcall(cjson.decode, m.body) end
if not ok or type(m) ~= 'table' or m.relay ~= ARGV[1] then return 0 end
return redis.call('DEL', KEYS[1])`,
      1,
      `${this.prefix}${id}`,
      relay,
    );
    return r === 1;
  }

  /** Whether an operator drained worker `id` (control API). */
  async draining(id: string): Promise<boolean> {
    return (await this.client.exists(`${DRAIN_PREFIX}${id}`)) === 1;
  }

  /**
   * Drains (or undrains) worker `id`; false when undraining one that was not drained. A drain also
   * moves the lease version, so every worker's lease watch runs a round within a poll: the drained
   * worker hands its shards over at once, not at its next periodic round (up to a third of the
   * lease TTL later). That move is best-effort: without it the drain starts at that periodic round.
   * An undrain does not move it, and only the worker's periodic round takes an undrain into account
   * (ShardOwner #round: the Helm chart's preStop hook undrains a worker's id for its successor just
   * before SIGTERM reaches the old process); the others then hand it its share, paced.
   */
  async setDraining(id: string, drain: boolean, actor: string): Promise<boolean> {
    if (drain) {
      await this.client.set(`${DRAIN_PREFIX}${id}`, JSON.stringify({ actor, at: Date.now() }));
      await this.client.incr(VERSION_KEY).catch(() => undefined);
      return true;
    }
    return (await this.client.del(`${DRAIN_PREFIX}${id}`)) === 1;
  }

  async list(): Promise<MemberInfo[]> {
    const ids = new Set(await this.client.smembers(this.#indexKey));
    if (ids.size === 0 || this.#unindexedSeen || Date.now() - this.#lastFullScan >= MEMBER_FULL_SCAN_MS) {
      const found = (await this.#scanIds()).filter((id) => !ids.has(id));
      this.#lastFullScan = Date.now();
      // Records without an entry (a worker of an older version writes none): scan at every list
      // until a scan finds none, so such a member is never missing from a round.
      this.#unindexedSeen = found.length > 0;
      for (const id of found) ids.add(id);
      if (found.length > 0) await this.client.sadd(this.#indexKey, ...found);
    }
    if (ids.size === 0) return [];
    const listed = [...ids];
    const keys = listed.map((id) => `${this.prefix}${id}`);
    const values = await this.#getAll(keys);
    const out: MemberInfo[] = [];
    const gone: string[] = [];
    values.forEach((v, i) => {
      if (v === null) return void gone.push(listed[i]!);
      const m = this.#open(keys[i]!, v);
      if (m) out.push(m);
    });
    // Expired (or left without saying so): not members any more. A heartbeat adds them again.
    await this.#dropGone(gone);
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  /** The ids of every key under our prefix (SCAN; one node in Cluster mode). */
  async #scanIds(): Promise<string[]> {
    const client = this.client as Redis;
    const ids: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 10_000; i++) {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
      for (const key of batch) ids.push(key.slice(this.prefix.length));
      cursor = next;
      if (cursor === '0') break;
    }
    return ids;
  }

  /** GET of each key: one MGET on a standalone Redis; one GET per key in Cluster mode (slots). */
  #getAll(keys: readonly string[]): Promise<(string | null)[]> {
    if ((this.client as Cluster).isCluster) return Promise.all(keys.map((k) => this.client.get(k)));
    return this.client.mget(...keys);
  }
}

export interface ShardOwnerOptions {
  readonly workerId: string;
  readonly relay: string;
  readonly admin: string;
  readonly store: Store;
  readonly members: Membership;
  readonly worker: Worker;
  readonly shardCount: number;
  readonly leaseTtlMs: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Coalescing delay for SA writes (default 20 ms). */
  readonly flushMs?: number;
  /** The managed configuration version applied, published with the heartbeat. */
  readonly configVersion?: () => number;
  /**
   * Watch the other workers' relay ports and take a dead one's shards at once (PeerWatch);
   * default true. Without it, a dead worker is noticed when its membership record expires.
   */
  readonly watchPeers?: boolean;
}

type Pending = { readonly kind: 'put' | 'delete'; readonly shard: number };

/** Store calls give up after this long (a stalled Redis must not stall write-through or leases). */
export const STORE_CALL_TIMEOUT_MS = 2000;

function withTimeout<T>(p: Promise<T>, ms = STORE_CALL_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`store call timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

export class ShardOwner implements Persistence {
  readonly #o: ShardOwnerOptions;
  readonly #owned = new Map<number, number>(); // shard -> epoch
  readonly #pending = new Map<string, Pending>(); // spi -> what to write
  #timer: NodeJS.Timeout | undefined;
  #flushTimer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  #backoffMs = 0;
  #stopped = false;
  #ticking = false;
  #draining = false;
  /** Another tick was asked for while one ran (a member died): run it right after. */
  #again = false;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  /** The last lease holder seen per shard (to know whom a lapsed lease belonged to). */
  #lastOwners: (string | undefined)[] = [];
  readonly #watch: PeerWatch | undefined;
  readonly #takeovers: Counter<'reason'>;
  readonly #takeFailures: Counter<'stage'>;
  readonly #writeFailures: Counter<'reason'>;
  readonly #writes: Counter<'kind'>;
  readonly #dirtyGauge: Gauge;
  readonly #ownedGauge: Gauge;
  readonly #writeSeconds: Histogram<'kind'>;
  readonly #takeoverSeconds: Histogram<'reason'>;
  /** Per SPI: times marked dirty (for write-ahead waiters), while a write is pending or running. */
  readonly #generation = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  readonly #waiters = new Map<string, { readonly generation: number; readonly resolve: () => void }[]>();
  #flushSoon: NodeJS.Immediate | undefined;
  readonly #durableTimeouts: Counter;
  /** When this worker learned that a member was gone (its verdict or the round that saw it). */
  readonly #goneSince = new Map<string, number>();
  /** Shards whose take failed: not tried again before `at`; `from`, the gone holder it was taken from. */
  readonly #takeRetry = new Map<number, { at: number; delayMs: number; from: string | undefined }>();
  /** Leases granted and not yet in #owned (their SAs being read): stop() releases them too. */
  readonly #taking = new Map<number, number>();
  /** Polls the lease version between rounds (#watchLeases). */
  #handoffTimer: NodeJS.Timeout | undefined;
  #handoffWatch = 0;
  #started = false;
  /** Rounds that failed in a row: the lease watch polls more slowly after each (up to a tick). */
  #failedRounds = 0;
  /** A periodic round was asked for while another ran: the next one is periodic. */
  #periodicPending = false;
  /** The periodic interval (a third of the lease TTL) and the balance moves made in the current one. */
  readonly #tickMs: number;
  #paceFrom = 0;
  #pacedSas = 0;

  constructor(o: ShardOwnerOptions) {
    this.#o = o;
    this.#tickMs = Math.max(100, Math.floor(o.leaseTtlMs / 3));
    const registers = [o.metrics.registry];
    this.#writeFailures = new Counter({
      name: 'ikegate_store_write_failures_total',
      help: 'SA writes to the store that failed and were kept for retry (or dropped when fenced)',
      labelNames: ['reason'],
      registers,
    });
    this.#writes = new Counter({
      name: 'ikegate_store_writes_total',
      help: 'SA records written to (put) or removed from (delete) the store',
      labelNames: ['kind'],
      registers,
    });
    this.#dirtyGauge = new Gauge({
      name: 'ikegate_store_pending_writes',
      help: 'SAs changed but not yet written to the store',
      registers,
    });
    this.#ownedGauge = new Gauge({ name: 'ikegate_shards_owned', help: 'Shard leases held', registers });
    this.#writeSeconds = new Histogram({
      name: 'ikegate_store_write_seconds',
      help: 'Latency of one fenced SA write (put) or removal (delete) in the store',
      labelNames: ['kind'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers,
    });
    this.#durableTimeouts = new Counter({
      name: 'ikegate_store_durable_timeouts_total',
      help: 'IKE messages sent before their SA state reached the store, after waiting the write-ahead limit',
      registers,
    });
    this.#takeoverSeconds = new Histogram({
      name: 'ikegate_shard_takeover_seconds',
      help: 'From learning that a shard holder was gone to that shard leased here with its SAs adopted',
      labelNames: ['reason'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
      registers,
    });
    this.#takeovers = new Counter({
      name: 'ikegate_shard_takeovers_total',
      help: 'Shards taken from a worker that was no longer a member (dead: its relay refused; lapsed: its record expired)',
      labelNames: ['reason'],
      registers,
    });
    this.#takeFailures = new Counter({
      name: 'ikegate_shard_take_failures_total',
      help: 'Shard leases granted here and handed back because the shard could not be taken (stage list: its SAs could not be listed)',
      labelNames: ['stage'],
      registers,
    });
    // Known label values start at 0, so alerts and dashboards see the series before the first event.
    this.#takeFailures.inc({ stage: 'list' }, 0);
    for (const reason of ['fenced', 'store_error']) this.#writeFailures.inc({ reason }, 0);
    this.#takeovers.inc({ reason: 'member_gone' }, 0);
    for (const reason of ['member_gone', 'lease_lapsed']) this.#takeoverSeconds.zero({ reason });
    if (o.watchPeers !== false && o.relay !== '')
      this.#watch = new PeerWatch({
        self: o.workerId,
        log: o.log,
        onDead: (id, relay) => void this.#memberDied(id, relay),
      });
  }

  /** The watch saw `id` die: end its membership and run a placement round now (fast takeover). */
  async #memberDied(id: string, relay: string): Promise<void> {
    const { members, log } = this.#o;
    const evicted = await withTimeout(members.evict?.(id, relay) ?? Promise.resolve(false)).catch(
      (e: Error) => {
        log.warn({ worker: id, err: e.message }, 'member-evict-failed');
        return false;
      },
    );
    log.warn({ worker: id, relay, evicted }, 'member-dead');
    if (!this.#goneSince.has(id)) this.#goneSince.set(id, Date.now());
    this.kick();
  }

  /** Runs a placement round as soon as possible (after the one running, if any). */
  kick(): void {
    if (this.#stopped) return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    void this.tick(false).catch((e: Error) => this.#o.log.warn({ err: e.message }, 'lease-tick-failed'));
  }

  get owned(): ReadonlyMap<number, number> {
    return this.#owned;
  }

  get pendingWrites(): number {
    return this.#pending.size;
  }

  /** An operator drained this worker: it releases its shards and takes none. */
  get draining(): boolean {
    return this.#draining;
  }

  // --- Persistence (called by the Worker) --------------------------------------------------------

  dirty(spi: string, shard: number): void {
    if (!this.#owned.has(shard)) return;
    this.#pending.set(spi, { kind: 'put', shard });
    this.#generation.set(spi, (this.#generation.get(spi) ?? 0) + 1);
    this.#scheduleFlush();
  }

  gone(spi: string, shard: number): void {
    if (!this.#owned.has(shard)) return;
    this.#pending.set(spi, { kind: 'delete', shard });
    this.#generation.set(spi, (this.#generation.get(spi) ?? 0) + 1);
    this.#scheduleFlush();
  }

  /**
   * Write-ahead for IKE: resolves once the SA's state as marked so far is in the store (flushed
   * now rather than on the batching timer), or after DURABLE_WAIT_MS when the store does not
   * answer. Undefined when nothing of it is pending or being written.
   */
  durable(spi: string): Promise<void> | undefined {
    if (!this.#pending.has(spi) && !this.#inFlight.has(spi)) return undefined;
    const generation = this.#generation.get(spi) ?? 0;
    return new Promise<void>((resolve) => {
      let done = false;
      const timer = setTimeout(() => {
        if (done) return;
        done = true;
        this.#durableTimeouts.inc();
        resolve();
      }, DURABLE_WAIT_MS);
      timer.unref();
      const list = this.#waiters.get(spi) ?? [];
      list.push({
        generation,
        resolve: () => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          resolve();
        },
      });
      this.#waiters.set(spi, list);
      if (this.#backoffMs === 0 && !this.#flushSoon && !this.#stopped)
        this.#flushSoon = setImmediate(() => {
          this.#flushSoon = undefined;
          void this.flush();
        });
    });
  }

  /** `spi`'s state up to `generation` is in the store (or moot: fenced, shard gone). */
  #settled(spi: string, generation: number): void {
    const list = this.#waiters.get(spi);
    if (list) {
      const left = list.filter((w) => w.generation > generation);
      for (const w of list) if (w.generation <= generation) w.resolve();
      if (left.length > 0) this.#waiters.set(spi, left);
      else this.#waiters.delete(spi);
    }
    if (!this.#pending.has(spi) && !this.#inFlight.has(spi) && !this.#waiters.has(spi))
      this.#generation.delete(spi);
  }

  #scheduleFlush(): void {
    this.#dirtyGauge.set(this.#pending.size);
    if (this.#flushTimer || this.#stopped) return;
    this.#flushTimer = setTimeout(
      () => {
        this.#flushTimer = undefined;
        void this.flush();
      },
      Math.max(this.#o.flushMs ?? 20, this.#backoffMs),
    );
    this.#flushTimer.unref();
  }

  /**
   * Writes every pending change (of one shard, when draining it); failures stay pending and are
   * retried with back-off. Flushes run one after another, so a drain that awaits its flush knows
   * every change of that shard marked before it was written (or failed and is still pending).
   */
  flush(onlyShard?: number): Promise<void> {
    const run = this.#chain.then(() => this.#flushNow(onlyShard));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #flushNow(onlyShard?: number): Promise<void> {
    const { store, worker, log } = this.#o;
    let failed = 0;
    const batch = [...this.#pending].filter(([, p]) => onlyShard === undefined || p.shard === onlyShard);
    await Promise.all(
      batch.map(async ([spi, p]) => {
        const epoch = this.#owned.get(p.shard);
        this.#pending.delete(spi);
        const generation = this.#generation.get(spi) ?? 0;
        if (epoch === undefined) return this.#settled(spi, generation);
        this.#inFlight.add(spi);
        try {
          let end: () => number;
          if (p.kind === 'put') {
            const snap = worker.snapshot(spi);
            if (!snap) {
              this.#inFlight.delete(spi);
              return this.#settled(spi, generation);
            }
            const bytes = encodeSnapshot(snap);
            end = this.#writeSeconds.startTimer({ kind: p.kind });
            await withTimeout(store.putSa(p.shard, epoch, spi, bytes));
          } else {
            end = this.#writeSeconds.startTimer({ kind: p.kind });
            await withTimeout(store.deleteSa(p.shard, epoch, spi));
          }
          end();
          this.#writes.inc({ kind: p.kind });
          this.#inFlight.delete(spi);
          this.#settled(spi, generation);
        } catch (e) {
          this.#inFlight.delete(spi);
          if (e instanceof FencedWriteError) {
            this.#writeFailures.inc({ reason: 'fenced' });
            this.#lose(p.shard, 'fenced-write');
            this.#settled(spi, generation);
            return;
          }
          failed++;
          this.#writeFailures.inc({ reason: 'store_error' });
          if (!this.#pending.has(spi)) this.#pending.set(spi, p);
          if (failed === 1)
            log.warn({ err: (e as Error).message, pending: this.#pending.size }, 'store-write-failed');
        }
      }),
    );
    this.#backoffMs = failed > 0 ? Math.min(Math.max(this.#backoffMs * 2, 100), 2000) : 0;
    if (this.#pending.size > 0) this.#scheduleFlush();
    else this.#dirtyGauge.set(0);
  }

  // --- leases ------------------------------------------------------------------------------------

  /**
   * The membership record lives one lease TTL and is refreshed on its own timer (every TTL/4), not
   * in the placement round: a long round (a takeover adopting many SAs) must not let it lapse.
   */
  async heartbeat(): Promise<void> {
    const { members, workerId, leaseTtlMs } = this.#o;
    await withTimeout(
      members.heartbeat(
        {
          id: workerId,
          relay: this.#o.relay,
          admin: this.#o.admin,
          ...(this.#draining ? { draining: true } : {}),
          ...(this.#o.configVersion ? { configVersion: this.#o.configVersion() } : {}),
        },
        leaseTtlMs,
      ),
    );
    // A heartbeat that was in flight when stop() left the member set wrote the record again: the
    // others would plan shards for a member that takes none until the record lapses (a TTL).
    if (this.#stopped) await members.leave(workerId).catch(() => undefined);
  }

  start(): void {
    this.#started = true;
    const beat = async () => {
      if (this.#stopped) return;
      await this.heartbeat().catch((e: Error) => this.#o.log.warn({ err: e.message }, 'heartbeat-failed'));
      if (!this.#stopped) {
        this.#heartbeatTimer = setTimeout(
          () => void beat(),
          Math.max(50, Math.floor(this.#o.leaseTtlMs / 4)),
        );
        this.#heartbeatTimer.unref();
      }
    };
    void beat();
    const every = this.#tickMs;
    const loop = async () => {
      if (this.#stopped) return;
      await this.tick().catch((e: Error) => this.#o.log.warn({ err: e.message }, 'lease-tick-failed'));
      if (!this.#stopped) {
        this.#timer = setTimeout(() => void loop(), every);
        this.#timer.unref();
      }
    };
    void loop();
  }

  /**
   * One round: heartbeat, plan, renew or release what we hold, acquire what the plan gives us.
   * `periodic`: the round of the periodic timer (or a caller's own); false for one the lease watch
   * or kick() started, which does not take an undrain into account (see #round).
   */
  async tick(periodic = true): Promise<void> {
    if (this.#ticking) {
      // The periodic round must not be lost to a round the watch started (an undrain waits for
      // one): it runs right after, as periodic.
      if (periodic) this.#periodicPending = this.#again = true;
      return;
    }
    this.#ticking = true;
    let failure: unknown;
    try {
      this.#periodicPending = periodic;
      do {
        this.#again = false;
        const asPeriodic = this.#periodicPending;
        this.#periodicPending = false;
        // A round asked for while this one ran (a member seen dead, a drain) still runs when this
        // one fails: it is that round's news, not this one's.
        failure = undefined;
        await this.#round(asPeriodic).catch((e: unknown) => (failure = e));
      } while (this.#again && !this.#stopped);
    } finally {
      this.#ticking = false;
    }
    if (failure !== undefined) throw failure;
  }

  async #round(periodic: boolean): Promise<void> {
    // The lease watch runs after every round, failed ones included (a throw would otherwise leave
    // no watch until the next periodic round): after a failure it compares with nothing, so its
    // first successful read runs the round again (the polls slowed down by the failures).
    let version: number | undefined;
    let ok = false;
    try {
      const { store, members, workerId, shardCount, leaseTtlMs, log } = this.#o;
      const flag = (await members.draining?.(workerId).catch(() => this.#draining)) ?? false;
      // A drain counts in any round (the drain moves the lease version so the watch runs one at
      // once); an undrain only in a periodic one. The Helm chart's preStop hook undrains a
      // worker's id for its successor just before SIGTERM reaches the old process, and the lease
      // watch runs rounds whenever any lease moves: a round then must not make the dying process
      // a serving member the others hand shards to.
      const draining = flag || (this.#draining && !periodic);
      if (draining !== this.#draining) {
        this.#draining = draining;
        log.info({ draining, shards: this.#owned.size }, draining ? 'worker-draining' : 'worker-undrained');
      }
      if (this.#stopped) return; // stop() left the member set: no record again, no leases
      await this.heartbeat();
      const all = await members.list();
      this.#watch?.update(all);
      const memberIds = new Set(all.map((m) => m.id));
      // Drained workers get no shard; if every worker is drained, draining means nothing.
      const serving = all.filter((m) => !m.draining && !(m.id === workerId && draining));
      const live = (serving.length > 0 || all.length === 0 ? serving : all).map((m) => m.id);
      if (!live.includes(workerId) && (!draining || serving.length === 0)) live.push(workerId);
      // Read before the table: a release after this moves the version the lease watch compares.
      version = await withTimeout(store.version()).catch(() => undefined);
      const leases = await store.owners();
      const previous: (string | undefined)[] = [];
      for (let s = 0; s < shardCount; s++) previous.push(leases.get(s)?.owner);
      const avoid = (await members.moves?.().catch(() => undefined)) ?? new Map<number, string>();
      const plan = placeShards(shardCount, live, previous, avoid);

      // Renewals first and all at once (pipelined by the client): a slow tick must not let leases
      // lapse one after another. Then drain what the plan moved away.
      const keep = [...this.#owned].filter(([shard]) => plan[shard] === workerId);
      // One call for all of them (one script per 256 on a standalone Redis); no answer in time
      // leaves each unknown (kept), as a lapsed one is found by the next round.
      const answers =
        keep.length === 0
          ? []
          : await withTimeout(
              store.renewMany(
                workerId,
                keep.map(([shard, epoch]) => ({ shard, epoch })),
                leaseTtlMs,
              ),
            ).catch(() => undefined);
      const renewed: (boolean | undefined)[] = answers ?? keep.map(() => undefined);
      let reacquired = 0;
      await Promise.all(
        keep.map(async ([shard, epoch], i) => {
          if (renewed[i] !== false) return;
          // The lease lapsed (e.g. Redis stalled past its TTL). If nobody held the shard since, the
          // next epoch is ours and our SAs are the freshest copy: keep them. Otherwise, lose it.
          const again = await withTimeout(store.acquire(shard, workerId, leaseTtlMs)).catch(() => undefined);
          if (again && again.epoch === epoch + 1 && !this.#stopped) {
            this.#owned.set(shard, again.epoch);
            reacquired++;
            return;
          }
          if (again) await store.release(shard, workerId, again.epoch).catch(() => false);
          this.#lose(shard, 'renew-refused');
        }),
      );
      if (reacquired > 0) log.warn({ shards: reacquired }, 'leases-lapsed-and-reacquired');
      if (Date.now() - this.#paceFrom >= this.#tickMs) {
        this.#paceFrom = Date.now();
        this.#pacedSas = 0;
      }
      for (const [shard, epoch] of [...this.#owned]) {
        if (plan[shard] === workerId) continue;
        const lease = leases.get(shard);
        if (!lease || lease.owner !== workerId || lease.epoch !== epoch) {
          // Not ours any more (we were paused or cut off and another took it): nothing to hand
          // over, and nothing to pace. Drop it and its SAs now; their new owner has them.
          this.#lose(shard, 'lease-gone');
          continue;
        }
        // Balance moves are paced (a drain is not): a returning or new worker fills up over a few
        // intervals instead of pulling a third of every SA through one takeover burst.
        if (!draining && this.#pacedSas >= MAX_REBALANCE_SAS_PER_INTERVAL) {
          log.debug(
            { pending: [...this.#owned.keys()].filter((s) => plan[s] !== workerId).length },
            'rebalance-paced',
          );
          break;
        }
        await this.flush(shard);
        if ([...this.#pending.values()].some((p) => p.shard === shard)) {
          // Not all of it is in the store yet (Redis trouble): keep the lease, drain next tick.
          log.warn({ shard }, 'shard-drain-deferred');
          if (!(await store.renew(shard, workerId, epoch, leaseTtlMs))) this.#lose(shard, 'renew-refused');
          continue;
        }
        await store.release(shard, workerId, epoch);
        this.#owned.delete(shard);
        const moved = this.#o.worker.dropShard(shard);
        if (!draining) this.#pacedSas += moved;
        log.info({ shard, epoch, to: plan[shard] }, 'shard-released');
      }
      const wanted: [shard: number, takeFrom: string | undefined, formerHolder: string | undefined][] = [];
      // A gone member that is back, or gone for an hour: nothing to time any more.
      for (const [id, at] of this.#goneSince)
        if (memberIds.has(id) || Date.now() - at > MOVE_MEMORY_MS) this.#goneSince.delete(id);
      const moves: { shard: number; from: string }[] = [];
      for (let s = 0; s < shardCount; s++) {
        if (plan[s] !== workerId || this.#owned.has(s)) continue;
        const lease = leases.get(s);
        // Whose SAs these are, if that worker is gone (its lease live or lapsed): remember it.
        const was = lease?.owner ?? this.#lastOwners[s];
        if (was !== undefined && was !== workerId && !memberIds.has(was)) {
          moves.push({ shard: s, from: was });
          if (!this.#goneSince.has(was)) this.#goneSince.set(was, Date.now());
        }
        // A live member's lease: wait until it releases the shard (drain) or its lease expires
        // (the lease watch runs a round when it does). A lease whose holder is no member any more
        // (seen dead, or its record lapsed): take it now; the new epoch fences anything the old
        // holder may still write.
        if (lease && lease.owner !== workerId && memberIds.has(lease.owner)) {
          this.#takeRetry.delete(s); // someone else's now: a later take starts afresh
          continue;
        }
        wanted.push([
          s,
          lease && lease.owner !== workerId ? lease.owner : undefined,
          was !== undefined && !memberIds.has(was) ? was : undefined,
        ]);
      }
      // Bounded parallelism: takeover of many shards must not flood the store. A take that failed
      // (its lease handed back, counted and logged) waits for its retry time (TAKE_RETRY_MS); the
      // others go on, and so does the round.
      const now = Date.now();
      const due = wanted.filter(([s]) => !((this.#takeRetry.get(s)?.at ?? 0) > now));
      for (let i = 0; i < due.length; i += 32) {
        await Promise.all(due.slice(i, i + 32).map(([s, from, former]) => this.#take(s, from, former)));
      }
      for (const s of this.#takeRetry.keys()) if (plan[s] !== workerId) this.#takeRetry.delete(s);
      const taken = moves.filter((m) => this.#owned.has(m.shard));
      await members
        .recordMoves?.(taken, MOVE_MEMORY_MS)
        .catch((e: Error) => log.warn({ err: e.message, shards: taken.length }, 'record-moves-failed'));
      // The last holder seen for each shard, kept across rounds where it has no lease (it lapsed
      // before the holder's record did): whose SAs they were when someone takes the shard later.
      this.#lastOwners = previous.map((o, s) => o ?? this.#lastOwners[s]);
      this.#ownedGauge.set(this.#owned.size);
      ok = true;
    } finally {
      this.#failedRounds = ok ? 0 : this.#failedRounds + 1;
      this.#watchLeases(ok ? version : undefined);
    }
  }

  /**
   * Until the next round: read the lease version every HANDOFF_POLL_MS and run a round once it
   * moved from `since`, the version read at the start of the round (a release or an acquire by
   * anyone, ours of that round included). `since` undefined (unreadable at the round, or the round
   * failed before reading it): the first version a poll reads counts as a change, since a release
   * in between would otherwise go unseen. After failed rounds the polls slow down (doubling, up to
   * a tick), so a store that fails every round is not asked for one every 100 ms. A poll whose read
   * fails or times out (2 s) counts as unchanged. Ends with stop().
   */
  #watchLeases(since: number | undefined): void {
    clearTimeout(this.#handoffTimer);
    this.#handoffTimer = undefined;
    const watch = ++this.#handoffWatch; // a later round's watch supersedes a poll in flight
    // Only a started owner (its own rounds); one driven by tick() alone keeps to those.
    if (this.#stopped || !this.#started) return;
    const every = Math.min(this.#tickMs, HANDOFF_POLL_MS * 2 ** Math.min(this.#failedRounds, 8));
    const arm = () => {
      this.#handoffTimer = setTimeout(() => void poll(), every);
      this.#handoffTimer.unref();
    };
    const poll = async () => {
      const now = await withTimeout(this.#o.store.version()).catch(() => undefined);
      if (this.#stopped || watch !== this.#handoffWatch) return;
      if (now !== undefined && now !== since) return this.kick();
      arm();
    };
    arm();
  }

  /**
   * `takeFrom`: the gone member whose live lease is taken over; `formerHolder`: the gone member
   * whose SAs these are (its lease live or lapsed), for timing. A failure to read the SAs hands the
   * lease back and schedules a retry (#takeRetry); it does not throw.
   */
  async #take(shard: number, takeFrom?: string, formerHolder?: string): Promise<void> {
    const { store, workerId, leaseTtlMs, worker, log, metrics } = this.#o;
    const startedAt = performance.now();
    const retry = this.#takeRetry.get(shard);
    // A retry after a failed takeover: our own release freed the lease, but it was taken from a gone
    // member all the same (counted and timed as such).
    const takenFrom = takeFrom ?? retry?.from;
    const grant = await store.acquire(shard, workerId, leaseTtlMs, takeFrom);
    if (!grant) return;
    if (this.#stopped) {
      // stop() ran while this round was acquiring: its release loop is over, so hand it back now
      // rather than leave a lease whose holder is leaving until the others' next periodic round.
      await store.release(shard, workerId, grant.epoch).catch(() => false);
      return;
    }
    this.#taking.set(shard, grant.epoch);
    const goneSince = formerHolder === undefined ? undefined : this.#goneSince.get(formerHolder);
    let span: Span | undefined;
    let contents: Awaited<ReturnType<Store['listShard']>>;
    try {
      contents = await store.listShard(shard, { skipUnreadable: true });
    } catch (e) {
      if (this.#stopped) {
        // stop() may have listed its leases before this one failed: hand it back (once more does
        // no harm), nothing failed.
        await store.release(shard, workerId, grant.epoch).catch(() => false);
        this.#taking.delete(shard);
        return;
      }
      this.#taking.delete(shard);
      // Without its SAs the shard must not be ours: holding (and renewing) the lease would leave
      // every stored SA of it unserved until a restart, its peers' packets dropped here. Hand the
      // lease back and try again later (backed off: the failure may last, Redis failing).
      const delayMs = Math.min(this.#tickMs, retry ? retry.delayMs * 2 : TAKE_RETRY_MS);
      this.#takeRetry.set(shard, { at: Date.now() + delayMs, delayMs, from: takenFrom });
      // Our own release moves the lease version, but the round that runs for it comes too early
      // for the retry, and then nothing moves it: this one does (kick() coalesces them).
      setTimeout(() => this.kick(), delayMs).unref();
      this.#takeFailures.inc({ stage: 'list' });
      log.warn(
        { shard, epoch: grant.epoch, err: (e as Error).message, retryInMs: delayMs },
        'shard-list-failed',
      );
      await store.release(shard, workerId, grant.epoch).catch(() => false);
      // A takeover that could not read the shard's SAs is one a trace must show.
      if (tracingActive() && (takenFrom !== undefined || formerHolder !== undefined)) {
        span = this.#takeoverSpan(shard, grant.epoch, takenFrom, formerHolder, startedAt);
        span.setAttribute(Attr.shardOutcome, 'failed');
        span.setStatus({ code: SpanStatusCode.ERROR, message: (e as Error).message });
        span.end();
      }
      return;
    }
    this.#taking.delete(shard);
    if (this.#stopped) {
      // stop() ran while the SAs were read (it released the lease; once more does no harm).
      await store.release(shard, workerId, grant.epoch).catch(() => false);
      return;
    }
    this.#takeRetry.delete(shard);
    if (takenFrom !== undefined) this.#takeovers.inc({ reason: 'member_gone' });
    this.#owned.set(shard, grant.epoch);
    // A span for a takeover or adoption, not for leasing an empty shard nobody held (a start).
    if (tracingActive() && (takenFrom !== undefined || formerHolder !== undefined || contents.sas.size > 0))
      span = this.#takeoverSpan(shard, grant.epoch, takenFrom, formerHolder, startedAt);
    let adopted = 0;
    const adopt = () => {
      // Records this keyring cannot open (a KEK missing from it, a tampered value): those SAs are
      // lost here (their peers set up again), the rest of the shard is not.
      for (const [spi, why] of contents.unreadable ?? []) {
        metrics.drops.inc({ layer: 'store', reason: 'unreadable_record' });
        log.error({ shard, spi, err: why }, 'snapshot-unreadable');
      }
      for (const [spi, bytes] of contents.sas) {
        try {
          if (worker.adopt(decodeSnapshot(bytes))) adopted++;
        } catch (e) {
          metrics.drops.inc({ layer: 'store', reason: 'bad_snapshot' });
          log.error({ shard, spi, err: (e as Error).message }, 'snapshot-unreadable');
        }
      }
      if (contents.sas.size > 0 || adopted > 0)
        log.info(
          { shard, epoch: grant.epoch, adopted, ...(takenFrom ? { from: takenFrom } : {}) },
          'shard-acquired',
        );
      else log.debug({ shard, epoch: grant.epoch }, 'shard-acquired');
    };
    // Inside the span: adopted SAs link their later exchanges to it, log lines carry its ids.
    if (span) context.with(trace.setSpan(context.active(), span), adopt);
    else adopt();
    if (goneSince !== undefined)
      this.#takeoverSeconds.observe(
        { reason: takenFrom !== undefined ? 'member_gone' : 'lease_lapsed' },
        (Date.now() - goneSince) / 1000,
      );
    if (span) {
      span.setAttributes({
        [Attr.shardAdopted]: adopted,
        [Attr.shardStored]: contents.sas.size,
        [Attr.shardOutcome]: 'acquired',
      });
      span.end();
    }
  }

  /** The span of one shard takeover (docs/observability.md "Tracing"), started at `startedAt`. */
  #takeoverSpan(
    shard: number,
    epoch: number,
    takeFrom: string | undefined,
    formerHolder: string | undefined,
    startedAt: number,
  ): Span {
    const span = tracer().startSpan(SpanName.shardTakeover, { root: true, startTime: startedAt });
    if (span.isRecording())
      span.setAttributes({
        [Attr.shard]: shard,
        [Attr.shardEpoch]: epoch,
        [Attr.workerId]: this.#o.workerId,
        ...(takeFrom !== undefined ? { [Attr.shardTakenFrom]: takeFrom } : {}),
        ...(formerHolder !== undefined ? { [Attr.shardFormerHolder]: formerHolder } : {}),
      });
    return span;
  }

  #lose(shard: number, why: string): void {
    if (!this.#owned.delete(shard)) return;
    const dropped = this.#o.worker.dropShard(shard);
    for (const [spi, p] of this.#pending)
      if (p.shard === shard) {
        this.#pending.delete(spi);
        this.#settled(spi, Number.POSITIVE_INFINITY);
      }
    this.#o.log.warn({ shard, why, sasDropped: dropped }, 'shard-lost');
    this.#ownedGauge.set(this.#owned.size);
  }

  /** Drain: write everything, release every lease, leave the member set. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#heartbeatTimer);
    clearTimeout(this.#handoffTimer);
    this.#watch?.stop();
    clearTimeout(this.#flushTimer);
    await this.flush().catch(() => undefined);
    const { store, workerId } = this.#o;
    // With the leases of shards whose SAs a round is reading now: that round hands them back only
    // when the read ends, maybe after the caller closed the store.
    await Promise.all(
      [...this.#owned, ...this.#taking].map(([shard, epoch]) =>
        store.release(shard, workerId, epoch).catch(() => false),
      ),
    );
    this.#owned.clear();
    await this.#o.members.leave(workerId).catch(() => undefined);
  }
}
