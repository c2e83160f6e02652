/**
 * RFC 7296 §3.12 Vendor ID payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                        Vendor ID (VID)                        ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { PayloadType } from '../constants.js';
import type { VendorIdPayload } from '../types.js';

export function decodeVendorId(body: Uint8Array, critical: boolean): VendorIdPayload {
  return { type: PayloadType.VENDOR_ID, critical, data: body };
}

export function encodeVendorId(p: VendorIdPayload): Uint8Array {
  return p.data;
}
