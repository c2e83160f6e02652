/**
 * The edge's view of the cluster: which worker owns each shard (the lease table in the store) and
 * one relay stream per live worker. The table is re-read when the store's lease version moves and
 * at least every `fullRefreshMs`, so an edge follows takeovers within a poll interval.
 *
 * Frames for a shard without a live owner (and frames a worker hands back) wait in one bounded
 * queue (frames, bytes, 5 s each) retried every 100 ms; all waiting frames share one refresh per
 * round (a full lease-table read only when its version moved) and forced reads are rate-limited,
 * so unowned traffic costs the store a constant few commands per second, not reads per frame (issue #11: 2,000 INITs had cost 8.1M commands).
 */
import type { InboundFrame, OutboundFrame, WorkerLink } from '@ikegate/cluster';
import { RelayClient, type RelayTls } from '@ikegate/relay';
import type { Store } from '@ikegate/store';
import type { Logger, Metrics } from '@ikegate/telemetry';
import type { Membership } from '@ikegate/worker';

export interface ShardRouterOptions {
  readonly edgeId: string;
  readonly store: Store;
  readonly members: Membership;
  readonly shardCount: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly onFrame: (frame: OutboundFrame) => void;
  readonly pollMs?: number;
  readonly fullRefreshMs?: number;
  /** Mutual TLS for the relay streams (each worker's certificate must name it). */
  readonly relayTls?: RelayTls;
}

/**
 * Frames waiting for an owner (a shard between owners, or a frame a worker handed back) are held at
 * most this long, then dropped and counted (`reroute_exhausted`): TCP peers do not retransmit, so a
 * takeover should not lose them, but an edge must not hold them for ever either.
 */
const REROUTE_WAIT_MS = 5000;
/** At most this many frames (and bytes) wait; beyond, new ones are dropped (`reroute_queue_full`). */
const REROUTE_MAX_FRAMES = 4096;
const REROUTE_MAX_BYTES = 8 << 20;
/** Waiting frames are retried this often; one retry round shares one lease-table read. */
const REROUTE_EVERY_MS = 100;
/** Forced lease-table reads are at least this far apart, however many frames wait or bounce. */
const MIN_FORCED_REFRESH_MS = 100;
/**
 * The whole lease table (one read per shard) is re-read at least this often even when its version
 * did not move: only a lease that lapsed with nobody taking it changes the table without an
 * acquire or release, and such a shard has no live owner to route to either way. It was 2 s: at
 * 1,024 shards that was ~500 Redis commands a second per idle edge.
 */
const FULL_REFRESH_MS = 10_000;
/** A frame bounced back by workers more often than this is dropped (owners disagree for too long). */
const MAX_BOUNCES = 10;
/**
 * A refresh (member set, lease version, lease table) that has not answered in this long is given
 * up: the next call starts a new one, and waiting frames still expire. A Redis that stops
 * answering over a live TCP connection (a partition: TCP retries for minutes) must not freeze the
 * routing table and the reroute queue with it.
 */
export const REFRESH_TIMEOUT_MS = 2000;

interface Waiting {
  readonly frame: InboundFrame;
  readonly until: number;
}

export class ShardRouter {
  readonly #o: ShardRouterOptions;
  #owners: (string | undefined)[] = [];
  readonly #clients = new Map<string, { relay: string; client: RelayClient }>();
  #version = -1;
  #lastFull = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** The refresh in flight: concurrent callers share it (one lease-table read, not one each). */
  #refreshing: Promise<void> | undefined;
  /** The latest refresh's number: an earlier one given up at its deadline applies nothing. */
  #generation = 0;
  #lastForced = 0;
  #waiting: Waiting[] = [];
  #waitingBytes = 0;
  #retryTimer: NodeJS.Timeout | undefined;

  constructor(o: ShardRouterOptions) {
    this.#o = o;
  }

  route(shard: number): WorkerLink | undefined {
    const owner = this.#owners[shard];
    return owner === undefined ? undefined : this.#clients.get(owner)?.client;
  }

  /** The relay to every live worker. */
  workers(): WorkerLink[] {
    return [...this.#clients.values()].map((c) => c.client);
  }

  get table(): readonly (string | undefined)[] {
    return this.#owners;
  }

  /**
   * Re-reads the member set, and the lease table when its version moved, `force` is set, or
   * `fullRefreshMs` passed. Calls while one runs share it; forced reads are rate-limited
   * (MIN_FORCED_REFRESH_MS), so no traffic pattern turns into a read per frame.
   */
  refresh(force = false): Promise<void> {
    if (this.#refreshing) return this.#refreshing;
    const now = Date.now();
    const forced = force && now - this.#lastForced >= MIN_FORCED_REFRESH_MS;
    if (forced) this.#lastForced = now;
    const generation = ++this.#generation;
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`route refresh timed out after ${REFRESH_TIMEOUT_MS} ms`)),
        REFRESH_TIMEOUT_MS,
      );
      timer.unref();
    });
    const run = Promise.race([this.#refreshNow(forced, generation), deadline]).finally(() => {
      clearTimeout(timer);
      if (this.#refreshing === run) this.#refreshing = undefined;
      // A refresh given up must not apply what it reads later over a newer one's table.
      if (this.#generation === generation) this.#generation++;
    });
    this.#refreshing = run;
    return run;
  }

  /** `generation`: this refresh's; its reads are applied only while it is still the latest. */
  async #refreshNow(force: boolean, generation: number): Promise<void> {
    const { store, members, shardCount, log, edgeId, metrics } = this.#o;
    const live = await members.list();
    if (generation !== this.#generation) return;
    const liveIds = new Set(live.map((m) => m.id));
    for (const m of live) {
      const known = this.#clients.get(m.id);
      if (known && known.relay === m.relay) continue;
      known?.client.close();
      this.#clients.set(m.id, {
        relay: m.relay,
        client: new RelayClient({
          edgeId,
          workerId: m.id,
          target: m.relay,
          ...(this.#o.relayTls ? { tls: this.#o.relayTls } : {}),
          log,
          metrics,
          onFrame: this.#o.onFrame,
          onBounce: (f) => this.#bounced(f),
        }),
      });
      log.info({ worker: m.id, relay: m.relay }, 'worker-joined');
    }
    for (const [id, c] of this.#clients) {
      if (liveIds.has(id)) continue;
      c.client.close();
      this.#clients.delete(id);
      log.info({ worker: id }, 'worker-left');
    }
    const version = await store.version();
    if (generation !== this.#generation) return;
    const now = Date.now();
    if (
      force ||
      version !== this.#version ||
      now - this.#lastFull >= (this.#o.fullRefreshMs ?? FULL_REFRESH_MS)
    ) {
      const leases = await store.owners();
      if (generation !== this.#generation) return;
      const owners: (string | undefined)[] = [];
      for (let s = 0; s < shardCount; s++) owners.push(leases.get(s)?.owner);
      this.#owners = owners;
      this.#version = version;
      this.#lastFull = now;
    }
  }

  /** A frame of a shard without an owner right now: delivered once the lease table has one. */
  deliverLater(frame: InboundFrame): void {
    this.#wait(frame);
  }

  /** Frames waiting for an owner (gauge, tests). */
  get waiting(): number {
    return this.#waiting.length;
  }

  /** A worker handed a frame back (its lease moved): route it again once the table says where. */
  #bounced(frame: InboundFrame): void {
    const attempt = (frame.attempt ?? 0) + 1;
    if (attempt > MAX_BOUNCES) {
      this.#o.metrics.drops.inc({ layer: 'edge', reason: 'reroute_exhausted' });
      return;
    }
    this.#o.metrics.drops.inc({ layer: 'edge', reason: 'rerouted' });
    this.#wait({ ...frame, attempt });
  }

  #wait(frame: InboundFrame): void {
    if (
      this.#stopped ||
      this.#waiting.length >= REROUTE_MAX_FRAMES ||
      this.#waitingBytes + frame.bytes.length > REROUTE_MAX_BYTES
    ) {
      this.#o.metrics.drops.inc({ layer: 'edge', reason: 'reroute_queue_full' });
      return;
    }
    this.#waiting.push({ frame, until: Date.now() + REROUTE_WAIT_MS });
    this.#waitingBytes += frame.bytes.length;
    this.#armRetry();
  }

  #armRetry(): void {
    if (this.#retryTimer || this.#waiting.length === 0 || this.#stopped) return;
    this.#retryTimer = setTimeout(() => void this.#retry(), REROUTE_EVERY_MS);
    this.#retryTimer.unref();
  }

  /**
   * One round for every waiting frame: one shared refresh, then deliver or keep. Not a forced
   * one: a lease changes hands only through acquire/release, which move the table's version (a
   * lapsed lease is seen by the periodic full read), so waiting frames never cost a full read.
   */
  async #retry(): Promise<void> {
    await this.refresh().catch(() => undefined); // bounded: REFRESH_TIMEOUT_MS
    this.#retryTimer = undefined;
    if (this.#stopped) return;
    const now = Date.now();
    const still: Waiting[] = [];
    let bytes = 0;
    for (const w of this.#waiting) {
      const link = this.route(w.frame.shard);
      if (link) link.deliver(w.frame);
      else if (w.until <= now) this.#o.metrics.drops.inc({ layer: 'edge', reason: 'reroute_exhausted' });
      else {
        still.push(w);
        bytes += w.frame.bytes.length;
      }
    }
    this.#waiting = still;
    this.#waitingBytes = bytes;
    this.#armRetry();
  }

  start(): void {
    const loop = async () => {
      if (this.#stopped) return;
      await this.refresh().catch((e: Error) => this.#o.log.warn({ err: e.message }, 'route-refresh-failed'));
      if (!this.#stopped) {
        this.#timer = setTimeout(() => void loop(), this.#o.pollMs ?? 250);
        this.#timer.unref();
      }
    };
    void loop();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#retryTimer);
    this.#waiting = [];
    this.#waitingBytes = 0;
    for (const c of this.#clients.values()) c.client.close();
    this.#clients.clear();
  }
}
