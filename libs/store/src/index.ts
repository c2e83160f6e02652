export {
  EMPTY_SYNC,
  type Lease,
  type LeaseGrant,
  type LeaseRef,
  type LeaseTable,
  type SaStore,
  type ShardContents,
  type Store,
  type SyncState,
} from './contract.js';
export {
  FencedWriteError,
  LocalUsageError,
  ReplicaAckError,
  SealedValueError,
  type SealedValueErrorCode,
  type StoreErrorCode,
} from './errors.js';
export {
  DEFAULT_SHARD_COUNT,
  epochKey,
  indexKey,
  leaseKey,
  MAX_TTL_MS,
  saKey,
  syncKey,
  VERSION_KEY,
} from './keys.js';
export { MemoryBackend, MemoryStore, type MemoryStoreOptions } from './memory.js';
export {
  type RedisConnection,
  RedisBackend,
  type RedisNode,
  type ReplicaAckOptions,
  type ReplicaAckStats,
  RedisStore,
  type RedisStoreOptions,
} from './redis.js';
export { type Kek, type Keyring, SEAL_FORMAT, Sealer } from './seal.js';
export { SealedStore, type ShardBackend } from './sealed-store.js';
export type { ConfigChange, ManagedState, ManagedStore, VersionedChanges } from './managed/types.js';
export { emptyManagedState, SEED_ACTOR, UNSEEDED_FAILOVER } from './managed/changes.js';
export { DEFAULT_FILE_LOG_LIMIT, FileManagedStore, type FileManagedStoreOptions } from './managed/file.js';
export {
  DEFAULT_MANAGED_CHANNEL,
  DEFAULT_REDIS_LOG_LIMIT,
  MANAGED_KEYS,
  RedisManagedStore,
  type RedisManagedStoreOptions,
} from './managed/redis.js';
export {
  DEFAULT_MUTATE_ATTEMPTS,
  DEFAULT_POLL_MS,
  type FollowerLog,
  ManagedFollower,
  type ManagedChangeEvent,
  type ManagedFollowerOptions,
} from './managed/follower.js';
