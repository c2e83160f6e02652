/** Errors of @ikegate/cluster (STYLE.md rule 6). Cluster inputs come from our own config and store. */
export type ClusterErrorCode =
  'IKEGATE_ERR_CLUSTER_BAD_LAYOUT' | 'IKEGATE_ERR_CLUSTER_BAD_SHARD' | 'IKEGATE_ERR_CLUSTER_SHARD_FULL';

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: ClusterErrorCode,
    message: string,
  ) {
    super(message);
  }
}
