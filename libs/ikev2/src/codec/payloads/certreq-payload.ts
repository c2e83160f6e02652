/**
 * RFC 7296 §3.7 Certificate Request payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Cert Encoding |                                               |
 * +-+-+-+-+-+-+-+-+                                               |
 * ~                    Certification Authority                    ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * For X.509 (encoding 4) the Certification Authority field is a concatenation of 20-octet SHA-1
 * hashes of trusted CAs' public keys (SubjectPublicKeyInfo).
 */
import { need } from '../bytes.js';
import { CertEncoding, PayloadType } from '../constants.js';
import type { CertReqPayload } from '../types.js';
import { CERT_ENCODING_LENGTH } from './cert-payload.js';

export const CA_HASH_LENGTH = 20;

export function decodeCertReq(body: Uint8Array, critical: boolean): CertReqPayload {
  need(body, CERT_ENCODING_LENGTH, 'CERTREQ payload');
  return {
    type: PayloadType.CERTREQ,
    critical,
    encoding: body[0]!,
    data: body.subarray(CERT_ENCODING_LENGTH),
  };
}

/** §3.7: an X.509 CERTREQ is a whole number of 20-octet hashes. */
export function verifyCertReq(p: CertReqPayload): string | undefined {
  if (p.encoding === CertEncoding.X509_CERT_SIGNATURE && p.data.length % CA_HASH_LENGTH !== 0)
    return `X.509 CERTREQ of ${p.data.length} octets is not a list of SHA-1 hashes`;
  return undefined;
}

/** The CA hashes of an X.509 CERTREQ, as views. Call verifyCertReq first. */
export function certReqAuthorities(p: CertReqPayload): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off + CA_HASH_LENGTH <= p.data.length; off += CA_HASH_LENGTH)
    out.push(p.data.subarray(off, off + CA_HASH_LENGTH));
  return out;
}
