export {
  EMPTY_SYNC,
  type Lease,
  type LeaseGrant,
  type LeaseTable,
  type SaStore,
  type ShardContents,
  type Store,
  type SyncState,
} from './contract.js';
export {
  FencedWriteError,
  LocalUsageError,
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
  RedisStore,
  type RedisStoreOptions,
} from './redis.js';
export { type Kek, type Keyring, SEAL_FORMAT, Sealer } from './seal.js';
export { SealedStore, type ShardBackend } from './sealed-store.js';
