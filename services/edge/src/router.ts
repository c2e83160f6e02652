/**
 * The edge's view of the cluster: which worker owns each shard (the lease table in the store) and
 * one relay stream per live worker. The table is re-read when the store's lease version moves and
 * at least every `fullRefreshMs`, so an edge follows takeovers within a poll interval; frames for a
 * shard without a live owner are dropped and counted (`no_owner`), as the routing rule says.
 */
import type { InboundFrame, OutboundFrame, WorkerLink } from '@ikegate/cluster';
import { RelayClient } from '@ikegate/relay';
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
}

/** Bounded re-routing of bounced or unowned frames: 100, 200, ... ms apart (about 5 s in all). */
const MAX_REROUTES = 10;

export class ShardRouter {
  readonly #o: ShardRouterOptions;
  #owners: (string | undefined)[] = [];
  readonly #clients = new Map<string, { relay: string; client: RelayClient }>();
  #version = -1;
  #lastFull = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

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

  async refresh(force = false): Promise<void> {
    const { store, members, shardCount, log, edgeId, metrics } = this.#o;
    const live = await members.list();
    const liveIds = new Set(live.map((m) => m.id));
    for (const m of live) {
      const known = this.#clients.get(m.id);
      if (known && known.relay === m.relay) continue;
      known?.client.close();
      this.#clients.set(m.id, {
        relay: m.relay,
        client: new RelayClient({
          edgeId,
          target: m.relay,
          log,
          metrics,
          onFrame: this.#o.onFrame,
          onBounce: (f) => this.#rerouteLater(f),
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
    const now = Date.now();
    if (force || version !== this.#version || now - this.#lastFull >= (this.#o.fullRefreshMs ?? 2000)) {
      const leases = await store.owners();
      const owners: (string | undefined)[] = [];
      for (let s = 0; s < shardCount; s++) owners.push(leases.get(s)?.owner);
      this.#owners = owners;
      this.#version = version;
      this.#lastFull = now;
    }
  }

  /**
   * A worker handed a frame back: its lease moved. Re-read the lease table and route it again,
   * a few times at most (a shard between owners has none for a moment); then drop and count it.
   */
  /** For frames of a shard without an owner right now: deliver once the lease table has one. */
  deliverLater(frame: InboundFrame): void {
    this.#rerouteLater(frame);
  }

  #rerouteLater(frame: InboundFrame): void {
    const attempt = (frame.attempt ?? 0) + 1;
    if (attempt > MAX_REROUTES) {
      this.#o.metrics.drops.inc({ layer: 'edge', reason: 'reroute_exhausted' });
      return;
    }
    this.#o.metrics.drops.inc({ layer: 'edge', reason: 'rerouted' });
    const t = setTimeout(() => {
      void this.refresh(true)
        .catch(() => undefined)
        .then(() => {
          const w = this.route(frame.shard);
          // Between the old owner's release and the new owner's acquire the shard has no owner:
          // keep waiting (bounded) instead of dropping, since TCP peers do not retransmit.
          if (w) w.deliver({ ...frame, attempt });
          else this.#rerouteLater({ ...frame, attempt });
        });
    }, 100 * attempt);
    t.unref();
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
    for (const c of this.#clients.values()) c.client.close();
    this.#clients.clear();
  }
}
