/**
 * Notification Data layouts for the notifies whose data has structure. Each decoder returns the
 * value, or throws INVALID_SYNTAX; the Notify payload itself is decoded in payloads/notify.ts.
 */
import { LocalUsageError } from '../errors.js';
import { put16, put32, syntax, u16, u32 } from './bytes.js';
import { ProtocolId } from './constants.js';

/** RFC 7296 §2.23: NAT_DETECTION_*_IP data is a 20-octet SHA-1 digest. */
export const NAT_DETECTION_LENGTH = 20;

export function decodeNatDetection(data: Uint8Array): Uint8Array {
  if (data.length !== NAT_DETECTION_LENGTH) throw syntax(`NAT detection data of ${data.length} octets`);
  return data;
}

/** RFC 7296 §2.6: a COOKIE is 1 to 64 octets. */
export function decodeCookie(data: Uint8Array): Uint8Array {
  if (data.length < 1 || data.length > MAX_COOKIE_LENGTH) throw syntax(`COOKIE of ${data.length} octets`);
  return data;
}

/** RFC 7296 §1.3: INVALID_KE_PAYLOAD carries the accepted group as 2 octets. */
export function decodeInvalidKe(data: Uint8Array): number {
  if (data.length !== 2) throw syntax(`INVALID_KE_PAYLOAD data of ${data.length} octets`);
  return u16(data, 0);
}

export function encodeInvalidKe(group: number): Uint8Array {
  const out = new Uint8Array(2);
  put16(out, 0, group);
  return out;
}

/** RFC 7427 §4: SIGNATURE_HASH_ALGORITHMS is a list of 16-bit hash identifiers. */
export function decodeSignatureHashAlgorithms(data: Uint8Array): number[] {
  if (data.length % 2 !== 0) throw syntax('odd SIGNATURE_HASH_ALGORITHMS length');
  const out: number[] = [];
  for (let i = 0; i < data.length; i += 2) out.push(u16(data, i));
  return out;
}

export function encodeSignatureHashAlgorithms(ids: readonly number[]): Uint8Array {
  const out = new Uint8Array(ids.length * 2);
  ids.forEach((id, i) => {
    put16(out, i * 2, id);
  });
  return out;
}

/** RFC 7296 §3.10.1 SET_WINDOW_SIZE: 4 octets. */
export function decodeWindowSize(data: Uint8Array): number {
  if (data.length !== WINDOW_SIZE_LENGTH) throw syntax(`SET_WINDOW_SIZE data of ${data.length} octets`);
  return u32(data, 0);
}

/**
 * RFC 6311 §4.2 IKEV2_MESSAGE_ID_SYNC: Nonce Data (4) | EXPECTED_SEND_REQ_MESSAGE_ID (4) |
 * EXPECTED_RECV_REQ_MESSAGE_ID (4).
 */
export interface MessageIdSync {
  readonly nonce: number;
  readonly expectedSendRequestId: number;
  readonly expectedRecvRequestId: number;
}

export function decodeMessageIdSync(data: Uint8Array): MessageIdSync {
  if (data.length !== 12) throw syntax(`IKEV2_MESSAGE_ID_SYNC data of ${data.length} octets`);
  return { nonce: u32(data, 0), expectedSendRequestId: u32(data, 4), expectedRecvRequestId: u32(data, 8) };
}

export function encodeMessageIdSync(v: MessageIdSync): Uint8Array {
  const out = new Uint8Array(12);
  put32(out, 0, v.nonce);
  put32(out, 4, v.expectedSendRequestId);
  put32(out, 8, v.expectedRecvRequestId);
  return out;
}

/** RFC 7296 §2.6: the COOKIE is opaque, 1 to 64 octets. */
export const MAX_COOKIE_LENGTH = 64;
/** RFC 7296 §3.10.1 SET_WINDOW_SIZE data length. */
export const WINDOW_SIZE_LENGTH = 4;

export function encodeWindowSize(size: number): Uint8Array {
  const out = new Uint8Array(WINDOW_SIZE_LENGTH);
  put32(out, 0, size);
  return out;
}

/**
 * RFC 7296 §3.10.1 REKEY_SA: the SA being rekeyed is named by the Notify's Protocol ID and SPI
 * (4 octets for ESP/AH); the Notification Data is empty.
 */
export const CHILD_SA_SPI_LENGTH = 4;

export function decodeRekeySa(n: {
  readonly protocolId: number;
  readonly spi: Uint8Array;
  readonly data: Uint8Array;
}): {
  readonly protocolId: number;
  readonly spi: Uint8Array;
} {
  if (n.protocolId !== ProtocolId.AH && n.protocolId !== ProtocolId.ESP)
    throw syntax(`REKEY_SA for protocol ${n.protocolId}`);
  if (n.spi.length !== CHILD_SA_SPI_LENGTH) throw syntax(`REKEY_SA SPI of ${n.spi.length} octets`);
  if (n.data.length !== 0) throw syntax(`REKEY_SA with ${n.data.length} octets of data`);
  return { protocolId: n.protocolId, spi: n.spi };
}

/**
 * RFC 6311 §4.3 IPSEC_REPLAY_COUNTER_SYNC: Nonce Data (4) | Incoming SA Replay Counter, 4 octets,
 * or 8 when the Child SAs use extended sequence numbers. The counter is returned as a bigint so
 * a 64-bit value survives.
 */
export const REPLAY_COUNTER_SYNC_NONCE_LENGTH = 4;

export interface ReplayCounterSync {
  readonly nonce: number;
  readonly incomingReplayCounter: bigint;
}

export function decodeReplayCounterSync(data: Uint8Array): ReplayCounterSync {
  const n = REPLAY_COUNTER_SYNC_NONCE_LENGTH;
  if (data.length === n + 4) return { nonce: u32(data, 0), incomingReplayCounter: BigInt(u32(data, n)) };
  if (data.length === n + 8) {
    const hi = BigInt(u32(data, n));
    return { nonce: u32(data, 0), incomingReplayCounter: (hi << 32n) | BigInt(u32(data, n + 4)) };
  }
  throw syntax(`IPSEC_REPLAY_COUNTER_SYNC data of ${data.length} octets`);
}

/** `esn` selects the 8-octet counter; without it the counter must fit 32 bits. */
export function encodeReplayCounterSync(v: ReplayCounterSync, esn: boolean): Uint8Array {
  const n = REPLAY_COUNTER_SYNC_NONCE_LENGTH;
  const c = v.incomingReplayCounter;
  const limit = esn ? 1n << 64n : 1n << 32n;
  if (c < 0n || c >= limit)
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_VALUE', `replay counter ${c} does not fit`);
  const out = new Uint8Array(n + (esn ? 8 : 4));
  put32(out, 0, v.nonce);
  if (esn) {
    put32(out, n, Number(c >> 32n));
    put32(out, n + 4, Number(c & 0xffffffffn));
  } else put32(out, n, Number(c));
  return out;
}

/**
 * RFC 9370 §3.2.4 ADDITIONAL_KEY_EXCHANGE: opaque link data the responder chose to tie an
 * IKE_FOLLOWUP_KE exchange to its state; the initiator echoes it unchanged. Returned as a view.
 */
export function decodeAdditionalKeyExchange(data: Uint8Array): Uint8Array {
  return data;
}
