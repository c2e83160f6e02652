/**
 * Key layout and argument checks shared by both stores.
 *
 * Redis keys are hash-tagged by shard, so every key a fenced Lua script touches lies in the same
 * Redis Cluster slot:
 *
 *   ikegate:{s<shard>}:lease        hash owner/epoch/expiresAt, PEXPIRE'd: the live tenure
 *   ikegate:{s<shard>}:epoch        integer, INCR'd per tenure, never expires
 *   ikegate:{s<shard>}:sa:<key>     sealed SA record
 *   ikegate:{s<shard>}:sync:<key>   hash of decimal counters (SyncState)
 *   ikegate:{s<shard>}:index        set of the shard's SA keys (listing without a keyspace SCAN)
 *   ikegate:leases:version          integer, INCR'd after each acquire/release (LeaseTable.version)
 */
import { LocalUsageError } from './errors.js';

export const KEY_PREFIX = 'ikegate';
/** SA keys are chosen by workers (hex SPIs and the like); a small alphabet keeps them inert in Redis. */
const SA_KEY_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;
const OWNER_PATTERN = /^[A-Za-z0-9._:@/-]{1,200}$/;
/** A day: longer leases would make a crashed worker's shards unavailable for too long to be a mistake. */
export const MAX_TTL_MS = 86_400_000;
export const DEFAULT_SHARD_COUNT = 1024;

export function shardTag(shard: number): string {
  return `${KEY_PREFIX}:{s${shard}}`;
}
export const leaseKey = (shard: number): string => `${shardTag(shard)}:lease`;
export const epochKey = (shard: number): string => `${shardTag(shard)}:epoch`;
export const saKey = (shard: number, key: string): string => `${shardTag(shard)}:sa:${key}`;
export const syncKey = (shard: number, key: string): string => `${shardTag(shard)}:sync:${key}`;
export const indexKey = (shard: number): string => `${shardTag(shard)}:index`;
export const VERSION_KEY = `${KEY_PREFIX}:leases:version`;

export function checkShard(shard: number, shardCount: number): void {
  if (!Number.isInteger(shard) || shard < 0 || shard >= shardCount) {
    throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_SHARD', `shard ${shard} outside 0..${shardCount - 1}`);
  }
}

export function checkShardCount(shardCount: number): void {
  if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 65536) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_SHARD',
      `shardCount must be 1..65536, got ${shardCount}`,
    );
  }
}

export function checkKey(key: string): void {
  if (!SA_KEY_PATTERN.test(key)) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_KEY',
      `SA key must be 1..200 characters of [A-Za-z0-9._:-], got ${JSON.stringify(key.slice(0, 40))}`,
    );
  }
}

export function checkOwner(owner: string): void {
  if (!OWNER_PATTERN.test(owner)) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_OWNER',
      `owner must be 1..200 characters of [A-Za-z0-9._:@/-], got ${JSON.stringify(owner.slice(0, 40))}`,
    );
  }
}

export function checkTtl(ttlMs: number): void {
  if (!Number.isInteger(ttlMs) || ttlMs < 1 || ttlMs > MAX_TTL_MS) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_TTL',
      `lease TTL must be 1..${MAX_TTL_MS} ms, got ${ttlMs}`,
    );
  }
}

export function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 1) {
    throw new LocalUsageError(
      'IKEGATE_ERR_STORE_BAD_EPOCH',
      `lease epoch must be a positive integer, got ${epoch}`,
    );
  }
}

const UINT32_MAX = 0xffffffff;
const UINT64_MAX = (1n << 64n) - 1n;

/**
 * Checks a sync update and renders it as the unsigned decimal strings both stores merge with max().
 * Every field is present; fields the update leaves out are '0', which max() leaves unchanged.
 */
export function syncFields(
  sync: Partial<{ messageIdOut: number; messageIdIn: number; espSeqOut: bigint; espSeqIn: bigint }>,
): [string, string][] {
  const out: [string, string][] = [];
  for (const f of ['messageIdOut', 'messageIdIn'] as const) {
    const v = sync[f] ?? 0;
    if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
      throw new LocalUsageError(
        'IKEGATE_ERR_STORE_BAD_SYNC',
        `${f} must be a 32-bit unsigned integer, got ${v}`,
      );
    }
    out.push([f, String(v)]);
  }
  for (const f of ['espSeqOut', 'espSeqIn'] as const) {
    const v = sync[f] ?? 0n;
    if (typeof v !== 'bigint' || v < 0n || v > UINT64_MAX) {
      throw new LocalUsageError(
        'IKEGATE_ERR_STORE_BAD_SYNC',
        `${f} must be a 64-bit unsigned bigint, got ${String(v)}`,
      );
    }
    out.push([f, v.toString()]);
  }
  return out;
}
