/**
 * Shards in SPIs (ARCHITECTURE.md, "The routing rule").
 *
 * Every SPI ikegate chooses carries its shard number in the top `shardBits` bits, the rest random:
 *
 *   IKE SPI (64 bits):  | shard (shardBits) | random (64 - shardBits)           |
 *   ESP SPI (32 bits):  | shard (shardBits) | random (32 - shardBits)           |
 *
 * so an edge can find the owner of any frame from the SPI alone, without state. ESP SPIs 1..255
 * are reserved (RFC 4303 §2.1) and 0 means "no SPI"; IKE SPIs must be non-zero (RFC 7296 §3.1).
 * Allocation never returns those values.
 */
/** Injected randomness (structurally the same as @ikegate/crypto's RandomBytes). */
export type RandomBytes = (length: number) => Uint8Array;
import { LocalUsageError } from './errors.js';

export const IKE_SPI_LENGTH = 8;
export const MIN_ESP_SPI = 256;
export const DEFAULT_SHARD_BITS = 10;
/** Random tries before a shard counts as full; at 22 free bits a try fails with p = load factor. */
const MAX_ALLOCATION_TRIES = 64;

export interface ShardLayout {
  /** 1..16: 2^shardBits shards. Fixed for the life of a cluster (it is baked into every SPI). */
  readonly shardBits: number;
}

export function checkLayout(layout: ShardLayout): void {
  if (!Number.isInteger(layout.shardBits) || layout.shardBits < 1 || layout.shardBits > 16) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CLUSTER_BAD_LAYOUT',
      `shardBits must be 1..16, got ${layout.shardBits}`,
    );
  }
}

export function shardCount(layout: ShardLayout): number {
  return 1 << layout.shardBits;
}

function checkShard(shard: number, layout: ShardLayout): void {
  if (!Number.isInteger(shard) || shard < 0 || shard >= shardCount(layout)) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CLUSTER_BAD_SHARD',
      `shard ${shard} outside 0..${shardCount(layout) - 1}`,
    );
  }
}

/** The shard an IKE SPI belongs to. `spi` must hold at least 2 octets (callers pass the 8-octet SPI). */
export function ikeSpiShard(spi: Uint8Array, layout: ShardLayout): number {
  const top16 = ((spi[0] ?? 0) << 8) | (spi[1] ?? 0);
  return top16 >>> (16 - layout.shardBits);
}

/** The shard an ESP SPI belongs to. */
export function espSpiShard(spi: number, layout: ShardLayout): number {
  return spi >>> (32 - layout.shardBits);
}

/** A random IKE SPI in `shard`; never all-zero. */
export function makeIkeSpi(shard: number, random: RandomBytes, layout: ShardLayout): Uint8Array {
  checkShard(shard, layout);
  for (let i = 0; i < MAX_ALLOCATION_TRIES; i++) {
    const spi = random(IKE_SPI_LENGTH).slice(0, IKE_SPI_LENGTH);
    const keep = 16 - layout.shardBits;
    const top16 = (shard << keep) | ((((spi[0] ?? 0) << 8) | (spi[1] ?? 0)) & ((1 << keep) - 1));
    spi[0] = top16 >>> 8;
    spi[1] = top16 & 0xff;
    if (spi.some((b) => b !== 0)) return spi;
  }
  throw new LocalUsageError('IKEGATE_ERR_CLUSTER_SHARD_FULL', 'random source returned only zero SPIs');
}

/** A random ESP SPI in `shard`; never in the reserved range 0..255. */
export function makeEspSpi(shard: number, random: RandomBytes, layout: ShardLayout): number {
  checkShard(shard, layout);
  const freeBits = 32 - layout.shardBits;
  const mask = freeBits === 32 ? 0xffffffff : 2 ** freeBits - 1;
  for (let i = 0; i < MAX_ALLOCATION_TRIES; i++) {
    const r = random(4);
    const low = (((r[0] ?? 0) << 24) | ((r[1] ?? 0) << 16) | ((r[2] ?? 0) << 8) | (r[3] ?? 0)) >>> 0;
    const spi = (shard * 2 ** freeBits + (low & mask)) >>> 0;
    if (spi >= MIN_ESP_SPI) return spi;
  }
  throw new LocalUsageError(
    'IKEGATE_ERR_CLUSTER_SHARD_FULL',
    'random source returned only reserved ESP SPIs',
  );
}

/**
 * Allocates SPIs in a shard that are unique among those `inUse` reports. Bounded: after
 * MAX_ALLOCATION_TRIES collisions the shard counts as full (LocalUsageError), which at ESP's
 * 22 free bits (10 shard bits) only happens when millions of SAs share one shard.
 */
export class ShardSpiAllocator {
  constructor(
    private readonly layout: ShardLayout,
    private readonly random: RandomBytes,
  ) {
    checkLayout(layout);
  }

  ikeSpi(shard: number, inUse: (spi: Uint8Array) => boolean): Uint8Array {
    for (let i = 0; i < MAX_ALLOCATION_TRIES; i++) {
      const spi = makeIkeSpi(shard, this.random, this.layout);
      if (!inUse(spi)) return spi;
    }
    throw new LocalUsageError('IKEGATE_ERR_CLUSTER_SHARD_FULL', `no free IKE SPI in shard ${shard}`);
  }

  espSpi(shard: number, inUse: (spi: number) => boolean): number {
    for (let i = 0; i < MAX_ALLOCATION_TRIES; i++) {
      const spi = makeEspSpi(shard, this.random, this.layout);
      if (!inUse(spi)) return spi;
    }
    throw new LocalUsageError('IKEGATE_ERR_CLUSTER_SHARD_FULL', `no free ESP SPI in shard ${shard}`);
  }
}
