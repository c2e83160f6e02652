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
import type { Redis, Cluster } from 'ioredis';
import { placeShards } from '@ikegate/cluster';
import { FencedWriteError, type Store } from '@ikegate/store';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { Counter, Gauge } from 'prom-client';
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
}

const MEMBER_PREFIX = 'ikegate:member:';

/**
 * Membership in Redis: one key per member with a TTL (SCAN to list; one node in Cluster mode).
 * Workers use the default prefix; edges `EDGE_MEMBER_PREFIX`.
 */
export class RedisMembership implements Membership {
  constructor(
    private readonly client: Redis | Cluster,
    private readonly prefix = MEMBER_PREFIX,
  ) {}

  async heartbeat(info: MemberInfo, ttlMs: number): Promise<void> {
    await this.client.set(`${this.prefix}${info.id}`, JSON.stringify(info), 'PX', ttlMs);
  }

  async leave(id: string): Promise<void> {
    await this.client.del(`${this.prefix}${id}`);
  }

  /** Whether an operator drained worker `id` (control API). */
  async draining(id: string): Promise<boolean> {
    return (await this.client.exists(`${DRAIN_PREFIX}${id}`)) === 1;
  }

  /** Drains (or undrains) worker `id`; false when undraining one that was not drained. */
  async setDraining(id: string, drain: boolean, actor: string): Promise<boolean> {
    if (drain) {
      await this.client.set(`${DRAIN_PREFIX}${id}`, JSON.stringify({ actor, at: Date.now() }));
      return true;
    }
    return (await this.client.del(`${DRAIN_PREFIX}${id}`)) === 1;
  }

  async list(): Promise<MemberInfo[]> {
    const client = this.client as Redis;
    const keys: string[] = [];
    let cursor = '0';
    for (let i = 0; i < 1000; i++) {
      const [next, batch] = await client.scan(cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 500);
      keys.push(...batch);
      cursor = next;
      if (cursor === '0') break;
    }
    if (keys.length === 0) return [];
    const values = await client.mget(...keys);
    const out: MemberInfo[] = [];
    for (const v of values) {
      if (!v) continue;
      try {
        const m = JSON.parse(v) as MemberInfo;
        if (typeof m.id === 'string' && typeof m.relay === 'string') out.push(m);
      } catch {
        // a foreign key under our prefix: ignored
      }
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
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
  readonly #writeFailures: Counter<'reason'>;
  readonly #writes: Counter<'kind'>;
  readonly #dirtyGauge: Gauge;
  readonly #ownedGauge: Gauge;

  constructor(o: ShardOwnerOptions) {
    this.#o = o;
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
    this.#scheduleFlush();
  }

  gone(spi: string, shard: number): void {
    if (!this.#owned.has(shard)) return;
    this.#pending.set(spi, { kind: 'delete', shard });
    this.#scheduleFlush();
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
        if (epoch === undefined) return;
        try {
          if (p.kind === 'put') {
            const snap = worker.snapshot(spi);
            if (!snap) return;
            await withTimeout(store.putSa(p.shard, epoch, spi, encodeSnapshot(snap)));
          } else {
            await withTimeout(store.deleteSa(p.shard, epoch, spi));
          }
          this.#writes.inc({ kind: p.kind });
        } catch (e) {
          if (e instanceof FencedWriteError) {
            this.#writeFailures.inc({ reason: 'fenced' });
            this.#lose(p.shard, 'fenced-write');
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

  start(): void {
    const every = Math.max(100, Math.floor(this.#o.leaseTtlMs / 3));
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

  /** One round: heartbeat, plan, renew or release what we hold, acquire what the plan gives us. */
  async tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      const { store, members, workerId, shardCount, leaseTtlMs, log } = this.#o;
      const draining = (await members.draining?.(workerId).catch(() => this.#draining)) ?? false;
      if (draining !== this.#draining) {
        this.#draining = draining;
        log.info({ draining, shards: this.#owned.size }, draining ? 'worker-draining' : 'worker-undrained');
      }
      await members.heartbeat(
        {
          id: workerId,
          relay: this.#o.relay,
          admin: this.#o.admin,
          ...(draining ? { draining } : {}),
          ...(this.#o.configVersion ? { configVersion: this.#o.configVersion() } : {}),
        },
        leaseTtlMs * 2,
      );
      const all = await members.list();
      // Drained workers get no shard; if every worker is drained, draining means nothing.
      const serving = all.filter((m) => !m.draining && !(m.id === workerId && draining));
      const live = (serving.length > 0 || all.length === 0 ? serving : all).map((m) => m.id);
      if (!live.includes(workerId) && (!draining || serving.length === 0)) live.push(workerId);
      const leases = await store.owners();
      const previous: (string | undefined)[] = [];
      for (let s = 0; s < shardCount; s++) previous.push(leases.get(s)?.owner);
      const plan = placeShards(shardCount, live, previous);

      // Renewals first and all at once (pipelined by the client): a slow tick must not let leases
      // lapse one after another. Then drain what the plan moved away.
      const keep = [...this.#owned].filter(([shard]) => plan[shard] === workerId);
      const renewed = await Promise.all(
        keep.map(([shard, epoch]) =>
          withTimeout(store.renew(shard, workerId, epoch, leaseTtlMs)).catch(() => undefined),
        ),
      );
      let reacquired = 0;
      await Promise.all(
        keep.map(async ([shard, epoch], i) => {
          if (renewed[i] !== false) return;
          // The lease lapsed (e.g. Redis stalled past its TTL). If nobody held the shard since, the
          // next epoch is ours and our SAs are the freshest copy: keep them. Otherwise, lose it.
          const again = await withTimeout(store.acquire(shard, workerId, leaseTtlMs)).catch(() => undefined);
          if (again && again.epoch === epoch + 1) {
            this.#owned.set(shard, again.epoch);
            reacquired++;
            return;
          }
          if (again) await store.release(shard, workerId, again.epoch).catch(() => false);
          this.#lose(shard, 'renew-refused');
        }),
      );
      if (reacquired > 0) log.warn({ shards: reacquired }, 'leases-lapsed-and-reacquired');
      for (const [shard, epoch] of [...this.#owned]) {
        if (plan[shard] === workerId) continue;
        await this.flush(shard);
        if ([...this.#pending.values()].some((p) => p.shard === shard)) {
          // Not all of it is in the store yet (Redis trouble): keep the lease, drain next tick.
          log.warn({ shard }, 'shard-drain-deferred');
          if (!(await store.renew(shard, workerId, epoch, leaseTtlMs))) this.#lose(shard, 'renew-refused');
          continue;
        }
        await store.release(shard, workerId, epoch);
        this.#owned.delete(shard);
        this.#o.worker.dropShard(shard);
        log.info({ shard, epoch, to: plan[shard] }, 'shard-released');
      }
      const wanted: number[] = [];
      for (let s = 0; s < shardCount; s++) {
        if (plan[s] !== workerId || this.#owned.has(s)) continue;
        const lease = leases.get(s);
        if (lease && lease.owner !== workerId) continue; // wait until its owner releases it or it expires
        wanted.push(s);
      }
      // Bounded parallelism: takeover of many shards must not flood the store.
      for (let i = 0; i < wanted.length; i += 32) {
        await Promise.all(wanted.slice(i, i + 32).map((s) => this.#take(s)));
      }
      this.#ownedGauge.set(this.#owned.size);
    } finally {
      this.#ticking = false;
    }
  }

  async #take(shard: number): Promise<void> {
    const { store, workerId, leaseTtlMs, worker, log, metrics } = this.#o;
    const grant = await store.acquire(shard, workerId, leaseTtlMs);
    if (!grant) return;
    this.#owned.set(shard, grant.epoch);
    const contents = await store.listShard(shard);
    let adopted = 0;
    for (const [spi, bytes] of contents.sas) {
      try {
        if (worker.adopt(decodeSnapshot(bytes))) adopted++;
      } catch (e) {
        metrics.drops.inc({ layer: 'store', reason: 'bad_snapshot' });
        log.error({ shard, spi, err: (e as Error).message }, 'snapshot-unreadable');
      }
    }
    if (contents.sas.size > 0 || adopted > 0)
      log.info({ shard, epoch: grant.epoch, adopted }, 'shard-acquired');
    else log.debug({ shard, epoch: grant.epoch }, 'shard-acquired');
  }

  #lose(shard: number, why: string): void {
    if (!this.#owned.delete(shard)) return;
    const dropped = this.#o.worker.dropShard(shard);
    for (const [spi, p] of this.#pending) if (p.shard === shard) this.#pending.delete(spi);
    this.#o.log.warn({ shard, why, sasDropped: dropped }, 'shard-lost');
    this.#ownedGauge.set(this.#owned.size);
  }

  /** Drain: write everything, release every lease, leave the member set. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#flushTimer);
    await this.flush().catch(() => undefined);
    const { store, workerId } = this.#o;
    await Promise.all(
      [...this.#owned].map(([shard, epoch]) => store.release(shard, workerId, epoch).catch(() => false)),
    );
    this.#owned.clear();
    await this.#o.members.leave(workerId).catch(() => undefined);
  }
}
