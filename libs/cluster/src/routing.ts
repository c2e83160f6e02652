/**
 * The edge routing rule (ARCHITECTURE.md): which shard owns a frame, from the frame alone.
 *
 * - ESP: the shard of its SPI (our inbound SPI, which we chose).
 * - IKE: the shard of *our* SPI. The header's I flag (RFC 7296 §3.1) says whether the sender is the
 *   original initiator: set -> our SPI is the responder SPI; clear -> we initiated, our SPI is the
 *   initiator SPI.
 * - An IKE_SA_INIT request (I flag set, responder SPI zero) has no SPI of ours yet: its shard is a
 *   keyed hash of the initiator SPI and the peer's IP address. Never the port: it changes across
 *   TCP connections and NAT rebinding, and a retransmission must reach the same shard. The key is
 *   cluster-wide, so a peer cannot aim its half-open SAs at one shard.
 *
 * Pure: callers pass bytes and strings; nothing is kept between calls.
 */
import { createHmac } from 'node:crypto';
import { espSpiShard, ikeSpiShard, type ShardLayout, shardCount } from './spi.js';

const IKE_HEADER_LENGTH = 28;
const FLAG_INITIATOR = 0x08;
const FLAGS_OFFSET = 19;
const ESP_MIN_HEADER = 8;

export type RouteDecision =
  | {
      readonly kind: 'shard';
      readonly shard: number;
      readonly by: 'responder-spi' | 'initiator-spi' | 'initial-hash';
    }
  | { readonly kind: 'drop'; readonly reason: 'short' | 'zero-spi' };

/** Normalizes an address so "::ffff:192.0.2.1" and "192.0.2.1" hash alike (dual-stack sockets). */
export function normalizePeerAddress(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith('::ffff:') && lower.includes('.') ? lower.slice(7) : lower;
}

/** Shard for an IKE_SA_INIT request: HMAC-SHA-256(key, SPIi | peer IP) reduced to a shard. */
export function initialRequestShard(
  initiatorSpi: Uint8Array,
  peerAddress: string,
  key: Uint8Array,
  layout: ShardLayout,
): number {
  const mac = createHmac('sha256', key)
    .update(initiatorSpi)
    .update(normalizePeerAddress(peerAddress))
    .digest();
  return mac.readUInt32BE(0) % shardCount(layout);
}

function isZero(bytes: Uint8Array): boolean {
  for (const b of bytes) if (b !== 0) return false;
  return true;
}

/** Routes an IKE message (without any non-ESP marker) received from `peerAddress`. */
export function routeIkeMessage(
  message: Uint8Array,
  peerAddress: string,
  initialHashKey: Uint8Array,
  layout: ShardLayout,
): RouteDecision {
  if (message.length < IKE_HEADER_LENGTH) return { kind: 'drop', reason: 'short' };
  const spiI = message.subarray(0, 8);
  const spiR = message.subarray(8, 16);
  const fromOriginalInitiator = ((message[FLAGS_OFFSET] ?? 0) & FLAG_INITIATOR) !== 0;
  if (!fromOriginalInitiator) {
    if (isZero(spiI)) return { kind: 'drop', reason: 'zero-spi' };
    return { kind: 'shard', shard: ikeSpiShard(spiI, layout), by: 'initiator-spi' };
  }
  if (isZero(spiI)) return { kind: 'drop', reason: 'zero-spi' };
  if (isZero(spiR)) {
    return {
      kind: 'shard',
      shard: initialRequestShard(spiI, peerAddress, initialHashKey, layout),
      by: 'initial-hash',
    };
  }
  return { kind: 'shard', shard: ikeSpiShard(spiR, layout), by: 'responder-spi' };
}

/** Routes an ESP packet (SPI | SN | ...). SPI 0 is never valid on the wire (RFC 4303 §2.1). */
export function routeEspPacket(packet: Uint8Array, layout: ShardLayout): RouteDecision {
  if (packet.length < ESP_MIN_HEADER) return { kind: 'drop', reason: 'short' };
  const spi =
    (((packet[0] ?? 0) << 24) | ((packet[1] ?? 0) << 16) | ((packet[2] ?? 0) << 8) | (packet[3] ?? 0)) >>> 0;
  if (spi === 0) return { kind: 'drop', reason: 'zero-spi' };
  return { kind: 'shard', shard: espSpiShard(spi, layout), by: 'responder-spi' };
}
