/**
 * The one place SA values are sealed and opened, and arguments checked, for both stores.
 *
 * A backend (MemoryBackend, RedisBackend) implements the fenced operations on sealed bytes and the
 * lease table; `SealedStore` puts the KEK in front of it. So both stores share one encryption path
 * and one set of argument checks, and a backend never sees a plaintext SA value.
 */
import type { Lease, LeaseGrant, LeaseRef, ShardContents, Store, SyncState } from './contract.js';
import { LocalUsageError, SealedValueError } from './errors.js';
import { checkEpoch, checkKey, checkOwner, checkShard, checkTtl, syncFields } from './keys.js';
import { type Keyring, Sealer } from './seal.js';

/** A sync update as both backends merge it: [field, unsigned decimal] pairs, already checked. */
export type SyncFields = readonly (readonly [string, string])[];

/**
 * Fenced operations on sealed values. Arguments are checked by SealedStore before they get here.
 * Fenced operations throw FencedWriteError and change nothing unless `epoch` is the shard's live
 * lease epoch, checked atomically with the write.
 */
export interface ShardBackend {
  readonly shardCount: number;
  putSealed(shard: number, epoch: number, key: string, sealed: Uint8Array): Promise<void>;
  getSealed(shard: number, key: string): Promise<Uint8Array | undefined>;
  deleteSa(shard: number, epoch: number, key: string): Promise<void>;
  putSync(shard: number, epoch: number, key: string, fields: SyncFields): Promise<SyncState | undefined>;
  getSync(shard: number, key: string): Promise<SyncState | undefined>;
  /** SA keys and sealed values and sync checkpoints of a shard. */
  listSealed(shard: number): Promise<ShardContents>;
  acquire(shard: number, owner: string, ttlMs: number, takeFrom?: string): Promise<LeaseGrant | undefined>;
  renew(shard: number, owner: string, epoch: number, ttlMs: number): Promise<boolean>;
  renewMany(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<boolean[]>;
  release(shard: number, owner: string, epoch: number): Promise<boolean>;
  owners(): Promise<Map<number, Lease>>;
  version(): Promise<number>;
  close(): Promise<void>;
}

/** Reads a stored sync hash (field -> decimal string); missing fields are 0. */
export function syncFromFields(h: Readonly<Record<string, string>>): SyncState {
  return {
    messageIdOut: Number(h['messageIdOut'] ?? '0'),
    messageIdIn: Number(h['messageIdIn'] ?? '0'),
    espSeqOut: BigInt(h['espSeqOut'] ?? '0'),
    espSeqIn: BigInt(h['espSeqIn'] ?? '0'),
  };
}

export class SealedStore implements Store {
  private readonly sealer: Sealer;

  /** @throws LocalUsageError IKEGATE_ERR_STORE_BAD_KEK for a malformed keyring. */
  constructor(
    protected readonly backend: ShardBackend,
    keyring: Keyring,
  ) {
    this.sealer = new Sealer(keyring);
  }

  /**
   * Another view of the same backing data with another keyring (KEK rotation, or a second process
   * configured differently). It shares the backend: closing either closes both.
   */
  withKeyring(keyring: Keyring): SealedStore {
    return new SealedStore(this.backend, keyring);
  }

  async putSa(shard: number, epoch: number, key: string, value: Uint8Array): Promise<void> {
    this.checkSaArgs(shard, key);
    checkEpoch(epoch);
    if (!(value instanceof Uint8Array)) {
      throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_KEY', 'SA value must be a Uint8Array');
    }
    await this.backend.putSealed(shard, epoch, key, this.sealer.seal(shard, key, value));
  }

  /** @throws SealedValueError when the stored value does not open with this keyring. */
  async getSa(shard: number, key: string): Promise<Uint8Array | undefined> {
    this.checkSaArgs(shard, key);
    const sealed = await this.backend.getSealed(shard, key);
    return sealed === undefined ? undefined : this.sealer.open(shard, key, sealed);
  }

  async deleteSa(shard: number, epoch: number, key: string): Promise<void> {
    this.checkSaArgs(shard, key);
    checkEpoch(epoch);
    await this.backend.deleteSa(shard, epoch, key);
  }

  async putSync(
    shard: number,
    epoch: number,
    key: string,
    sync: Partial<SyncState>,
  ): Promise<SyncState | undefined> {
    this.checkSaArgs(shard, key);
    checkEpoch(epoch);
    return this.backend.putSync(shard, epoch, key, syncFields(sync));
  }

  async getSync(shard: number, key: string): Promise<SyncState | undefined> {
    this.checkSaArgs(shard, key);
    return this.backend.getSync(shard, key);
  }

  /**
   * @throws SealedValueError when any value of the shard does not open with this keyring, unless
   * `skipUnreadable`: then such values are left out of `sas` and named in `unreadable` (a takeover
   * must not lose a whole shard to one record it cannot open).
   */
  async listShard(shard: number, options?: { readonly skipUnreadable?: boolean }): Promise<ShardContents> {
    checkShard(shard, this.backend.shardCount);
    const raw = await this.backend.listSealed(shard);
    const sas = new Map<string, Uint8Array>();
    const unreadable = new Map<string, string>();
    for (const [key, sealed] of raw.sas) {
      try {
        sas.set(key, this.sealer.open(shard, key, sealed));
      } catch (e) {
        if (!options?.skipUnreadable || !(e instanceof SealedValueError)) throw e;
        unreadable.set(key, e.message);
      }
    }
    return options?.skipUnreadable ? { sas, sync: raw.sync, unreadable } : { sas, sync: raw.sync };
  }

  async acquire(
    shard: number,
    owner: string,
    ttlMs: number,
    takeFrom?: string,
  ): Promise<LeaseGrant | undefined> {
    checkShard(shard, this.backend.shardCount);
    checkOwner(owner);
    checkTtl(ttlMs);
    if (takeFrom !== undefined) checkOwner(takeFrom);
    return this.backend.acquire(shard, owner, ttlMs, takeFrom);
  }

  async renew(shard: number, owner: string, epoch: number, ttlMs: number): Promise<boolean> {
    checkShard(shard, this.backend.shardCount);
    checkOwner(owner);
    checkEpoch(epoch);
    checkTtl(ttlMs);
    return this.backend.renew(shard, owner, epoch, ttlMs);
  }

  async renewMany(owner: string, leases: readonly LeaseRef[], ttlMs: number): Promise<boolean[]> {
    checkOwner(owner);
    checkTtl(ttlMs);
    for (const l of leases) {
      checkShard(l.shard, this.backend.shardCount);
      checkEpoch(l.epoch);
    }
    if (leases.length === 0) return [];
    return this.backend.renewMany(owner, leases, ttlMs);
  }

  async release(shard: number, owner: string, epoch: number): Promise<boolean> {
    checkShard(shard, this.backend.shardCount);
    checkOwner(owner);
    checkEpoch(epoch);
    return this.backend.release(shard, owner, epoch);
  }

  owners(): Promise<Map<number, Lease>> {
    return this.backend.owners();
  }

  version(): Promise<number> {
    return this.backend.version();
  }

  close(): Promise<void> {
    return this.backend.close();
  }

  private checkSaArgs(shard: number, key: string): void {
    checkShard(shard, this.backend.shardCount);
    checkKey(key);
  }
}
