/**
 * RFC 7296 §3.9 Nonce payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                            Nonce Data                         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * "The size of the Nonce Data MUST be between 16 and 256 octets, inclusive."
 */
import { PayloadType } from '../constants.js';
import type { NoncePayload } from '../types.js';

export const MIN_NONCE_LENGTH = 16;
export const MAX_NONCE_LENGTH = 256;

export function decodeNonce(body: Uint8Array, critical: boolean): NoncePayload {
  return { type: PayloadType.NONCE, critical, data: body };
}

export function verifyNonce(p: NoncePayload): string | undefined {
  return p.data.length < MIN_NONCE_LENGTH || p.data.length > MAX_NONCE_LENGTH
    ? `nonce of ${p.data.length} octets`
    : undefined;
}

export function encodeNonce(p: NoncePayload): Uint8Array {
  return p.data;
}
