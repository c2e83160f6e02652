/**
 * RFC 7296 §3.4 Key Exchange payload (RFC 9370: also carries ADDKE data in IKE_FOLLOWUP_KE).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   Diffie-Hellman Group Num    |           RESERVED            |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       Key Exchange Data                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * The data length per group is checked by the crypto provider (KeyExchangeMethod), not here.
 */
import { need, put16, u16 } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { KePayload } from '../types.js';

/** Group Num (2) + RESERVED (2). */
export const KE_FIELDS_LENGTH = 4;

export function decodeKe(body: Uint8Array, critical: boolean): KePayload {
  need(body, KE_FIELDS_LENGTH, 'KE payload');
  return { type: PayloadType.KE, critical, group: u16(body, 0), data: body.subarray(KE_FIELDS_LENGTH) };
}

/** Group 0 is reserved (IANA Transform Type 4), and a KE without data cannot be used. */
export function verifyKe(p: KePayload): string | undefined {
  if (p.group === 0) return 'KE group 0';
  if (p.data.length === 0) return 'KE without data';
  return undefined;
}

export function encodeKe(p: KePayload): Uint8Array {
  const out = new Uint8Array(KE_FIELDS_LENGTH + p.data.length);
  put16(out, 0, p.group);
  out.set(p.data, KE_FIELDS_LENGTH);
  return out;
}
