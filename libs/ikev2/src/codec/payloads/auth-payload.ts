/**
 * RFC 7296 §3.8 Authentication payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Auth Method   |                RESERVED                       |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                      Authentication Data                      ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * With method 14 (RFC 7427 §3) the data starts with a 1-octet length and an ASN.1
 * AlgorithmIdentifier; the crypto library parses that.
 */
import { need } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { AuthPayload } from '../types.js';

/** Auth Method (1) + RESERVED (3). */
export const AUTH_FIELDS_LENGTH = 4;

export function decodeAuth(body: Uint8Array, critical: boolean): AuthPayload {
  need(body, AUTH_FIELDS_LENGTH, 'AUTH payload');
  return { type: PayloadType.AUTH, critical, method: body[0]!, data: body.subarray(AUTH_FIELDS_LENGTH) };
}

export function verifyAuth(p: AuthPayload): string | undefined {
  return p.data.length === 0 ? 'AUTH without data' : undefined;
}

export function encodeAuth(p: AuthPayload): Uint8Array {
  const out = new Uint8Array(AUTH_FIELDS_LENGTH + p.data.length);
  out[0] = p.method;
  out.set(p.data, AUTH_FIELDS_LENGTH);
  return out;
}
