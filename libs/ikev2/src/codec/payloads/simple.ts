/**
 * The payloads whose body is a few fixed fields and opaque data:
 *
 * KE (RFC 7296 §3.4):      | Diffie-Hellman Group Num (16) | RESERVED (16) | Key Exchange Data ~
 * IDi/IDr (§3.5):          | ID Type (8) | RESERVED (24) | Identification Data ~
 * CERT (§3.6):             | Cert Encoding (8) | Certificate Data ~
 * CERTREQ (§3.7):          | Cert Encoding (8) | Certification Authority ~
 * AUTH (§3.8):             | Auth Method (8) | RESERVED (24) | Authentication Data ~
 * Nonce (§3.9):            | Nonce Data (16..256 octets) ~
 * Vendor ID (§3.12):       | Vendor ID ~
 * EAP (§3.16):             | Code (8) | Identifier (8) | Length (16) | Type (8) | Type Data ~
 *
 * Decoders check lengths; `verify*` functions check allowed values.
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType } from '../constants.js';
import type {
  AuthPayload,
  CertPayload,
  CertReqPayload,
  EapPayload,
  IdPayload,
  KePayload,
  NoncePayload,
  VendorIdPayload,
} from '../types.js';

export const MIN_NONCE_LENGTH = 16;
export const MAX_NONCE_LENGTH = 256;
const EAP_HEADER_LENGTH = 4;

export function decodeKe(body: Uint8Array, critical: boolean): KePayload {
  need(body, 4, 'KE payload');
  return { type: PayloadType.KE, critical, group: u16(body, 0), data: body.subarray(4) };
}

export function encodeKe(p: KePayload): Uint8Array {
  const out = new Uint8Array(4 + p.data.length);
  put16(out, 0, p.group);
  out.set(p.data, 4);
  return out;
}

export function decodeId(body: Uint8Array, critical: boolean, type: 35 | 36): IdPayload {
  need(body, 4, 'ID payload');
  return { type, critical, idType: body[0]!, data: body.subarray(4) };
}

export function encodeId(p: IdPayload): Uint8Array {
  const out = new Uint8Array(4 + p.data.length);
  out[0] = p.idType;
  out.set(p.data, 4);
  return out;
}

export function decodeCert(body: Uint8Array, critical: boolean): CertPayload {
  need(body, 1, 'CERT payload');
  return { type: PayloadType.CERT, critical, encoding: body[0]!, data: body.subarray(1) };
}

export function decodeCertReq(body: Uint8Array, critical: boolean): CertReqPayload {
  need(body, 1, 'CERTREQ payload');
  return { type: PayloadType.CERTREQ, critical, encoding: body[0]!, data: body.subarray(1) };
}

export function encodeCert(p: CertPayload | CertReqPayload): Uint8Array {
  const out = new Uint8Array(1 + p.data.length);
  out[0] = p.encoding;
  out.set(p.data, 1);
  return out;
}

export function decodeAuth(body: Uint8Array, critical: boolean): AuthPayload {
  need(body, 4, 'AUTH payload');
  return { type: PayloadType.AUTH, critical, method: body[0]!, data: body.subarray(4) };
}

export function encodeAuth(p: AuthPayload): Uint8Array {
  const out = new Uint8Array(4 + p.data.length);
  out[0] = p.method;
  out.set(p.data, 4);
  return out;
}

export function decodeNonce(body: Uint8Array, critical: boolean): NoncePayload {
  return { type: PayloadType.NONCE, critical, data: body };
}

/** §3.9: between 16 and 256 octets. */
export function verifyNonce(p: NoncePayload): string | undefined {
  return p.data.length < MIN_NONCE_LENGTH || p.data.length > MAX_NONCE_LENGTH
    ? `nonce of ${p.data.length} octets`
    : undefined;
}

export function decodeVendorId(body: Uint8Array, critical: boolean): VendorIdPayload {
  return { type: PayloadType.VENDOR_ID, critical, data: body };
}

/** §3.16: the EAP message's own Length must equal the payload data length (RFC 3748 §4). */
export function decodeEap(body: Uint8Array, critical: boolean): EapPayload {
  need(body, EAP_HEADER_LENGTH, 'EAP payload');
  if (u16(body, 2) !== body.length) throw syntax(`EAP Length ${u16(body, 2)} in ${body.length} octets`);
  return { type: PayloadType.EAP, critical, data: body };
}

export function opaque(p: { readonly data: Uint8Array }): Uint8Array {
  return p.data;
}
