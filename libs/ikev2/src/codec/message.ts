/**
 * Whole messages: header + payload chain (RFC 7296 §3.1-3.2).
 */
import { decodePayloadChain, encodePayloads } from './chain.js';
import { IKE_HEADER_LENGTH } from './constants.js';
import { decodeHeader, type MessageHeaderFields, writeHeader } from './header.js';
import type { IkeMessage, Payload } from './types.js';

/** Header and outer payloads; an SK/SKF payload stays encrypted (see decryptMessage). */
export function decodeMessage(buf: Uint8Array): IkeMessage {
  const header = decodeHeader(buf);
  const payloads = decodePayloadChain(header.nextPayload, buf.subarray(IKE_HEADER_LENGTH, header.length));
  return { header, payloads };
}

/** An unprotected message (IKE_SA_INIT, or an unauthenticated notify). */
export function encodeMessage(h: MessageHeaderFields, payloads: readonly Payload[]): Uint8Array {
  const chain = encodePayloads(payloads);
  const out = new Uint8Array(IKE_HEADER_LENGTH + chain.bytes.length);
  writeHeader(out, h, chain.firstPayload, out.length);
  out.set(chain.bytes, IKE_HEADER_LENGTH);
  return out;
}
