/**
 * RFC 7296 §3.6 Certificate payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Cert Encoding |                                               |
 * +-+-+-+-+-+-+-+-+                                               |
 * ~                       Certificate Data                        ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 */
import { need } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type { CertPayload, CertReqPayload } from '../types.js';

/** Cert Encoding (1). Shared with CERTREQ (§3.7). */
export const CERT_ENCODING_LENGTH = 1;

export function decodeCert(body: Uint8Array, critical: boolean): CertPayload {
  need(body, CERT_ENCODING_LENGTH, 'CERT payload');
  return {
    type: PayloadType.CERT,
    critical,
    encoding: body[0]!,
    data: body.subarray(CERT_ENCODING_LENGTH),
  };
}

/** Encodes CERT and CERTREQ bodies alike: Cert Encoding, then data. */
export function encodeCert(p: CertPayload | CertReqPayload): Uint8Array {
  const out = new Uint8Array(CERT_ENCODING_LENGTH + p.data.length);
  out[0] = p.encoding;
  out.set(p.data, CERT_ENCODING_LENGTH);
  return out;
}
