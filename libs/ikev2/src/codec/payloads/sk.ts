/**
 * RFC 7296 §3.14 Encrypted and Authenticated (SK) payload, and RFC 7383 §2.5 Encrypted and
 * Authenticated Fragment (SKF) payload, as received: still encrypted.
 *
 * SK body:  | Initialization Vector ~ | Encrypted IKE Payloads ~ | Padding | Pad Length | ICV ~
 * SKF body: | Fragment Number (16) | Total Fragments (16) | IV ~ | Encrypted content ~ | ICV ~
 *
 * The SK header's Next Payload is the type of the first inner payload; in SKF only fragment 1
 * carries it (0 in the others).
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { SkfPayload, SkPayload } from '../types.js';

export const SKF_FIELDS_LENGTH = 4;

export function decodeSk(body: Uint8Array, critical: boolean, firstInnerPayload: number): SkPayload {
  return { type: PayloadType.SK, critical, firstInnerPayload, body };
}

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
