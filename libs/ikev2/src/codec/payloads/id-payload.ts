/**
 * RFC 7296 §3.5 Identification payloads (IDi = 35, IDr = 36).
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |   ID Type     |                 RESERVED                      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                   Identification Data                         ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * RESERVED is ignored on receipt (§3.5 says "MUST be sent as zero"); the AUTH computation
 * (§2.15) covers these octets as received, which is why decoders keep views into the message.
 */
import { need } from '../bytes.js';
import { IdType, type PayloadType } from '../constants.js';
import type { IdPayload } from '../types.js';

/** ID Type (1) + RESERVED (3). */
export const ID_FIELDS_LENGTH = 4;
const IPV4_ADDRESS_LENGTH = 4;
const IPV6_ADDRESS_LENGTH = 16;

export function decodeId(
  body: Uint8Array,
  critical: boolean,
  type: typeof PayloadType.IDi | typeof PayloadType.IDr,
): IdPayload {
  need(body, ID_FIELDS_LENGTH, 'ID payload');
  return { type, critical, idType: body[0]!, data: body.subarray(ID_FIELDS_LENGTH) };
}

/** §3.5: address IDs have the address length; others must not be empty. */
export function verifyId(p: IdPayload): string | undefined {
  if (p.idType === IdType.ID_IPV4_ADDR && p.data.length !== IPV4_ADDRESS_LENGTH)
    return `ID_IPV4_ADDR of ${p.data.length} octets`;
  if (p.idType === IdType.ID_IPV6_ADDR && p.data.length !== IPV6_ADDRESS_LENGTH)
    return `ID_IPV6_ADDR of ${p.data.length} octets`;
  if (p.data.length === 0) return `empty identification of type ${p.idType}`;
  return undefined;
}

export function encodeId(p: IdPayload): Uint8Array {
  const out = new Uint8Array(ID_FIELDS_LENGTH + p.data.length);
  out[0] = p.idType;
  out.set(p.data, ID_FIELDS_LENGTH);
  return out;
}
