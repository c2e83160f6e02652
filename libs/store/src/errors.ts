/**
 * Errors of @ikegate/store (STYLE.md rule 6). Store inputs come from our own workers, so there is no
 * RemoteProtocolError here: a misuse of the API is a LocalUsageError, a write by a tenure that no
 * longer holds the shard is a FencedWriteError, a value that cannot be opened with the configured
 * KEK is a SealedValueError, and a write the replicas did not confirm (`replicaAcks`) is a
 * ReplicaAckError. Redis connection errors are ioredis' own and pass through.
 */
export type StoreErrorCode =
  | 'IKEGATE_ERR_STORE_BAD_SHARD'
  | 'IKEGATE_ERR_STORE_BAD_KEY'
  | 'IKEGATE_ERR_STORE_BAD_TTL'
  | 'IKEGATE_ERR_STORE_BAD_EPOCH'
  | 'IKEGATE_ERR_STORE_BAD_OWNER'
  | 'IKEGATE_ERR_STORE_BAD_KEK'
  | 'IKEGATE_ERR_STORE_BAD_SYNC'
  | 'IKEGATE_ERR_STORE_LIST_TOO_LONG'
  | 'IKEGATE_ERR_STORE_CLOSED'
  /** ManagedFollower.mutate lost the optimistic race to other writers on every attempt. */
  | 'IKEGATE_ERR_STORE_CONFIG_CONFLICT'
  /** A managed-config commit or seed that is malformed (a change, base version or actor). */
  | 'IKEGATE_ERR_STORE_BAD_CHANGE'
  /** Managed-config state at rest (state file, Redis keys) that is corrupt or not ours. */
  | 'IKEGATE_ERR_STORE_BAD_STATE'
  /** `replicaAcks`/`replicaAckTimeoutMs` out of range, or `replicaAcks` with a Redis Cluster. */
  | 'IKEGATE_ERR_STORE_BAD_REPLICA_ACKS';

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A write carried a lease epoch that is not the shard's live lease epoch: another owner acquired
 * the shard (or the lease expired or was released) since the writer acquired it. Nothing was
 * written. The writer must stop serving the shard (ARCHITECTURE.md, "State, leases and HA").
 */
export class FencedWriteError extends Error {
  override readonly name = 'FencedWriteError';
  readonly code = 'IKEGATE_ERR_STORE_FENCED';
  constructor(
    readonly shard: number,
    readonly epoch: number,
    /** The live lease's epoch, or undefined when the shard has no live lease. */
    readonly currentEpoch: number | undefined,
  ) {
    super(
      `write to shard ${shard} with lease epoch ${epoch} fenced: ` +
        (currentEpoch === undefined
          ? 'the shard has no live lease'
          : `the live lease has epoch ${currentEpoch}`),
    );
  }
}

/**
 * A write (or lease grant/release) reached the Redis primary but was not confirmed by the required
 * replicas (`replicaAcks`): a connected replica did not acknowledge it within the timeout, or the
 * connection ended before it did (the primary may have died and a replica without the write may
 * be promoted). It is not known to survive a failover: the caller keeps it and writes it again
 * (every fenced write is idempotent for the same epoch and value).
 */
export class ReplicaAckError extends Error {
  override readonly name = 'ReplicaAckError';
  readonly code = 'IKEGATE_ERR_STORE_REPLICA_ACK';
}

export type SealedValueErrorCode = 'IKEGATE_ERR_STORE_UNSEAL' | 'IKEGATE_ERR_STORE_UNKNOWN_KEK';

/**
 * A stored SA value could not be opened: it was sealed with a KEK id that is not configured, or
 * authentication failed (wrong KEK under the same id, a value moved to another shard/key, or a
 * value altered at rest). Never returns garbage instead.
 */
export class SealedValueError extends Error {
  override readonly name = 'SealedValueError';
  constructor(
    readonly code: SealedValueErrorCode,
    message: string,
  ) {
    super(message);
  }
}
