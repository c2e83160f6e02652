/**
 * Notification Data layouts for the notifies whose data has structure. Each decoder returns the
 * value, or throws INVALID_SYNTAX; the Notify payload itself is decoded in payloads/notify.ts.
 */
import { put16, put32, syntax, u16, u32 } from './bytes.js';

/** RFC 7296 §2.23: NAT_DETECTION_*_IP data is a 20-octet SHA-1 digest. */
export const NAT_DETECTION_LENGTH = 20;

export function decodeNatDetection(data: Uint8Array): Uint8Array {
  if (data.length !== NAT_DETECTION_LENGTH) throw syntax(`NAT detection data of ${data.length} octets`);
  return data;
}

/** RFC 7296 §2.6: a COOKIE is 1 to 64 octets. */
export function decodeCookie(data: Uint8Array): Uint8Array {
  if (data.length < 1 || data.length > 64) throw syntax(`COOKIE of ${data.length} octets`);
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
  if (data.length !== 4) throw syntax(`SET_WINDOW_SIZE data of ${data.length} octets`);
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
