/**
 * The shared state contract (ARCHITECTURE.md, "State, leases and HA").
 *
 * Two narrow interfaces, implemented by MemoryStore (embedded default for `ikegate up`) and
 * RedisStore (production), both checked by the one contract suite in `testing/contract.ts`:
 *
 * - `LeaseTable`: a worker owns a shard through a lease (owner, epoch, expiry). Every successful
 *   `acquire` starts a new tenure with an epoch strictly greater than any before it for that
 *   shard; epochs are kept apart from the lease, so they survive expiry and release.
 * - `SaStore`: SA records and their sync checkpoints, per shard. Every write is fenced: it
 *   carries the writer's lease epoch, and it is applied only if that is the epoch of the shard's
 *   live lease, checked atomically with the write; otherwise it throws `FencedWriteError` and
 *   writes nothing. So a paused old owner can never overwrite what a new owner wrote.
 *
 * Values are opaque bytes to the store (the caller serializes the IKE SA state, e.g. with the
 * JSON form of libs/ikev2's testing pair); they are sealed with the KEK before they leave the
 * process (`SealedStore`).
 */

/** An owner's tenure of a shard. */
/** One tenure of a shard: what renewMany() extends. */
export interface LeaseRef {
  readonly shard: number;
  readonly epoch: number;
}

export interface LeaseGrant {
  /** Fencing token: pass it with every write for the shard. */
  readonly epoch: number;
  /** Expiry in the lease clock's milliseconds (Redis server time, or MemoryStore's `now`). */
  readonly expiresAt: number;
}

export interface Lease extends LeaseGrant {
  readonly owner: string;
}

export interface LeaseTable {
  /**
   * Starts a new tenure of `shard` for `owner`, live for `ttlMs`. Fails (undefined) while another
   * owner's lease is live. If `owner` itself holds a live lease, that tenure ends and a new one
   * with a higher epoch begins (a restarted worker with the same id fences its old incarnation).
   *
   * `takeFrom`: also take the shard while `takeFrom` holds a live lease on it: the caller knows
   * that holder is gone (its membership ended: it died or stopped heartbeating). Its tenure ends
   * like an expired one: the new epoch fences every write it may still attempt.
   */
  acquire(shard: number, owner: string, ttlMs: number, takeFrom?: string): Promise<LeaseGrant | undefined>;
  /**
   * Extends the live lease of this exact tenure to `ttlMs` from now. False when the lease expired,
   * was released, or another tenure began: the caller must stop writing and re-acquire.
   */
  renew(shard: number, owner: string, epoch: number, ttlMs: number): Promise<boolean>;
  /**
   * renew() of many tenures of one owner, answered in the order asked: one round trip where the
   * backend allows it (a worker renews every lease it holds each round; 512 of 1,024 shards with
   * two workers were 512 script calls per round).
   */
  renewMany(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<boolean[]>;
  /** Ends this tenure at once (drain). False if it was not the live tenure; nothing changes then. */
  release(shard: number, owner: string, epoch: number): Promise<boolean>;
  /** The live leases, by shard. Expired leases are absent. */
  owners(): Promise<Map<number, Lease>>;
  /**
   * A counter that changes whenever a tenure begins or is released, so edges can poll it cheaply
   * and re-read `owners()` only when it moved. Renewals do not change it; expiry is seen through
   * `expiresAt`. A hint, not a lock: callers also re-read `owners()` now and then.
   */
  version(): Promise<number>;
}

/**
 * RFC 6311 sync checkpoint of one SA: the counters a new owner must advance past on takeover.
 * Message IDs for an IKE SA record, sequence numbers for a child SA record; unused fields are 0.
 * Stored values only grow: a write merges field by field with max(), so checkpoints written out
 * of order by the same owner never move a counter back.
 */
export interface SyncState {
  /** Next Message ID we will use for a request (RFC 6311 EXPECTED_SEND_REQ_MESSAGE_ID). */
  readonly messageIdOut: number;
  /** Next request Message ID we expect from the peer (EXPECTED_RECV_REQ_MESSAGE_ID). */
  readonly messageIdIn: number;
  /** Outbound ESP sequence number checkpoint (64-bit with ESN). */
  readonly espSeqOut: bigint;
  /** Highest inbound ESP sequence number seen (for IPSEC_REPLAY_COUNTER_SYNC). */
  readonly espSeqIn: bigint;
}

export const EMPTY_SYNC: SyncState = { messageIdOut: 0, messageIdIn: 0, espSeqOut: 0n, espSeqIn: 0n };

/** Everything a new owner loads on takeover. */
export interface ShardContents {
  readonly sas: Map<string, Uint8Array>;
  /** Sync checkpoints of SAs in `sas` that have one. */
  readonly sync: Map<string, SyncState>;
  /**
   * With `skipUnreadable`: the records that did not open with this keyring (key -> why: a KEK
   * not in it, a tampered or moved value), left out of `sas` and left in the store.
   */
  readonly unreadable?: Map<string, string>;
}

export interface SaStore {
  /** Writes (creates or replaces) an SA record. Fenced. The store does not keep `value`. */
  putSa(shard: number, epoch: number, key: string, value: Uint8Array): Promise<void>;
  /** The SA record, a fresh copy owned by the caller, or undefined. Unfenced (any reader). */
  getSa(shard: number, key: string): Promise<Uint8Array | undefined>;
  /** Deletes an SA record and its sync checkpoint; deleting a missing SA is not an error. Fenced. */
  deleteSa(shard: number, epoch: number, key: string): Promise<void>;
  /**
   * Merges a sync checkpoint into the SA's (field-wise max) and returns the stored result, or
   * undefined (nothing written) when the SA record does not exist, e.g. it was deleted while the
   * checkpoint was in flight. Fenced.
   */
  putSync(
    shard: number,
    epoch: number,
    key: string,
    sync: Partial<SyncState>,
  ): Promise<SyncState | undefined>;
  getSync(shard: number, key: string): Promise<SyncState | undefined>;
  /** All SA records and checkpoints of a shard, read in bounded batches (takeover). */
  listShard(shard: number, options?: { readonly skipUnreadable?: boolean }): Promise<ShardContents>;
}

/** What a service holds: both interfaces over one backing store, and a way to let go of it. */
export interface Store extends SaStore, LeaseTable {
  /** Releases connections. Calls after close reject with IKEGATE_ERR_STORE_CLOSED (memory) or ioredis' error. */
  close(): Promise<void>;
}
