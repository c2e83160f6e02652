/**
 * RFC 7296 §3.14 SK payload protection, with AEAD per RFC 5282 and CBC + integrity per §3.14.
 *
 * Plaintext = inner payloads | Padding | Pad Length (1 octet). With CBC it is padded to the
 * block size and the ICV covers the whole message from the IKE header to the end of the
 * ciphertext; with AEAD no padding is needed and the associated data is everything before the IV
 * (IKE header, unencrypted payloads, SK generic header; for SKF also Fragment Number and Total
 * Fragments, RFC 7383 §2.5.3).
 *
 * Integrity failure -> RemoteProtocolError IKEGATE_ERR_IKEV2_INTEGRITY with no notify: the
 * message is dropped silently (§2.21.1). Anything malformed after integrity passed is an
 * authenticated syntax error -> INVALID_SYNTAX.
 */
import type { AeadKey, CipherKey, IntegrityKey, RandomBytes } from '@ikegate/crypto';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { concat, put16, syntax } from './bytes.js';
import { decodePayloadChain, encodePayloads } from './chain.js';
import { GENERIC_PAYLOAD_HEADER_LENGTH, IKE_HEADER_LENGTH, PayloadType } from './constants.js';
import { type MessageHeaderFields, writeHeader } from './header.js';
import type { IkeMessage, Payload } from './types.js';

export type SkProtection =
  | { readonly kind: 'aead'; readonly key: AeadKey; readonly ivLength: number; readonly icvLength: number }
  | {
      readonly kind: 'cbc';
      readonly key: CipherKey;
      readonly blockSize: number;
      readonly ivLength: number;
      readonly integrity: IntegrityKey;
      readonly icvLength: number;
    };

function blockSize(p: SkProtection): number {
  return p.kind === 'cbc' ? p.blockSize : 1;
}

/** inner | padding | pad length, padded for the cipher. */
export function padPlaintext(p: SkProtection, inner: Uint8Array): Uint8Array {
  const bs = blockSize(p);
  const padLength = (bs - ((inner.length + 1) % bs)) % bs;
  const out = new Uint8Array(inner.length + padLength + 1);
  out.set(inner, 0);
  out[out.length - 1] = padLength;
  return out;
}

/** Octets the protected body (IV | ciphertext | ICV) takes for `plaintextLength` padded octets. */
export function protectedBodyLength(p: SkProtection, plaintextLength: number): number {
  return p.ivLength + plaintextLength + p.icvLength;
}

/**
 * Fills out[ivOffset..] with IV | ciphertext | ICV for the padded `plaintext`; out[0..ivOffset)
 * (header and payload headers) must already be final, since it is authenticated.
 */
export function protectInto(
  out: Uint8Array,
  ivOffset: number,
  p: SkProtection,
  random: RandomBytes,
  plaintext: Uint8Array,
): void {
  const iv = random(p.ivLength).subarray(0, p.ivLength);
  if (iv.length !== p.ivLength)
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_CRYPTO', 'random source returned a short IV');
  out.set(iv, ivOffset);
  const ctOffset = ivOffset + p.ivLength;
  if (p.kind === 'aead') {
    p.key.seal(iv, out.subarray(0, ivOffset), plaintext, out.subarray(ctOffset));
    return;
  }
  p.key.encrypt(iv, plaintext, out.subarray(ctOffset, ctOffset + plaintext.length));
  const icv = p.integrity.compute(out.subarray(0, ctOffset + plaintext.length));
  out.set(icv.subarray(0, p.icvLength), ctOffset + plaintext.length);
}

/**
 * Verifies and decrypts a protected body that ends the message `raw`; returns the inner octets
 * without padding. `body` must be a view into `raw`.
 */
export function unprotect(raw: Uint8Array, body: Uint8Array, p: SkProtection): Uint8Array {
  const bodyOffset = body.byteOffset - raw.byteOffset;
  if (body.buffer !== raw.buffer || bodyOffset < 0 || bodyOffset + body.length !== raw.length) {
    throw new LocalUsageError(
      'IKEGATE_ERR_IKEV2_BAD_STATE',
      'the SK body must be a view at the end of the raw message',
    );
  }
  const minimum = p.ivLength + p.icvLength + blockSize(p);
  if (body.length < minimum) throw integrityError(`SK body of ${body.length} octets`);
  const iv = body.subarray(0, p.ivLength);
  let plaintext: Uint8Array;
  if (p.kind === 'aead') {
    const opened = p.key.open(iv, raw.subarray(0, bodyOffset), body.subarray(p.ivLength));
    if (opened === null) throw integrityError('AEAD authentication failed');
    plaintext = opened;
  } else {
    const icvAt = raw.length - p.icvLength;
    if (!p.integrity.verify(raw.subarray(icvAt), raw.subarray(0, icvAt)))
      throw integrityError('ICV mismatch');
    const ct = body.subarray(p.ivLength, body.length - p.icvLength);
    if (ct.length % p.blockSize !== 0)
      throw syntax(`ciphertext of ${ct.length} octets is not a block multiple`);
    plaintext = p.key.decrypt(iv, ct);
  }
  const padLength = plaintext[plaintext.length - 1]!;
  if (padLength + 1 > plaintext.length) {
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_PADDING',
      `pad length ${padLength} in ${plaintext.length}`,
    );
  }
  return plaintext.subarray(0, plaintext.length - 1 - padLength);
}

function integrityError(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_INTEGRITY', why, undefined);
}

/** header | [unprotected payloads] | SK{inner}. IV and padding-free AEAD / padded CBC. */
export function encodeProtectedMessage(
  h: MessageHeaderFields,
  inner: readonly Payload[],
  protection: SkProtection,
  random: RandomBytes,
  unprotected: readonly Payload[] = [],
): Uint8Array {
  const outer = encodePayloads(unprotected, PayloadType.SK);
  const innerChain = encodePayloads(inner);
  const plaintext = padPlaintext(protection, innerChain.bytes);
  const skLength = GENERIC_PAYLOAD_HEADER_LENGTH + protectedBodyLength(protection, plaintext.length);
  const total = IKE_HEADER_LENGTH + outer.bytes.length + skLength;
  if (skLength > 0xffff)
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'message too large for one SK payload');
  const out = new Uint8Array(total);
  writeHeader(out, h, outer.firstPayload, total);
  out.set(outer.bytes, IKE_HEADER_LENGTH);
  const sk = IKE_HEADER_LENGTH + outer.bytes.length;
  out[sk] = innerChain.firstPayload;
  put16(out, sk + 2, skLength);
  protectInto(out, sk + GENERIC_PAYLOAD_HEADER_LENGTH, protection, random, plaintext);
  return out;
}

/**
 * Verifies and decrypts the SK payload of `msg` (decoded from `raw`), returning the inner
 * payloads. @throws RemoteProtocolError: IKEGATE_ERR_IKEV2_INTEGRITY (drop silently), or
 * INVALID_SYNTAX for an authenticated but malformed plaintext.
 */
export function decryptMessage(raw: Uint8Array, msg: IkeMessage, protection: SkProtection): Payload[] {
  const sk = msg.payloads[msg.payloads.length - 1];
  if (sk === undefined || sk.type !== PayloadType.SK || !('body' in sk)) throw syntax('no SK payload');
  return decodeInnerChain(sk.firstInnerPayload, unprotect(raw, sk.body, protection));
}

/** The decrypted chain: SK or SKF inside SK is INVALID_SYNTAX (§3.14: SK is always last and outer). */
export function decodeInnerChain(firstPayload: number, plaintext: Uint8Array): Payload[] {
  const payloads = decodePayloadChain(firstPayload, plaintext);
  for (const p of payloads) {
    if (p.type === PayloadType.SK || p.type === PayloadType.SKF) throw syntax('SK/SKF inside SK');
  }
  return payloads;
}

export { concat };
