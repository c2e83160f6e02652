/**
 * RFC 7296 §3.16 EAP payload, carrying one EAP message (RFC 3748 §4) opaque.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       EAP Message                             ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * EAP Message: | Code (8) | Identifier (8) | Length (16) | Type (8) | Type_Data ~
 * (Success/Failure have no Type.) The EAP Length must equal the payload data length.
 */
import { need, syntax, u16 } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { EapPayload } from '../types.js';

/** Code (1) + Identifier (1) + Length (2). */
export const EAP_HEADER_LENGTH = 4;

export function decodeEap(body: Uint8Array, critical: boolean): EapPayload {
  need(body, EAP_HEADER_LENGTH, 'EAP payload');
  const eapLength = u16(body, 2);
  if (eapLength !== body.length) throw syntax(`EAP Length ${eapLength} in ${body.length} octets`);
  return { type: PayloadType.EAP, critical, data: body };
}

export function encodeEap(p: EapPayload): Uint8Array {
  return p.data;
}
