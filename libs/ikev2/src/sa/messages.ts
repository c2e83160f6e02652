/**
 * What a received message does to one IKE SA (see ike-sa.ts for the order of checks): routing to
 * the SA core by both SPIs, the I flag, the Message ID, integrity; responses to our requests; the
 * peer's requests (new, retransmitted, RFC 6311 sync), dispatched to the exchange tasks; the
 * answers to authenticated requests we cannot process.
 */
import {
  decodeMessage,
  decryptMessage,
  ExchangeType,
  HeaderFlag,
  type IkeMessage,
  type MessageHeaderFields,
  NotifyError,
  type Payload,
  PayloadType,
  type SkfPayload,
} from '../codec/index.js';
import { unprotect } from '../codec/protect.js';
import { RemoteProtocolError } from '../errors.js';
import { addFragment, skfOf } from '../exchange/fragmentation.js';
import { processAuthResponse, respondAuth } from '../exchange/ike-auth.js';
import { onInitRequestAgain, processInitResponse } from '../exchange/ike-init.js';
import { processIntermediateResponse, respondIntermediate } from '../exchange/intermediate.js';
import { removeChild, respondInformational, terminate } from '../exchange/informational.js';
import { processRekeyChildResponse, respondRekeyChild } from '../exchange/child-rekey.js';
import { processRekeyIkeResponse, respondRekeyIke } from '../exchange/ike-rekey.js';
import { isMidSyncRequest, processMidSyncResponse, respondMidSync } from '../exchange/mid-sync.js';
import { holdPrevious, scheduleIkeSa, taskFailed } from './lifetimes.js';
import {
  classifyRequest,
  completeRequest,
  type CoreSlot,
  digest,
  enqueue,
  isExpectedResponse,
  protectionOf,
  pushSends,
  resendOutstanding,
  retransmissionAnswerable,
  SLOTS,
  sendResponse,
} from './task-manager.js';
import type { IkeSaCore } from './types.js';
import { bytesEqual, exchangeName, notify, reject, type Work } from './work.js';

import { validatePath } from './paths.js';

export function onMessage(w: Work, bytes: Uint8Array): void {
  let msg: IkeMessage;
  try {
    msg = decodeMessage(bytes);
  } catch (e) {
    if (e instanceof RemoteProtocolError) return void w.actions.push({ kind: 'dropped', reason: e.code });
    throw e;
  }
  const h = msg.header;
  const isResponse = (h.flags & HeaderFlag.RESPONSE) !== 0;
  try {
    if (h.exchangeType === ExchangeType.IKE_SA_INIT) {
      if (isResponse) return processInitResponse(w, bytes, msg);
      return onInitRequestAgain(w, bytes, msg);
    }
    const slot = SLOTS.find((s) => {
      const c = w.s[s];
      return c !== undefined && bytesEqual(c.spiI, h.initiatorSpi) && bytesEqual(c.spiR, h.responderSpi);
    });
    if (!slot) return void w.actions.push({ kind: 'dropped', reason: 'unknown-spi' });
    const core = w.s[slot]!;
    // The I flag must name the peer's role in this SA (RFC 7296 §3.1).
    const fromInitiator = (h.flags & HeaderFlag.INITIATOR) !== 0;
    if (fromInitiator !== (core.role === 'responder'))
      return void w.actions.push({ kind: 'dropped', reason: 'bad-initiator-flag' });
    if (isResponse) return onResponse(w, slot, core, bytes, msg);
    return onRequest(w, slot, core, bytes, msg);
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    w.actions.push({ kind: 'dropped', reason: e.code });
  }
}

type Opened =
  | { readonly kind: 'payloads'; readonly payloads: Payload[]; readonly digest?: Uint8Array }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'forged'; readonly reason: string }
  | { readonly kind: 'malformed'; readonly error: RemoteProtocolError };

/**
 * Verifies and decrypts `msg` on `core` (an SKF fragment is added to its reassembly). 'forged'
 * means integrity failed: nothing may change. 'malformed' means it is authenticated but broken.
 */
function open(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  response: boolean,
): Opened {
  const skf = skfOf(msg);
  if (skf) return openFragment(w, slot, core, bytes, msg, skf, response);
  // Without an SK payload nothing in the message is authenticated (an INVALID_IKE_SPI answer, a
  // forgery): never "authenticated but malformed".
  const last = msg.payloads[msg.payloads.length - 1];
  if (last?.type !== PayloadType.SK || !('body' in last)) return { kind: 'forged', reason: 'unprotected' };
  try {
    return { kind: 'payloads', payloads: decryptMessage(bytes, msg, protectionOf(w.ctx, core, 'peer')) };
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    if (e.code === 'IKEGATE_ERR_IKEV2_INTEGRITY') return { kind: 'forged', reason: e.code };
    return { kind: 'malformed', error: e };
  }
}

/** RFC 7383 §2.6: an SKF fragment; the message is processed once all its fragments are in. */
function openFragment(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  skf: SkfPayload,
  response: boolean,
): Opened {
  // Only when both announced it, and never over TCP (RFC 9329 §2).
  if (!core.fragmentation || w.from?.transport !== 'udp')
    return { kind: 'forged', reason: 'unexpected-fragment' };
  const r = addFragment(w.ctx, core, bytes, msg, skf, response);
  if (r.kind === 'forged') return { kind: 'forged', reason: r.reason };
  w.s[slot] = r.core;
  if (r.kind === 'dropped') {
    w.actions.push({ kind: 'dropped', reason: r.reason });
    return { kind: 'incomplete' };
  }
  if (r.kind === 'incomplete') return { kind: 'incomplete' };
  if (r.kind === 'malformed') return { kind: 'malformed', error: r.error };
  return { kind: 'payloads', payloads: r.payloads, digest: r.firstDigest };
}

function onResponse(w: Work, slot: CoreSlot, core: IkeSaCore, bytes: Uint8Array, msg: IkeMessage): void {
  const h = msg.header;
  if (!isExpectedResponse(core, h.messageId))
    return void w.actions.push({ kind: 'dropped', reason: 'unexpected-response' });
  const opened = open(w, slot, core, bytes, msg, true);
  if (opened.kind === 'forged') return void w.actions.push({ kind: 'dropped', reason: opened.reason });
  if (opened.kind === 'incomplete') return;
  validatePath(w);
  const task = core.outstanding!.task;
  w.s[slot] = completeRequest(w.s[slot]!);
  if (opened.kind === 'malformed') {
    reject(w, h.exchangeType, NotifyError.INVALID_SYNTAX, 'peer', opened.error.message);
    if (task.kind === 'ike-auth' || task.kind === 'intermediate') return terminate(w, 'invalid-syntax');
    return taskFailed(w, task);
  }
  processResponse(w, slot, h, opened.payloads, task);
}

function processResponse(
  w: Work,
  slot: CoreSlot,
  h: MessageHeaderFields,
  inner: Payload[],
  task: NonNullable<IkeSaCore['outstanding']>['task'],
): void {
  const isCurrent = slot === 'current';
  try {
    switch (task.kind) {
      case 'ike-auth':
        return processAuthResponse(w, inner, task.childSpi);
      case 'intermediate':
        return processIntermediateResponse(w, inner, task, h.messageId);
      case 'liveness':
        return;
      case 'mid-sync':
        w.s[slot] = processMidSyncResponse(w.s[slot]!, inner, task.nonce);
        return;
      case 'delete-child':
        return removeChild(w, task.spi, 'deleted');
      case 'delete-ike':
        if (isCurrent) return terminate(w, 'deleted');
        w.s[slot] = undefined;
        return;
      case 'delete-old-ike':
        // The DELETE of a replaced or redundant SA: that SA is gone now.
        w.s[slot] = undefined;
        return;
      case 'rekey-child':
        // May complete on the old SA after the peer rekeyed the IKE SA under it (§2.18):
        // KEYMAT then comes from the SK_d of the SA the exchange ran on.
        return processRekeyChildResponse(w, inner, task, w.s[slot]!);
      case 'rekey-ike':
        if (!isCurrent) return;
        return processRekeyIkeResponse(w, inner, task);
    }
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    reject(w, h.exchangeType, e.notify ?? NotifyError.INVALID_SYNTAX, 'peer', e.message);
    if (task.kind === 'ike-auth' || task.kind === 'intermediate')
      return terminate(w, 'authentication-failed');
    taskFailed(w, task);
  }
}

function onRequest(w: Work, slot: CoreSlot, core: IkeSaCore, bytes: Uint8Array, msg: IkeMessage): void {
  const h = msg.header;
  const disposition = classifyRequest(core, h.messageId);
  if (isMidSyncCandidate(w, h)) return onMidSyncCandidate(w, slot, core, bytes, msg, disposition);
  if (disposition === 'out-of-window')
    return void w.actions.push({ kind: 'dropped', reason: 'message-id-out-of-window' });
  if (disposition === 'maybe-retransmission') return onMaybeRetransmission(w, core, bytes, msg);
  const opened = open(w, slot, core, bytes, msg, false);
  if (opened.kind === 'forged') return void w.actions.push({ kind: 'dropped', reason: opened.reason });
  if (opened.kind === 'incomplete') return;
  validatePath(w);
  const requestDigest = opened.kind === 'payloads' && opened.digest ? opened.digest : digest(w.ctx, bytes);
  if (opened.kind === 'malformed') return answerError(w, slot, h, opened.error, requestDigest);
  dispatchRequest(w, slot, h, opened.payloads, requestDigest);
}

/** RFC 6311 sync requests use Message ID 0 on an established SA; the payloads decide. */
function isMidSyncCandidate(w: Work, h: MessageHeaderFields): boolean {
  return h.messageId === 0 && h.exchangeType === ExchangeType.INFORMATIONAL && w.s.status === 'established';
}

function onMidSyncCandidate(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  disposition: ReturnType<typeof classifyRequest>,
): void {
  if (skfOf(msg)) return void w.actions.push({ kind: 'dropped', reason: 'fragmented-message-id-sync' });
  const opened = open(w, slot, core, bytes, msg, false);
  if (opened.kind === 'forged') return void w.actions.push({ kind: 'dropped', reason: opened.reason });
  if (opened.kind !== 'payloads') {
    if (disposition === 'new' && opened.kind === 'malformed') {
      validatePath(w);
      return answerError(w, slot, msg.header, opened.error, digest(w.ctx, bytes));
    }
    return void w.actions.push({ kind: 'dropped', reason: 'message-id-out-of-window' });
  }
  if (isMidSyncRequest(opened.payloads)) {
    const synced = respondMidSync(w, core, opened.payloads, bytes);
    if (typeof synced === 'string') return void w.actions.push({ kind: 'dropped', reason: synced });
    w.s[slot] = synced;
    validatePath(w);
    // A new sync means the SA moved to another cluster member: a request of ours may have been
    // lost with the old one (over TCP nothing else would resend it), so it goes out once more;
    // the cluster answers it, or answers it again from its cache.
    if (synced !== core && synced.outstanding) w.s[slot] = resendOutstanding(w, synced);
    return;
  }
  // Message ID 0 is also the first request on a rekeyed SA.
  if (disposition === 'out-of-window')
    return void w.actions.push({ kind: 'dropped', reason: 'message-id-out-of-window' });
  if (disposition === 'maybe-retransmission')
    return onMaybeRetransmission(w, core, bytes, msg, opened.payloads);
  validatePath(w);
  dispatchRequest(w, slot, msg.header, opened.payloads, digest(w.ctx, bytes));
}

/**
 * The Message ID of the request we answered last. Identical octets are a retransmission; other
 * octets are one only if they authenticate (a peer may re-encrypt). Either way the cached
 * response is resent, towards where the original came from only (RFC 7296 §2.1, §2.11), and
 * nothing else changes: no path update, no processing.
 */
function onMaybeRetransmission(
  w: Work,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  authenticated?: Payload[],
): void {
  const cached = core.lastResponse!;
  const skf = skfOf(msg);
  if (skf && skf.fragmentNumber !== 1)
    return void w.actions.push({ kind: 'dropped', reason: 'retransmitted-fragment' });
  if (authenticated === undefined && !bytesEqual(digest(w.ctx, bytes), cached.requestDigest)) {
    if (!authenticates(w, core, bytes, msg, skf))
      return void w.actions.push({ kind: 'dropped', reason: 'IKEGATE_ERR_IKEV2_INTEGRITY' });
  }
  const from = w.from!;
  if (!retransmissionAnswerable(cached.source, from))
    return void w.actions.push({ kind: 'dropped', reason: 'retransmission-from-elsewhere' });
  pushSends(w, cached, from);
}

/** Integrity of a message (or fragment) without keeping anything from it. */
function authenticates(
  w: Work,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  skf: SkfPayload | undefined,
): boolean {
  // Without an SK (or SKF) payload nothing is authenticated: a bare header is never a retransmission.
  const last = msg.payloads[msg.payloads.length - 1];
  if (!skf && (last?.type !== PayloadType.SK || !('body' in last))) return false;
  try {
    if (skf) {
      if (!core.fragmentation) return false;
      unprotect(bytes, skf.body, protectionOf(w.ctx, core, 'peer'));
      return true;
    }
    decryptMessage(bytes, msg, protectionOf(w.ctx, core, 'peer'));
    return true;
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    // Only what is thrown after the ICV checked out (padding, the inner chain) means authentic.
    return e.code !== 'IKEGATE_ERR_IKEV2_INTEGRITY';
  }
}

/**
 * An authenticated request we cannot process: answer with its error notify (INVALID_SYNTAX for a
 * malformed one; RFC 7296 §2.21.3: after authentication every request with an error gets a
 * response). During IKE_AUTH the IKE SA is not created (§2.21.2).
 */
function answerError(
  w: Work,
  slot: CoreSlot,
  h: MessageHeaderFields,
  e: RemoteProtocolError,
  requestDigest: Uint8Array,
): void {
  const type = e.notify ?? NotifyError.INVALID_SYNTAX;
  w.s[slot] = sendResponse(
    w,
    w.s[slot]!,
    h.exchangeType,
    h.messageId,
    [notify(type, e.notifyData)],
    requestDigest,
  );
  reject(w, h.exchangeType, type, 'us', e.message);
  if (w.s.status === 'init-answered')
    terminate(w, type === NotifyError.INVALID_SYNTAX ? 'invalid-syntax' : 'error-notify');
}

function dispatchRequest(
  w: Work,
  slot: CoreSlot,
  h: MessageHeaderFields,
  inner: Payload[],
  requestDigest: Uint8Array,
): void {
  try {
    switch (h.exchangeType) {
      case ExchangeType.IKE_INTERMEDIATE:
        if (slot !== 'current' || w.s.status !== 'init-answered') break;
        return respondIntermediate(w, inner, h.messageId, requestDigest);
      case ExchangeType.IKE_AUTH:
        if (slot !== 'current' || w.s.status !== 'init-answered') break;
        return respondAuth(w, inner, h.messageId, requestDigest);
      case ExchangeType.INFORMATIONAL: {
        if (w.s.status !== 'established') break;
        const { response, ikeDeleted } = respondInformational(w, inner);
        w.s[slot] = sendResponse(w, w.s[slot]!, h.exchangeType, h.messageId, response, requestDigest);
        if (!ikeDeleted) return;
        if (slot !== 'current') {
          // Our request still outstanding on the deleted SA will never be answered: a child
          // rekey or delete it carried is started again on the current SA (RFC 7296 §2.18).
          requeueLost(w, w.s[slot]?.outstanding?.task);
          w.s[slot] = undefined;
          return;
        }
        // The peer deletes the SA a rekey we answered replaced, while our own rekey of it is
        // still outstanding (ours was lost, or theirs won, RFC 7296 §2.8.1, §2.25.2): the SA we
        // answered is the one that lives on; our rekey request is forgotten.
        if (w.s.collision) return adoptCollision(w);
        terminate(w, 'peer-deleted');
        return;
      }
      case ExchangeType.CREATE_CHILD_SA:
        if (w.s.status !== 'established') break;
        if (slot !== 'current') {
          // A CREATE_CHILD_SA on an SA being deleted: try again on the new one (RFC 7296 §2.25).
          const out = [notify(NotifyError.TEMPORARY_FAILURE)];
          w.s[slot] = sendResponse(w, w.s[slot]!, h.exchangeType, h.messageId, out, requestDigest);
          reject(w, h.exchangeType, NotifyError.TEMPORARY_FAILURE, 'us', 'request on a replaced IKE SA');
          return;
        }
        return respondCreateChildSa(w, h, inner, requestDigest);
    }
    // Authenticated, but not an exchange this SA can take now (RFC 7296 §2.21.3).
    answerError(
      w,
      slot,
      h,
      new RemoteProtocolError(
        'IKEGATE_ERR_IKEV2_BAD_STATE',
        `${exchangeName(h.exchangeType)} request in ${w.s.status}`,
      ),
      requestDigest,
    );
  } catch (e) {
    // Tasks throw only before they answer (a missing or malformed payload): answer the error.
    if (!(e instanceof RemoteProtocolError)) throw e;
    answerError(w, slot, h, e, requestDigest);
  }
}

function requeueLost(w: Work, task: NonNullable<IkeSaCore['outstanding']>['task'] | undefined): void {
  if (task?.kind === 'rekey-child' && w.s.children.some((c) => bytesEqual(c.inboundSpi, task.oldSpi)))
    enqueue(w, { kind: 'rekey-child', spi: task.oldSpi }, true);
  else if (task?.kind === 'delete-child') enqueue(w, { kind: 'delete-child', spi: task.spi }, true);
}

/** The peer's rekey of the IKE SA (held in `collision`) replaced it: switch to the new SA. */
function adoptCollision(w: Work): void {
  const fresh = w.s.collision!;
  w.s.collision = undefined;
  w.s.current = fresh;
  scheduleIkeSa(w);
  w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: fresh.spiI, newResponderSpi: fresh.spiR });
}

/** CREATE_CHILD_SA on the current SA: a child rekey, an IKE rekey, or a new child (not offered). */
function respondCreateChildSa(
  w: Work,
  h: MessageHeaderFields,
  inner: Payload[],
  requestDigest: Uint8Array,
): void {
  const rekeyChild = respondRekeyChild(w, inner);
  if (rekeyChild !== undefined) {
    w.s.current = sendResponse(w, w.s.current!, h.exchangeType, h.messageId, rekeyChild.out, requestDigest);
    if (rekeyChild.rejected !== undefined)
      reject(w, h.exchangeType, rekeyChild.rejected.notify, 'us', rekeyChild.rejected.detail);
    return;
  }
  const rekeyIke = respondRekeyIke(w, inner);
  if (rekeyIke !== undefined) {
    const answered = sendResponse(w, w.s.current!, h.exchangeType, h.messageId, rekeyIke.out, requestDigest);
    if (rekeyIke.rejected !== undefined)
      reject(w, h.exchangeType, rekeyIke.rejected.notify, 'us', rekeyIke.rejected.detail);
    const fresh = rekeyIke.fresh;
    if (!fresh) {
      w.s.current = answered;
      return;
    }
    if (answered.outstanding?.task.kind === 'rekey-ike') {
      // Simultaneous rekey (§2.8.1): decided when our own rekey's response arrives.
      w.s.current = answered;
      w.s.collision = fresh;
      return;
    }
    // The rekey initiator deletes the old SA; we keep it to answer that DELETE.
    holdPrevious(w, answered);
    w.s.current = fresh;
    w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: fresh.spiI, newResponderSpi: fresh.spiR });
    return;
  }
  // New child SAs beyond the first are not offered by this implementation.
  w.s.current = sendResponse(
    w,
    w.s.current!,
    h.exchangeType,
    h.messageId,
    [notify(NotifyError.NO_ADDITIONAL_SAS)],
    requestDigest,
  );
  reject(w, h.exchangeType, NotifyError.NO_ADDITIONAL_SAS, 'us', 'additional child SAs are not supported');
}
