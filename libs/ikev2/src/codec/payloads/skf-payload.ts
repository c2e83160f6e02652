/**
 * RFC 7383 §2.5 Encrypted and Authenticated Fragment payload, as received: still encrypted.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |        Fragment Number        |        Total Fragments        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                     Initialization Vector                     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                      Encrypted content                        ~
 * +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |               |             Padding (0-255 octets)            |
 * +-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
 * |                                               |  Pad Length   |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                    Integrity Checksum Data                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Fragment Number counts from 1 and must not exceed Total Fragments (§2.5: otherwise the
 * fragment is invalid). Next Payload is non-zero only in fragment 1. With AEAD the associated
 * data runs to the end of Total Fragments (§2.5.3).
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { SkfPayload } from '../types.js';

/** Fragment Number (2) + Total Fragments (2). */
export const SKF_FIELDS_LENGTH = 4;

export function decodeSkf(body: Uint8Array, critical: boolean, firstInnerPayload: number): SkfPayload {
  need(body, SKF_FIELDS_LENGTH, 'SKF payload');
  const fragmentNumber = u16(body, 0);
  const totalFragments = u16(body, 2);
  if (fragmentNumber === 0 || totalFragments === 0 || fragmentNumber > totalFragments) {
    throw syntax(`fragment ${fragmentNumber} of ${totalFragments}`);
  }
  return {
    type: PayloadType.SKF,
    critical,
    firstInnerPayload,
    fragmentNumber,
    totalFragments,
    body: body.subarray(SKF_FIELDS_LENGTH),
  };
}

export function encodeSkfFields(fragmentNumber: number, totalFragments: number): Uint8Array {
  const out = new Uint8Array(SKF_FIELDS_LENGTH);
  put16(out, 0, fragmentNumber);
  put16(out, 2, totalFragments);
  return out;
}
