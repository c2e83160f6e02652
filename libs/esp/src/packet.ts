/**
 * Layout helpers for an ESP packet (RFC 4303 §2; diagram in constants.ts). They read only the
 * cleartext header and never throw: a packet too short to hold the field gives `undefined`.
 */
import { ESP_HEADER_LENGTH, ESP_SEQUENCE_OFFSET, ESP_SPI_OFFSET } from './constants.js';

/**
 * The SPI of an ESP packet (unsigned 32-bit), or undefined when the packet is shorter than the
 * ESP header. This is all a worker needs for its SPI -> inbound SA lookup. Zero is returned as 0:
 * on port 4500 a zero SPI is the non-ESP marker (see classifyUdpPayload).
 */
export function peekSpi(packet: Uint8Array): number | undefined {
  if (packet.length < ESP_HEADER_LENGTH) return undefined;
  return readU32(packet, ESP_SPI_OFFSET);
}

/** The transmitted (low 32 bits of the) Sequence Number, or undefined when too short. */
export function peekSequence(packet: Uint8Array): number | undefined {
  if (packet.length < ESP_HEADER_LENGTH) return undefined;
  return readU32(packet, ESP_SEQUENCE_OFFSET);
}

export function readU32(b: Uint8Array, offset: number): number {
  return ((b[offset]! << 24) | (b[offset + 1]! << 16) | (b[offset + 2]! << 8) | b[offset + 3]!) >>> 0;
}

export function writeU32(b: Uint8Array, offset: number, value: number): void {
  b[offset] = value >>> 24;
  b[offset + 1] = value >>> 16;
  b[offset + 2] = value >>> 8;
  b[offset + 3] = value;
}
