/**
 * RFC 7383 IKEv2 message fragmentation: sending (§2.5) and reassembly (§2.6).
 *
 * Each fragment is a whole IKE message (same header, Message ID and exchange) whose only payload
 * is SKF: Fragment Number, Total Fragments, then its own IV | encrypted chunk | ICV. The chunks,
 * decrypted and concatenated in order, are the inner payload chain that one SK would have carried;
 * fragment 1's SKF Next Payload names its first payload. Never used over TCP (RFC 9329 / PROTOCOL.md):
 * the caller decides.
 */
import type { RandomBytes } from '@ikegate/crypto';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { concat, put16 } from './bytes.js';
import { encodePayloads } from './chain.js';
import { GENERIC_PAYLOAD_HEADER_LENGTH, IKE_HEADER_LENGTH, PayloadType } from './constants.js';
import { type MessageHeaderFields, writeHeader } from './header.js';
import { SKF_FIELDS_LENGTH } from './payloads/skf-payload.js';
import {
  decodeInnerChain,
  padPlaintext,
  protectInto,
  protectedBodyLength,
  type SkProtection,
  unprotect,
} from './protect.js';
import type { IkeMessage, Payload, SkfPayload } from './types.js';

const SKF_OVERHEAD = IKE_HEADER_LENGTH + GENERIC_PAYLOAD_HEADER_LENGTH + SKF_FIELDS_LENGTH;

/** Splits `inner` into SKF fragments, each a whole message of at most `maxFragmentLength` octets. */
export function encodeProtectedFragments(
  h: MessageHeaderFields,
  inner: readonly Payload[],
  protection: SkProtection,
  random: RandomBytes,
  maxFragmentLength: number,
): Uint8Array[] {
  const chain = encodePayloads(inner);
  const bs = protection.kind === 'cbc' ? protection.blockSize : 1;
  const room = maxFragmentLength - SKF_OVERHEAD - protection.ivLength - protection.icvLength;
  const chunkMax = Math.floor(room / bs) * bs - 1;
  if (chunkMax < 1) {
    throw new LocalUsageError(
      'IKEGATE_ERR_IKEV2_FRAGMENT',
      `fragments of ${maxFragmentLength} octets cannot carry data`,
    );
  }
  const total = Math.max(1, Math.ceil(chain.bytes.length / chunkMax));
  if (total > 0xffff) throw new LocalUsageError('IKEGATE_ERR_IKEV2_FRAGMENT', `${total} fragments`);
  const out: Uint8Array[] = [];
  for (let i = 0; i < total; i++) {
    const plaintext = padPlaintext(protection, chain.bytes.subarray(i * chunkMax, (i + 1) * chunkMax));
    const skfLength =
      GENERIC_PAYLOAD_HEADER_LENGTH + SKF_FIELDS_LENGTH + protectedBodyLength(protection, plaintext.length);
    const msg = new Uint8Array(IKE_HEADER_LENGTH + skfLength);
    writeHeader(msg, h, PayloadType.SKF, msg.length);
    msg[IKE_HEADER_LENGTH] = i === 0 ? chain.firstPayload : PayloadType.NONE;
    put16(msg, IKE_HEADER_LENGTH + 2, skfLength);
    put16(msg, IKE_HEADER_LENGTH + 4, i + 1);
    put16(msg, IKE_HEADER_LENGTH + 6, total);
    protectInto(msg, SKF_OVERHEAD, protection, random, plaintext);
    out.push(msg);
  }
  return out;
}

export type ReassemblyResult =
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'complete'; readonly messageId: number; readonly payloads: Payload[] }
  | {
      readonly kind: 'dropped';
      readonly reason:
        'not_fragment' | 'integrity' | 'stale_total' | 'too_many_fragments' | 'too_large' | 'old_message';
    };

interface Pending {
  readonly messageId: number;
  readonly exchangeType: number;
  total: number;
  firstPayload: number;
  chunks: Map<number, Uint8Array>;
  bytes: number;
}

/**
 * Collects the fragments of one message at a time per IKE SA and direction (RFC 7383 §2.6).
 * Every fragment is authenticated before it is kept; memory is bounded by `maxBytes`.
 */
export class FragmentReassembler {
  readonly #maxFragments: number;
  readonly #maxBytes: number;
  #pending: Pending | undefined;

  constructor(limits: { maxFragments?: number; maxBytes?: number } = {}) {
    this.#maxFragments = limits.maxFragments ?? 64;
    this.#maxBytes = limits.maxBytes ?? 65535;
  }

  /** Octets of decrypted fragments held now. */
  get bufferedBytes(): number {
    return this.#pending?.bytes ?? 0;
  }

  /**
   * @param raw the received fragment message; @param msg its decodeMessage() result.
   * @throws RemoteProtocolError (INVALID_SYNTAX) only when a complete, authenticated message is malformed.
   */
  add(raw: Uint8Array, msg: IkeMessage, protection: SkProtection): ReassemblyResult {
    const skf = msg.payloads[msg.payloads.length - 1];
    if (skf === undefined || skf.type !== PayloadType.SKF) return { kind: 'dropped', reason: 'not_fragment' };
    const f = skf as SkfPayload;
    if (f.totalFragments > this.#maxFragments) return { kind: 'dropped', reason: 'too_many_fragments' };
    let chunk: Uint8Array;
    try {
      chunk = unprotect(raw, f.body, protection);
    } catch (e) {
      if (e instanceof RemoteProtocolError) return { kind: 'dropped', reason: 'integrity' };
      throw e;
    }
    const id = msg.header.messageId;
    let p = this.#pending;
    if (p !== undefined && p.messageId !== id) {
      // RFC 7383 §2.6: fragments of an older message are stale once a newer one starts
      if (id < p.messageId) return { kind: 'dropped', reason: 'old_message' };
      p = undefined;
    }
    if (p !== undefined && f.totalFragments < p.total) return { kind: 'dropped', reason: 'stale_total' };
    if (p === undefined || f.totalFragments > p.total) {
      p = {
        messageId: id,
        exchangeType: msg.header.exchangeType,
        total: f.totalFragments,
        firstPayload: PayloadType.NONE,
        chunks: new Map(),
        bytes: 0,
      };
      this.#pending = p;
    }
    if (p.chunks.has(f.fragmentNumber)) return { kind: 'incomplete' };
    if (p.bytes + chunk.length > this.#maxBytes) {
      this.#pending = undefined;
      return { kind: 'dropped', reason: 'too_large' };
    }
    p.chunks.set(f.fragmentNumber, chunk.slice());
    p.bytes += chunk.length;
    if (f.fragmentNumber === 1) p.firstPayload = f.firstInnerPayload;
    if (p.chunks.size < p.total) return { kind: 'incomplete' };
    this.#pending = undefined;
    const parts: Uint8Array[] = [];
    for (let n = 1; n <= p.total; n++) parts.push(p.chunks.get(n)!);
    return { kind: 'complete', messageId: id, payloads: decodeInnerChain(p.firstPayload, concat(parts)) };
  }
}
