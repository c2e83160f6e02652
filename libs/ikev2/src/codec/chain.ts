/**
 * RFC 7296 §3.2 generic payload header and payload chains.
 *
 * | Next Payload (8) |C| RESERVED (7) |        Payload Length (16)         |
 *
 * A chain is walked from the header's (or SK's) Next Payload until it is 0. SK and SKF end the
 * chain: their Next Payload names the first *inner* payload, and they must run to the end of the
 * message (§3.14, RFC 7383 §2.5). An unknown payload with the Critical bit set is rejected with
 * UNSUPPORTED_CRITICAL_PAYLOAD carrying its type (§2.5); without it, it is kept and skipped.
 */
import { RemoteProtocolError } from '../errors.js';
import { concat, put16, syntax, u16 } from './bytes.js';
import { GENERIC_PAYLOAD_HEADER_LENGTH, NotifyError, PayloadType } from './constants.js';
import { decodeAuth, encodeAuth } from './payloads/auth-payload.js';
import { decodeCert, encodeCert } from './payloads/cert-payload.js';
import { decodeCertReq } from './payloads/certreq-payload.js';
import { decodeCp, encodeCp } from './payloads/cp-payload.js';
import { decodeDelete, encodeDelete } from './payloads/delete-payload.js';
import { decodeEap, encodeEap } from './payloads/eap-payload.js';
import { decodeId, encodeId } from './payloads/id-payload.js';
import { decodeKe, encodeKe } from './payloads/ke-payload.js';
import { decodeNonce, encodeNonce } from './payloads/nonce-payload.js';
import { decodeNotify, encodeNotify } from './payloads/notify-payload.js';
import { decodeSa, encodeSa } from './payloads/sa-payload.js';
import { decodeSk } from './payloads/sk-payload.js';
import { decodeSkf, encodeSkfFields } from './payloads/skf-payload.js';
import { decodeTs, encodeTs } from './payloads/ts-payload.js';
import { decodeVendorId, encodeVendorId } from './payloads/vendor-id-payload.js';
import type { Payload } from './types.js';

/** More payloads than any legitimate IKEv2 message carries; bounds work per message. */
export const MAX_PAYLOADS_PER_CHAIN = 64;
const CRITICAL = 0x80;

/** Decodes one known payload's body; undefined for an unknown type. */
function decodeBody(type: number, body: Uint8Array, critical: boolean, next: number): Payload | undefined {
  switch (type) {
    case PayloadType.SA:
      return decodeSa(body, critical);
    case PayloadType.KE:
      return decodeKe(body, critical);
    case PayloadType.IDi:
    case PayloadType.IDr:
      return decodeId(body, critical, type);
    case PayloadType.CERT:
      return decodeCert(body, critical);
    case PayloadType.CERTREQ:
      return decodeCertReq(body, critical);
    case PayloadType.AUTH:
      return decodeAuth(body, critical);
    case PayloadType.NONCE:
      return decodeNonce(body, critical);
    case PayloadType.NOTIFY:
      return decodeNotify(body, critical);
    case PayloadType.DELETE:
      return decodeDelete(body, critical);
    case PayloadType.VENDOR_ID:
      return decodeVendorId(body, critical);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return decodeTs(body, critical, type);
    case PayloadType.SK:
      return decodeSk(body, critical, next);
    case PayloadType.SKF:
      return decodeSkf(body, critical, next);
    case PayloadType.CP:
      return decodeCp(body, critical);
    case PayloadType.EAP:
      return decodeEap(body, critical);
    default:
      return undefined;
  }
}

/**
 * Decodes the chain that starts with payload type `firstPayload` and must fill `buf` exactly.
 * @throws RemoteProtocolError (INVALID_SYNTAX, or UNSUPPORTED_CRITICAL_PAYLOAD)
 */
export function decodePayloadChain(firstPayload: number, buf: Uint8Array): Payload[] {
  const out: Payload[] = [];
  let type = firstPayload;
  let off = 0;
  while (type !== PayloadType.NONE) {
    if (out.length >= MAX_PAYLOADS_PER_CHAIN) throw syntax('too many payloads');
    if (buf.length - off < GENERIC_PAYLOAD_HEADER_LENGTH) throw syntax(`payload ${type} header truncated`);
    const next = buf[off]!;
    const critical = (buf[off + 1]! & CRITICAL) !== 0;
    const len = u16(buf, off + 2);
    if (len < GENERIC_PAYLOAD_HEADER_LENGTH || off + len > buf.length)
      throw syntax(`payload ${type} length ${len}`);
    const body = buf.subarray(off + GENERIC_PAYLOAD_HEADER_LENGTH, off + len);
    const p = decodeBody(type, body, critical, next);
    if (p === undefined) {
      if (critical) {
        throw new RemoteProtocolError(
          'IKEGATE_ERR_IKEV2_UNSUPPORTED_CRITICAL',
          `unknown critical payload ${type}`,
          NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD,
          Uint8Array.of(type),
        );
      }
      out.push({ type, critical, unknown: true, data: body });
    } else out.push(p);
    off += len;
    if (type === PayloadType.SK || type === PayloadType.SKF) {
      if (off !== buf.length) throw syntax('SK/SKF payload is not the last payload');
      return out;
    }
    type = next;
  }
  if (off !== buf.length) throw syntax(`${buf.length - off} octets after the last payload`);
  return out;
}

function encodeBody(p: Payload): Uint8Array {
  if ('unknown' in p) return p.data;
  switch (p.type) {
    case PayloadType.SA:
      return encodeSa(p);
    case PayloadType.KE:
      return encodeKe(p);
    case PayloadType.IDi:
    case PayloadType.IDr:
      return encodeId(p);
    case PayloadType.CERT:
    case PayloadType.CERTREQ:
      return encodeCert(p);
    case PayloadType.AUTH:
      return encodeAuth(p);
    case PayloadType.NOTIFY:
      return encodeNotify(p);
    case PayloadType.DELETE:
      return encodeDelete(p);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return encodeTs(p);
    case PayloadType.CP:
      return encodeCp(p);
    case PayloadType.NONCE:
      return encodeNonce(p);
    case PayloadType.VENDOR_ID:
      return encodeVendorId(p);
    case PayloadType.EAP:
      return encodeEap(p);
    case PayloadType.SK:
      return p.body;
    case PayloadType.SKF:
      return concat([encodeSkfFields(p.fragmentNumber, p.totalFragments), p.body]);
  }
}

/**
 * Encodes a chain (generic headers included); `firstPayload` goes in the preceding header.
 * `nextAfterLast` is the last payload's Next Payload (SK when unprotected payloads precede SK).
 */
export function encodePayloads(
  payloads: readonly Payload[],
  nextAfterLast: number = PayloadType.NONE,
): { firstPayload: number; bytes: Uint8Array } {
  const bodies = payloads.map(encodeBody);
  const total = bodies.reduce((n, b) => n + GENERIC_PAYLOAD_HEADER_LENGTH + b.length, 0);
  const bytes = new Uint8Array(total);
  let off = 0;
  payloads.forEach((p, i) => {
    const body = bodies[i]!;
    const len = GENERIC_PAYLOAD_HEADER_LENGTH + body.length;
    if (len > 0xffff) throw syntax(`payload ${p.type} of ${len} octets does not fit`);
    // SK/SKF's Next Payload names the first inner payload (§3.14, RFC 7383 §2.5)
    bytes[off] =
      p.type === PayloadType.SK || p.type === PayloadType.SKF
        ? (p as { firstInnerPayload: number }).firstInnerPayload
        : (payloads[i + 1]?.type ?? nextAfterLast);
    bytes[off + 1] = p.critical ? CRITICAL : 0;
    put16(bytes, off + 2, len);
    bytes.set(body, off + GENERIC_PAYLOAD_HEADER_LENGTH);
    off += len;
  });
  return { firstPayload: payloads[0]?.type ?? nextAfterLast, bytes };
}
