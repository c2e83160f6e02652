/**
 * The task manager of one IKE SA (libcharon's task_manager_v2): the only code that touches
 * Message IDs, the request window, retransmission and request deadlines, the cached response to
 * the peer's last request, and the queue of requests waiting for the window. Tasks (the exchange
 * files) build and process payloads and call `sendRequest` / `sendResponse` here; nothing else
 * writes `nextRequestId`, `expectedRequestId`, `outstanding` or `lastResponse`.
 *
 * How this works:
 * - Window of one: at most one request of ours is outstanding per IKE SA core; later commands wait
 *   in `state.queue`, de-duplicated and bounded (MAX_QUEUED).
 * - Deadlines are values in the state, never timer ids: `retransmitAt` is when the next UDP
 *   retransmission (or, over TCP, the next silent check) is due. Each interval is measured from
 *   when it really started, so a timer that fires early does nothing and one that fires late (a
 *   paused process) still leaves the peer a full interval per retransmission. After
 *   `maxRetransmits` intervals without an answer the peer is dead (RFC 7296 §2.4).
 * - Over TCP nothing is retransmitted on a live stream (RFC 9329 §2). When the stream is gone the
 *   schedule stops; on a new stream every outstanding request is sent again (RFC 9329 §6).
 * - A retransmitted request is recognised by its octets (a digest of the request, or of its
 *   fragment 1), not its Message ID, and is answered from the cache only towards where the
 *   original came from: the same UDP tuple, or the same peer address over TCP (a reconnecting
 *   peer has a new port). It never moves the SA's path.
 *
 * RFC 7383: when both sides announced fragmentation and the transport is UDP, a protected message
 * longer than `policy.fragmentSize` goes out as SKF fragments (and is retransmitted as such);
 * `bytes` stays the unfragmented encoding for TCP.
 */
import {
  encodeProtectedFragments,
  encodeProtectedMessage,
  HeaderFlag,
  type Payload,
  type SkProtection,
} from '../codec/index.js';
import { skProtection } from '../negotiation/index.js';
import type {
  CachedResponse,
  IkePath,
  IkeSaCommand,
  IkeSaContext,
  IkeSaCore,
  IkeTask,
  QueuedRequest,
  RequestSource,
  RetransmitPolicy,
  Transport,
} from './types.js';
import { appended, bytesEqual, copyPair, type Work } from './work.js';

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { initialMs: 1000, maxRetransmits: 5 };
export const DEFAULT_FRAGMENT_SIZE = 1280;
/** Most requests waiting for the window; the kinds are de-duplicated, so this is a safety bound. */
export const MAX_QUEUED = 32;
/** Octets of the SHA-256 digest kept to recognise a retransmitted request. */
const DIGEST_LENGTH = 16;

export type CoreSlot = 'current' | 'previous' | 'collision';
export const SLOTS: readonly CoreSlot[] = ['current', 'previous', 'collision'];

export function retransmitPolicy(ctx: IkeSaContext): RetransmitPolicy {
  return ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
}

/** When retransmission number `n + 1` (or the n+1-th silent check over TCP) is due. */
export function backoffAt(ctx: IkeSaContext, now: number, n: number): number {
  return now + retransmitPolicy(ctx).initialMs * 2 ** n;
}

export function digest(ctx: IkeSaContext, bytes: Uint8Array): Uint8Array {
  return ctx.provider.hash('sha256', bytes).subarray(0, DIGEST_LENGTH).slice();
}

export function flagsFor(role: 'initiator' | 'responder', response: boolean): number {
  return (role === 'initiator' ? HeaderFlag.INITIATOR : 0) | (response ? HeaderFlag.RESPONSE : 0);
}

/** SK protection of what `core`'s `sender` side sends (our outbound or our inbound keys). */
export function protectionOf(ctx: IkeSaContext, core: IkeSaCore, sender: 'us' | 'peer'): SkProtection {
  const initiatorSends = (core.role === 'initiator') === (sender === 'us');
  const k = core.keys;
  return initiatorSends
    ? skProtection(ctx.provider, core.suite, k.skEi, k.skAi)
    : skProtection(ctx.provider, core.suite, k.skEr, k.skAr);
}

/** What goes on the wire for a message we keep: its fragments over UDP if it has them. */
export function wireMessages(
  m: { readonly bytes: Uint8Array; readonly fragments?: readonly Uint8Array[] },
  transport: Transport,
): readonly Uint8Array[] {
  return transport === 'udp' && m.fragments !== undefined ? m.fragments : [m.bytes];
}

export function pushSends(
  w: Work,
  m: { readonly bytes: Uint8Array; readonly fragments?: readonly Uint8Array[] },
  path: IkePath,
): void {
  for (const bytes of wireMessages(m, path.transport)) w.actions.push({ kind: 'send', bytes, path });
}

interface Encoded {
  readonly bytes: Uint8Array;
  readonly fragments?: readonly Uint8Array[];
}

/** Encodes and protects a message of `core` with our outbound keys, and its RFC 7383 fragments. */
function encode(
  ctx: IkeSaContext,
  core: IkeSaCore,
  transport: Transport | undefined,
  exchangeType: number,
  response: boolean,
  messageId: number,
  inner: readonly Payload[],
): Encoded {
  const header = {
    initiatorSpi: core.spiI,
    responderSpi: core.spiR,
    exchangeType,
    flags: flagsFor(core.role, response),
    messageId,
  };
  const protection = protectionOf(ctx, core, 'us');
  const bytes = encodeProtectedMessage(header, inner, protection, ctx.random);
  const size = ctx.policy.fragmentSize ?? DEFAULT_FRAGMENT_SIZE;
  if (!core.fragmentation || transport !== 'udp' || bytes.length <= size) return { bytes };
  return { bytes, fragments: encodeProtectedFragments(header, inner, protection, ctx.random, size) };
}

// --- our requests --------------------------------------------------------------------------------

/** Whether the SA can reach the peer now (over TCP: its stream is up). */
export function connected(w: Work): boolean {
  return w.s.path !== undefined && w.s.disconnectedAt === undefined;
}

/**
 * Starts a request on `core`: takes the next Message ID (or `messageId`, RFC 6311's 0, without
 * advancing), sends it on the SA's path when connected, and starts its retransmission schedule.
 */
export function sendRequest(
  w: Work,
  core: IkeSaCore,
  exchangeType: number,
  inner: readonly Payload[],
  task: IkeTask,
  messageId?: number,
): IkeSaCore {
  const id = messageId ?? core.nextRequestId;
  const path = w.s.path;
  const m = encode(w.ctx, core, path?.transport, exchangeType, false, id, inner);
  const live = connected(w);
  const outstanding = {
    messageId: id,
    task,
    retransmits: 0,
    ...m,
    ...(live ? { retransmitAt: backoffAt(w.ctx, w.now, 0) } : {}),
  };
  if (live && path) pushSends(w, m, path);
  return {
    ...core,
    outstanding,
    nextRequestId: messageId === undefined ? id + 1 : core.nextRequestId,
  };
}

/**
 * The retransmission schedule of `core`'s outstanding request, if due at `now`. Returns the
 * updated core, or 'dead' once `maxRetransmits` intervals passed without an answer.
 */
export function onRequestTimer(w: Work, core: IkeSaCore): IkeSaCore | 'dead' {
  const o = core.outstanding;
  if (!o || o.retransmitAt === undefined || w.now < o.retransmitAt) return core;
  if (o.retransmits >= retransmitPolicy(w.ctx).maxRetransmits) return 'dead';
  const retransmits = o.retransmits + 1;
  const path = w.s.path;
  // RFC 9329 §2: never retransmit on a live stream; the schedule only bounds the wait.
  if (path && path.transport === 'udp') pushSends(w, o, path);
  return { ...core, outstanding: { ...o, retransmits, retransmitAt: backoffAt(w.ctx, w.now, retransmits) } };
}

/** RFC 9329 §6: on a new stream every outstanding request is sent again, its schedule restarted. */
export function resendOutstanding(w: Work, core: IkeSaCore): IkeSaCore {
  const o = core.outstanding;
  const path = w.s.path;
  if (!o || !path) return core;
  pushSends(w, o, path);
  return { ...core, outstanding: { ...o, retransmits: 0, retransmitAt: backoffAt(w.ctx, w.now, 0) } };
}

/** The stream is gone: nothing can be retransmitted until the peer comes back. */
export function suspendOutstanding(core: IkeSaCore): IkeSaCore {
  const o = core.outstanding;
  if (!o || o.retransmitAt === undefined) return core;
  const { retransmitAt: _gone, ...rest } = o;
  return { ...core, outstanding: rest };
}

/** The response matches our outstanding request (RFC 7296 §2.2). */
export function isExpectedResponse(core: IkeSaCore, messageId: number): boolean {
  return core.outstanding !== undefined && core.outstanding.messageId === messageId;
}

/** Clears the outstanding request once its response has been accepted. */
export function completeRequest(core: IkeSaCore): IkeSaCore {
  const { outstanding: _done, ...rest } = core;
  return rest;
}

// --- the peer's requests -------------------------------------------------------------------------

export type RequestDisposition = 'new' | 'maybe-retransmission' | 'out-of-window';

/** RFC 7296 §2.2: the next expected Message ID is new; the last answered one may be a retransmission. */
export function classifyRequest(core: IkeSaCore, messageId: number): RequestDisposition {
  if (messageId === core.expectedRequestId) return 'new';
  if (core.lastResponse !== undefined && core.lastResponse.messageId === messageId)
    return 'maybe-retransmission';
  return 'out-of-window';
}

export function sourceOf(path: IkePath): RequestSource {
  return { transport: path.transport, pathId: path.id, address: path.remote.address };
}

/**
 * May a retransmission from `path` be answered with `cached`? Only towards where the original
 * came from: the same UDP tuple; over TCP the same peer address, on the same stream or another
 * one (a reconnect, RFC 9329 §6). A peer does not retransmit on a live stream (RFC 9329 §2), but
 * an HA cluster member that took the SA over does, once (it cannot know whether the request its
 * failed predecessor sent was answered, RFC 6311 §2); answering from the cache changes nothing.
 */
export function retransmissionAnswerable(cached: RequestSource, path: IkePath): boolean {
  if (cached.transport !== path.transport) return false;
  if (path.transport === 'udp') return cached.pathId === path.id;
  return bytesEqual(cached.address, path.remote.address);
}

/**
 * Answers the peer's new request `messageId` on `core`: the response goes back on the request's
 * path and is cached (with the request's digest and source) for its retransmissions.
 */
export function sendResponse(
  w: Work,
  core: IkeSaCore,
  exchangeType: number,
  messageId: number,
  inner: readonly Payload[],
  requestDigest: Uint8Array,
): IkeSaCore {
  const path = w.from ?? w.s.path;
  const m = encode(w.ctx, core, path?.transport, exchangeType, true, messageId, inner);
  // Unfragmented, the response kept for retransmissions and the request's digest share one buffer:
  // an SA holds its last response for its whole life, and each buffer costs an ArrayBuffer (issue #14).
  let kept: Encoded = m;
  let keptDigest = requestDigest;
  if (m.fragments === undefined) {
    const [bytes, digestCopy] = copyPair(m.bytes, requestDigest);
    kept = { bytes };
    keptDigest = digestCopy;
  }
  if (path) pushSends(w, kept, path);
  const lastResponse: CachedResponse = {
    messageId,
    ...kept,
    requestDigest: keptDigest,
    source: path ? sourceOf(path) : { transport: 'udp', pathId: '', address: new Uint8Array(0) },
  };
  return { ...core, expectedRequestId: Math.max(core.expectedRequestId, messageId + 1), lastResponse };
}

/** A response outside the window (RFC 6311's Message ID 0): sent, not cached. */
export function sendUncachedResponse(
  w: Work,
  core: IkeSaCore,
  exchangeType: number,
  messageId: number,
  inner: readonly Payload[],
): void {
  const path = w.from ?? w.s.path;
  const m = encode(w.ctx, core, path?.transport, exchangeType, true, messageId, inner);
  if (path) pushSends(w, m, path);
}

// --- the queue -----------------------------------------------------------------------------------

function sameRequest(a: QueuedRequest, b: QueuedRequest): boolean {
  if (a.kind !== b.kind) return false;
  if ((a.kind === 'rekey-child' || a.kind === 'delete-child') && a.kind === b.kind)
    return bytesEqual(a.spi, (b as typeof a).spi);
  return true;
}

export type EnqueueResult = 'queued' | 'duplicate' | 'full';

/**
 * Adds a request to the queue. De-duplicated (one liveness, one IKE rekey, one per child and
 * kind); a DELETE of the IKE SA makes everything else moot; RFC 6311's sync goes first (§4).
 */
export function enqueue(w: Work, c: QueuedRequest, front = false): EnqueueResult {
  const q = w.s.queue;
  if (q.some((x) => sameRequest(x, c))) return 'duplicate';
  if (q.some((x) => x.kind === 'delete-ike')) return 'duplicate';
  if (c.kind === 'delete-ike') {
    w.s.queue = [c];
    return 'queued';
  }
  if (q.length >= MAX_QUEUED) return 'full';
  w.s.queue = front || c.kind === 'mid-sync' ? [c, ...q] : appended(q, c);
  return 'queued';
}

export function isQueueable(c: IkeSaCommand): c is QueuedRequest {
  return c.kind !== 'initiate' && c.kind !== 'connection-restored';
}
