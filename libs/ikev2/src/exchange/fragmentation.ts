/**
 * RFC 7383 reassembly of received SKF fragments (§2.6), kept in the IKE SA core as plain data.
 *
 * Every fragment is authenticated and decrypted on arrival (§2.6.1: before it is kept); the
 * decrypted chunks are stored in `core.reassembly`, one message per direction (the peer's request
 * and the response to ours). A fragment of a newer message replaces an older one, one with a
 * larger Total Fragments restarts the message (the peer lowered its fragment size), one with a
 * smaller Total Fragments is stale. Memory is bounded by MAX_FRAGMENTS and MAX_REASSEMBLY_BYTES.
 */
import { type IkeMessage, type Payload, PayloadType, type SkfPayload } from '../codec/index.js';
import { concat, decodeInnerChain, unprotect } from '../codec/protect.js';
import { RemoteProtocolError } from '../errors.js';
import { digest, protectionOf } from '../sa/task-manager.js';
import type { IkeSaContext, IkeSaCore, Reassembly } from '../sa/types.js';

export const MAX_FRAGMENTS = 64;
export const MAX_REASSEMBLY_BYTES = 65_535;

export type FragmentOutcome =
  /** Integrity failed (or the fragment is unusable before any check): nothing may change. */
  | { readonly kind: 'forged'; readonly reason: string }
  | { readonly kind: 'incomplete'; readonly core: IkeSaCore }
  | {
      readonly kind: 'complete';
      readonly core: IkeSaCore;
      readonly payloads: Payload[];
      /** Digest of fragment 1's octets: what a retransmission of this message is recognised by. */
      readonly firstDigest: Uint8Array;
    }
  /** Authenticated, but the reassembled chain does not parse. */
  | { readonly kind: 'malformed'; readonly core: IkeSaCore; readonly error: RemoteProtocolError }
  | { readonly kind: 'dropped'; readonly core: IkeSaCore; readonly reason: string };

/** The SKF payload that ends `msg`, if it is a fragment. */
export function skfOf(msg: IkeMessage): SkfPayload | undefined {
  const last = msg.payloads[msg.payloads.length - 1];
  return last !== undefined && last.type === PayloadType.SKF && 'body' in last
    ? (last as SkfPayload)
    : undefined;
}

function withReassembly(core: IkeSaCore, list: readonly Reassembly[]): IkeSaCore {
  const { reassembly: _old, ...rest } = core;
  return list.length > 0 ? { ...rest, reassembly: list } : rest;
}

/** Adds one received fragment of `core`; `response` says which direction it belongs to. */
export function addFragment(
  ctx: IkeSaContext,
  core: IkeSaCore,
  raw: Uint8Array,
  msg: IkeMessage,
  skf: SkfPayload,
  response: boolean,
): FragmentOutcome {
  const n = skf.fragmentNumber;
  if (skf.totalFragments > MAX_FRAGMENTS || n < 1 || n > skf.totalFragments)
    return { kind: 'forged', reason: 'bad-fragment' };
  let chunk: Uint8Array;
  try {
    chunk = unprotect(raw, skf.body, protectionOf(ctx, core, 'peer'));
  } catch (e) {
    if (e instanceof RemoteProtocolError) return { kind: 'forged', reason: 'fragment-integrity' };
    throw e;
  }
  const all = core.reassembly ?? [];
  const others = all.filter((r) => r.response !== response);
  let r = all.find((x) => x.response === response);
  const id = msg.header.messageId;
  if (r !== undefined && r.messageId !== id) {
    if (id < r.messageId) return { kind: 'dropped', core, reason: 'stale-fragment' };
    r = undefined;
  }
  if (r !== undefined && skf.totalFragments < r.total)
    return { kind: 'dropped', core, reason: 'stale-fragment' };
  if (r === undefined || skf.totalFragments > r.total) {
    r = {
      response,
      messageId: id,
      exchangeType: msg.header.exchangeType,
      total: skf.totalFragments,
      firstPayload: PayloadType.NONE,
      chunks: [],
      bytes: 0,
    };
  }
  if (r.chunks.some((c) => c.number === n))
    return { kind: 'incomplete', core: withReassembly(core, [...others, r]) };
  if (r.bytes + chunk.length > MAX_REASSEMBLY_BYTES)
    return { kind: 'dropped', core: withReassembly(core, others), reason: 'fragments-too-large' };
  r = {
    ...r,
    chunks: [...r.chunks, { number: n, data: chunk.slice() }],
    bytes: r.bytes + chunk.length,
    firstPayload: n === 1 ? skf.firstInnerPayload : r.firstPayload,
    ...(n === 1 ? { firstDigest: digest(ctx, raw) } : {}),
  };
  if (r.chunks.length < r.total) return { kind: 'incomplete', core: withReassembly(core, [...others, r]) };
  const done = withReassembly(core, others);
  const parts = [...r.chunks].sort((a, b) => a.number - b.number).map((c) => c.data);
  try {
    return {
      kind: 'complete',
      core: done,
      payloads: decodeInnerChain(r.firstPayload, concat(parts)),
      firstDigest: r.firstDigest ?? digest(ctx, raw),
    };
  } catch (e) {
    if (e instanceof RemoteProtocolError) return { kind: 'malformed', core: done, error: e };
    throw e;
  }
}
