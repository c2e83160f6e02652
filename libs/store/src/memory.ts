/**
 * MemoryStore: the embedded store for `ikegate up` on one machine, and the fake for unit tests.
 *
 * Same contract as RedisStore, with the same atomicity: each operation checks the lease epoch and
 * writes in one synchronous step (no await in between), which in one JS process is what the Redis
 * Lua scripts are across processes. Lease time comes from the injected clock, so tests move time
 * by hand; a lease is live while now < expiresAt.
 */
import type { Lease, LeaseGrant, LeaseRef, ShardContents, SyncState } from './contract.js';
import { FencedWriteError, LocalUsageError } from './errors.js';
import { checkShardCount, DEFAULT_SHARD_COUNT } from './keys.js';
import type { Keyring } from './seal.js';
import { SealedStore, type ShardBackend, type SyncFields, syncFromFields } from './sealed-store.js';

export interface MemoryStoreOptions {
  readonly kek: Keyring;
  /** Lease clock in milliseconds (services pass `Date.now`; tests a simulated clock). */
  readonly now: () => number;
  /** Shards are 0..shardCount-1; default 1024 (libs/cluster's default 10 shard bits). */
  readonly shardCount?: number;
}

interface ShardState {
  lease: Lease | undefined;
  /** Last epoch handed out; kept when the lease expires or is released. */
  epoch: number;
  readonly sas: Map<string, Uint8Array>;
  readonly sync: Map<string, Record<string, string>>;
}

/** max() of two unsigned decimal strings without leading zeros. */
function maxDecimal(a: string, b: string): string {
  if (a.length !== b.length) return a.length > b.length ? a : b;
  return a >= b ? a : b;
}

export class MemoryBackend implements ShardBackend {
  readonly shardCount: number;
  private readonly shards = new Map<number, ShardState>();
  private leaseVersion = 0;
  private closed = false;

  constructor(
    private readonly now: () => number,
    shardCount = DEFAULT_SHARD_COUNT,
  ) {
    checkShardCount(shardCount);
    this.shardCount = shardCount;
  }

  /** The bytes at rest for an SA (test hook: they must not be the plaintext). */
  rawSa(shard: number, key: string): Uint8Array | undefined {
    const v = this.shards.get(shard)?.sas.get(key);
    return v === undefined ? undefined : v.slice();
  }

  /** Replaces the bytes at rest (test hook: tampering must be detected). */
  setRawSa(shard: number, key: string, sealed: Uint8Array): void {
    this.state(shard).sas.set(key, sealed.slice());
  }

  async putSealed(shard: number, epoch: number, key: string, sealed: Uint8Array): Promise<void> {
    const s = this.fenced(shard, epoch);
    s.sas.set(key, sealed.slice());
  }

  async getSealed(shard: number, key: string): Promise<Uint8Array | undefined> {
    this.open();
    const v = this.shards.get(shard)?.sas.get(key);
    return v === undefined ? undefined : v.slice();
  }

  async deleteSa(shard: number, epoch: number, key: string): Promise<void> {
    const s = this.fenced(shard, epoch);
    s.sas.delete(key);
    s.sync.delete(key);
  }

  async putSync(
    shard: number,
    epoch: number,
    key: string,
    fields: SyncFields,
  ): Promise<SyncState | undefined> {
    const s = this.fenced(shard, epoch);
    if (!s.sas.has(key)) return undefined;
    const h = { ...(s.sync.get(key) ?? {}) };
    for (const [f, v] of fields) h[f] = maxDecimal(h[f] ?? '0', v);
    s.sync.set(key, h);
    return syncFromFields(h);
  }

  async getSync(shard: number, key: string): Promise<SyncState | undefined> {
    this.open();
    const h = this.shards.get(shard)?.sync.get(key);
    return h === undefined ? undefined : syncFromFields(h);
  }

  async listSealed(shard: number): Promise<ShardContents> {
    this.open();
    const s = this.shards.get(shard);
    const sas = new Map<string, Uint8Array>();
    const sync = new Map<string, SyncState>();
    if (s !== undefined) {
      for (const [k, v] of s.sas) sas.set(k, v.slice());
      for (const [k, h] of s.sync) sync.set(k, syncFromFields(h));
    }
    return { sas, sync };
  }

  async acquire(
    shard: number,
    owner: string,
    ttlMs: number,
    takeFrom?: string,
  ): Promise<LeaseGrant | undefined> {
    const s = this.state(shard);
    const live = this.liveLease(s);
    if (live !== undefined && live.owner !== owner && live.owner !== takeFrom) return undefined;
    s.epoch += 1;
    s.lease = { owner, epoch: s.epoch, expiresAt: this.now() + ttlMs };
    this.leaseVersion += 1;
    return { epoch: s.lease.epoch, expiresAt: s.lease.expiresAt };
  }

  async renew(shard: number, owner: string, epoch: number, ttlMs: number): Promise<boolean> {
    const s = this.state(shard);
    const live = this.liveLease(s);
    if (live === undefined || live.owner !== owner || live.epoch !== epoch) return false;
    s.lease = { owner, epoch, expiresAt: this.now() + ttlMs };
    return true;
  }

  async renewMany(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<boolean[]> {
    const out: boolean[] = [];
    for (const l of leases) out.push(await this.renew(l.shard, owner, l.epoch, ttlMs));
    return out;
  }

  async release(shard: number, owner: string, epoch: number): Promise<boolean> {
    const s = this.state(shard);
    const live = this.liveLease(s);
    if (live === undefined || live.owner !== owner || live.epoch !== epoch) return false;
    s.lease = undefined;
    this.leaseVersion += 1;
    return true;
  }

  async owners(): Promise<Map<number, Lease>> {
    this.open();
    const out = new Map<number, Lease>();
    for (const [shard, s] of this.shards) {
      const live = this.liveLease(s);
      if (live !== undefined) out.set(shard, { ...live });
    }
    return out;
  }

  async version(): Promise<number> {
    this.open();
    return this.leaseVersion;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private open(): void {
    if (this.closed) throw new LocalUsageError('IKEGATE_ERR_STORE_CLOSED', 'the memory store is closed');
  }

  private state(shard: number): ShardState {
    this.open();
    let s = this.shards.get(shard);
    if (s === undefined) {
      s = { lease: undefined, epoch: 0, sas: new Map(), sync: new Map() };
      this.shards.set(shard, s);
    }
    return s;
  }

  private liveLease(s: ShardState): Lease | undefined {
    return s.lease !== undefined && this.now() < s.lease.expiresAt ? s.lease : undefined;
  }

  /** The shard's state if `epoch` is its live lease epoch; otherwise FencedWriteError. */
  private fenced(shard: number, epoch: number): ShardState {
    const s = this.state(shard);
    const live = this.liveLease(s);
    if (live === undefined || live.epoch !== epoch) throw new FencedWriteError(shard, epoch, live?.epoch);
    return s;
  }
}

/** SaStore and LeaseTable in process memory, values sealed with the KEK like RedisStore's. */
export class MemoryStore extends SealedStore {
  override readonly backend: MemoryBackend;

  constructor(options: MemoryStoreOptions) {
    const backend = new MemoryBackend(options.now, options.shardCount);
    super(backend, options.kek);
    this.backend = backend;
  }
}
