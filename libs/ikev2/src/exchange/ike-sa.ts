/**
 * The IKE SA state machine.
 *
 * How this works: `step(state, event, ctx)` is a pure function. `state` is plain serializable data
 * (types.ts); `event` is a received message, a fired timer or a command from the service, each
 * carrying `now`; `ctx` injects crypto, randomness, SPI allocation, policy, PSKs and address
 * assignment. It returns the next state and the actions to carry out (send bytes, arm a timer,
 * install/remove a child SA, report establishment/rekey/deletion, persist, close the TCP
 * connection). It never does IO, reads no clock and draws no global randomness, and it never
 * throws for anything the peer sends: a bad message becomes a `dropped` action or an error notify.
 *
 * Each exchange concern is a task file with its initiator and responder halves: ike-init.ts,
 * ike-auth.ts, child-sa.ts, informational.ts, rekey.ts; message-window.ts owns Message IDs, the
 * window of one, retransmission and the cached last response.
 *
 * Status transitions (anything can go to 'deleted'):
 *
 *   initiator:  idle --initiate--> init-sent --INIT resp--> auth-sent --AUTH resp--> established
 *               init-sent --COOKIE / INVALID_KE_PAYLOAD--> init-sent (retry)
 *               init-sent stays while an IKE_INTERMEDIATE (RFC 9242, intermediate.ts) runs
 *   responder:  idle --INIT req--> init-answered --AUTH req--> established
 *               init-answered stays while it answers IKE_INTERMEDIATE
 *               idle --INIT req needing a cookie / rejected--> idle (stateless answer)
 *
 * After establishment an IKE SA may hold up to three cores: `current`, the `previous` one being
 * deleted after a rekey, and a `collision` one (a redundant SA from a simultaneous rekey). Incoming
 * messages are routed to the core whose SPIs match.
 *
 * RFC 7383 fragments (SKF) are authenticated and kept in the core (fragmentation.ts) until the
 * message is complete, then processed like an SK message. RFC 6311 Message ID sync (mid-sync.ts)
 * is the one exchange that uses Message ID 0 after IKE_SA_INIT.
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
  type SkfPayload,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { addFragment, skfOf } from './fragmentation.js';
import { processAuthResponse, respondAuth, startAuth } from './ike-auth.js';
import { processIntermediateResponse, respondIntermediate } from './intermediate.js';
import {
  HALF_OPEN_TIMER_ID,
  INIT_TIMER_ID,
  onInitTimer,
  processInitResponse,
  respondInit,
  startInit,
} from './ike-init.js';
import {
  removeChild,
  respondInformational,
  startDeleteChild,
  startDeleteIke,
  startLiveness,
  terminate,
} from './informational.js';
import {
  classifyRequest,
  isExpectedResponse,
  onRetransmitTimer,
  pushSends,
  sendResponse,
} from './message-window.js';
import { isMidSyncRequest, processMidSyncResponse, respondMidSync, startMidSync } from './mid-sync.js';
import {
  processRekeyChildResponse,
  processRekeyIkeResponse,
  respondCreateChildSa,
  startRekeyChild,
  startRekeyIke,
} from './rekey.js';
import { bytesEqual, skProtection } from './suite.js';
import type {
  IkeSaAction,
  IkeSaCommand,
  IkeSaContext,
  IkeSaCore,
  IkeSaEvent,
  IkeSaState,
  IkeSaStatus,
  StepResult,
  Transport,
} from './types.js';
import { notify, type Work } from './work.js';

/** Every status change `step` may make; a change outside this table is a bug (checked in step). */
export const STATUS_TRANSITIONS: Readonly<Record<IkeSaStatus, readonly IkeSaStatus[]>> = {
  idle: ['init-sent', 'init-answered'],
  'init-sent': ['auth-sent', 'deleted'],
  'init-answered': ['established', 'deleted'],
  'auth-sent': ['established', 'deleted'],
  established: ['deleted'],
  deleted: [],
};

type CoreSlot = 'current' | 'previous' | 'collision';
const SLOTS: readonly CoreSlot[] = ['current', 'previous', 'collision'];

/** A fresh IKE SA for either role; an initiator then gets the `initiate` command. */
export function createIkeSa(transport: Transport = 'udp'): IkeSaState {
  return {
    status: 'idle',
    transport,
    children: [],
    queue: [],
    natLocal: false,
    natRemote: false,
    peerMessageIdSync: false,
  };
}

/**
 * Feeds one event to an IKE SA. `state` is not modified; the returned state replaces it. The
 * caller performs the actions in order. `event.bytes` is only read during the call (whatever the
 * state keeps is copied). Returns no actions once the SA is 'deleted'.
 * @throws LocalUsageError for a command that does not fit the state (e.g. `initiate` twice, or
 *   a rekey before establishment). Never throws for anything received from the peer.
 */
export function step(state: IkeSaState, event: IkeSaEvent, ctx: IkeSaContext): StepResult {
  const w: Work = { s: { ...state }, actions: [], ctx, now: event.now };
  if (state.status === 'deleted') return { state, actions: [] };
  switch (event.kind) {
    case 'message':
      if (event.transport !== state.transport) w.s.transport = event.transport;
      onMessage(w, event.bytes);
      break;
    case 'timer':
      onTimer(w, event.id);
      break;
    case 'command':
      onCommand(w, event.command);
      break;
  }
  drainQueue(w);
  if (w.s.status !== state.status && !STATUS_TRANSITIONS[state.status].includes(w.s.status))
    throw new Error(`bug: IKE SA status ${state.status} -> ${w.s.status}`);
  if (w.actions.some((a) => a.kind !== 'dropped') && !w.actions.some((a) => a.kind === 'persist'))
    w.actions.push({ kind: 'persist' });
  return { state: w.s, actions: w.actions };
}

// --- commands ------------------------------------------------------------------------------------

function busy(w: Work): boolean {
  return w.s.current?.outstanding !== undefined;
}

function onCommand(w: Work, c: IkeSaCommand): void {
  switch (c.kind) {
    case 'initiate':
      if (w.s.status !== 'idle')
        throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', `initiate in ${w.s.status}`);
      startInit(w);
      return;
    case 'connection-restored':
      resendOutstanding(w);
      return;
    case 'mid-sync':
      if (w.s.status !== 'established' || !w.s.peerMessageIdSync)
        throw new LocalUsageError(
          'IKEGATE_ERR_IKEV2_BAD_STATE',
          `mid-sync in ${w.s.status} (peer sync support: ${w.s.peerMessageIdSync})`,
        );
      // RFC 6311 §4: the sync goes before anything else still waiting.
      w.s.queue = [c, ...w.s.queue];
      return;
    default:
      if (w.s.status !== 'established')
        throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', `${c.kind} in ${w.s.status}`);
      w.s.queue = [...w.s.queue, c];
  }
}

/** Starts queued commands while the window (of one) is free. */
function drainQueue(w: Work): void {
  while (w.s.status === 'established' && !busy(w) && w.s.queue.length > 0) {
    const [c, ...rest] = w.s.queue;
    if (!c) break;
    w.s.queue = rest;
    switch (c.kind) {
      case 'liveness':
        startLiveness(w);
        break;
      case 'delete-child':
        startDeleteChild(w, c.spi);
        break;
      case 'delete-ike':
        startDeleteIke(w);
        break;
      case 'rekey-child':
        startRekeyChild(w, c.spi);
        break;
      case 'rekey-ike':
        startRekeyIke(w, c.keGroup);
        break;
      case 'mid-sync':
        startMidSync(w);
        break;
      default:
        break;
    }
  }
}

/** RFC 9329 §2: after a TCP reconnect every outstanding request is sent again. */
function resendOutstanding(w: Work): void {
  if (w.s.status === 'init-sent' && w.s.init?.request && !w.s.current)
    w.actions.push({ kind: 'send', bytes: w.s.init.request });
  for (const slot of SLOTS) {
    const o = w.s[slot]?.outstanding;
    if (o) pushSends(w.actions, o, w.s.transport);
  }
}

// --- timers --------------------------------------------------------------------------------------

function onTimer(w: Work, id: string): void {
  if (id === INIT_TIMER_ID) return onInitTimer(w);
  if (id === HALF_OPEN_TIMER_ID) {
    if (w.s.status === 'init-answered') terminate(w, 'half-open-failed');
    return;
  }
  for (const slot of SLOTS) {
    const core = w.s[slot];
    if (!core) continue;
    const next = onRetransmitTimer(w.ctx, core, id, w.now, w.actions);
    if (next === 'dead') {
      if (slot === 'current') return terminate(w, 'dead-peer');
      w.s[slot] = undefined;
      return;
    }
    w.s[slot] = next;
  }
}

// --- messages ------------------------------------------------------------------------------------

function onMessage(w: Work, bytes: Uint8Array): void {
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
    if (h.exchangeType === ExchangeType.IKE_SA_INIT) return onInitMessage(w, bytes, msg, isResponse);
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
    const skf = skfOf(msg);
    if (skf) return onFragment(w, slot, core, bytes, msg, skf, isResponse);
    let cached: Payload[] | undefined;
    const inner = () => (cached ??= decrypt(w, core, bytes, msg));
    if (isResponse) onResponse(w, slot, core, h, inner);
    else onRequest(w, slot, core, h, inner);
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    w.actions.push({ kind: 'dropped', reason: e.code });
  }
}

function onInitMessage(w: Work, bytes: Uint8Array, msg: IkeMessage, isResponse: boolean): void {
  if (isResponse) return processInitResponse(w, bytes, msg);
  if (w.s.status === 'idle') return respondInit(w, bytes, msg);
  const c = w.s.current;
  // §2.1: a retransmitted IKE_SA_INIT request is answered with the same response.
  if (
    c?.role === 'responder' &&
    c.lastResponse?.messageId === 0 &&
    bytesEqual(c.spiI, msg.header.initiatorSpi) &&
    w.s.status === 'init-answered'
  )
    return void w.actions.push({ kind: 'send', bytes: c.lastResponse.bytes });
  w.actions.push({ kind: 'dropped', reason: 'unexpected-init-request' });
}

function decrypt(w: Work, core: IkeSaCore, bytes: Uint8Array, msg: IkeMessage): Payload[] {
  return decryptMessage(
    bytes,
    msg,
    skProtection(w.ctx.provider, core.suite, core.keys, core.role !== 'initiator'),
  );
}

/** RFC 7383 §2.6: an SKF fragment; the message is processed once all its fragments are in. */
function onFragment(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  bytes: Uint8Array,
  msg: IkeMessage,
  skf: SkfPayload,
  isResponse: boolean,
): void {
  const h = msg.header;
  // Only when both announced it, and never over TCP (RFC 9329 §2).
  if (!core.fragmentation || w.s.transport !== 'udp')
    return void w.actions.push({ kind: 'dropped', reason: 'unexpected-fragment' });
  if (isResponse) {
    if (!isExpectedResponse(core, h.messageId))
      return void w.actions.push({ kind: 'dropped', reason: 'unexpected-response' });
  } else {
    const disposition = classifyRequest(core, h.messageId);
    if (disposition === 'duplicate') {
      // §2.6.1: a retransmitted fragmented request is answered once, on its fragment 1.
      if (skf.fragmentNumber === 1) pushSends(w.actions, core.lastResponse!, w.s.transport);
      else w.actions.push({ kind: 'dropped', reason: 'duplicate-fragment' });
      return;
    }
    if (disposition === 'out-of-window')
      return void w.actions.push({ kind: 'dropped', reason: 'message-id-out-of-window' });
  }
  const r = addFragment(w.ctx, core, bytes, msg, skf, isResponse);
  w.s[slot] = r.core;
  if (r.kind === 'dropped') return void w.actions.push({ kind: 'dropped', reason: r.reason });
  if (r.kind === 'incomplete') return void w.actions.push({ kind: 'persist' });
  const inner = () => r.payloads;
  if (isResponse) onResponse(w, slot, r.core, h, inner);
  else onRequest(w, slot, r.core, h, inner);
}

function onResponse(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  h: MessageHeaderFields,
  decryptInner: () => Payload[],
): void {
  if (!isExpectedResponse(core, h.messageId))
    return void w.actions.push({ kind: 'dropped', reason: 'unexpected-response' });
  const inner = decryptInner();
  const task = core.outstanding!.task;
  const { outstanding: _done, ...rest } = core;
  w.s[slot] = rest;
  const isCurrent = slot === 'current';
  try {
    switch (task.kind) {
      case 'ike-auth':
        return processAuthResponse(w, inner, task.childSpi);
      case 'intermediate': {
        const r = processIntermediateResponse(w, w.s[slot]!, inner, task, h.messageId);
        w.s.current = r.core;
        w.s.init = { ...w.s.init!, intAuth: r.intAuth };
        return startAuth(w);
      }
      case 'liveness':
        return;
      case 'mid-sync':
        w.s[slot] = processMidSyncResponse(w.s[slot]!, inner, task.nonce);
        return;
      case 'delete-child':
        return removeChild(w, task.spi);
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
    if (task.kind === 'ike-auth' || task.kind === 'intermediate')
      return terminate(w, 'authentication-failed');
    w.actions.push({ kind: 'dropped', reason: e.code });
  }
}

function onRequest(
  w: Work,
  slot: CoreSlot,
  core: IkeSaCore,
  h: MessageHeaderFields,
  decryptInner: () => Payload[],
): void {
  if (isMidSyncRequest(h, decryptInner)) {
    // RFC 6311: answered outside the window, whatever the Message ID counters say.
    const synced = respondMidSync(w, core, decryptInner());
    if (typeof synced === 'string') return void w.actions.push({ kind: 'dropped', reason: synced });
    w.s[slot] = synced;
    return;
  }
  const disposition = classifyRequest(core, h.messageId);
  if (disposition === 'duplicate') return void pushSends(w.actions, core.lastResponse!, w.s.transport);
  if (disposition === 'out-of-window')
    return void w.actions.push({ kind: 'dropped', reason: 'message-id-out-of-window' });
  const inner = decryptInner();
  if (h.exchangeType === ExchangeType.IKE_INTERMEDIATE) {
    if (slot !== 'current' || w.s.status !== 'init-answered')
      return void w.actions.push({ kind: 'dropped', reason: 'unexpected-ike-intermediate' });
    return respondIntermediate(w, inner, h.messageId);
  }
  if (h.exchangeType === ExchangeType.IKE_AUTH) {
    if (slot !== 'current' || w.s.status !== 'init-answered')
      return void w.actions.push({ kind: 'dropped', reason: 'unexpected-ike-auth' });
    return respondAuth(w, inner, h.messageId);
  }
  if (w.s.status !== 'established')
    return void w.actions.push({ kind: 'dropped', reason: 'not-established' });
  try {
    if (h.exchangeType === ExchangeType.INFORMATIONAL) {
      const { response, ikeDeleted } = respondInformational(w, inner);
      w.s[slot] = sendResponse(w.ctx, core, h.exchangeType, h.messageId, response, w.actions, w.s.transport);
      if (!ikeDeleted) return;
      if (slot === 'current') terminate(w, 'peer-deleted');
      else w.s[slot] = undefined;
      return;
    }
    if (h.exchangeType === ExchangeType.CREATE_CHILD_SA) {
      if (slot !== 'current') {
        w.s[slot] = sendResponse(
          w.ctx,
          core,
          h.exchangeType,
          h.messageId,
          [notify(NotifyError.TEMPORARY_FAILURE)],
          w.actions,
          w.s.transport,
        );
        return;
      }
      const { out, freshIke } = respondCreateChildSa(w, inner);
      const answered = sendResponse(
        w.ctx,
        w.s.current!,
        h.exchangeType,
        h.messageId,
        out,
        w.actions,
        w.s.transport,
      );
      if (!freshIke) {
        w.s.current = answered;
        return;
      }
      if (answered.outstanding?.task.kind === 'rekey-ike') {
        // Simultaneous rekey (§2.8.1): decided when our own rekey's response arrives.
        w.s.current = answered;
        w.s.collision = freshIke;
        return;
      }
      // The rekey initiator deletes the old SA; we keep it to answer that DELETE.
      w.s.previous = answered;
      w.s.current = freshIke;
      w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: freshIke.spiI, newResponderSpi: freshIke.spiR });
      return;
    }
    w.s[slot] = sendResponse(
      w.ctx,
      core,
      h.exchangeType,
      h.messageId,
      [notify(NotifyError.INVALID_SYNTAX)],
      w.actions,
      w.s.transport,
    );
  } catch (e) {
    if (!(e instanceof RemoteProtocolError) || e.notify === undefined) throw e;
    w.s[slot] = sendResponse(
      w.ctx,
      w.s[slot] ?? core,
      h.exchangeType,
      h.messageId,
      [notify(e.notify, e.notifyData)],
      w.actions,
      w.s.transport,
    );
  }
}

/** A thin object wrapper for callers that prefer methods; the state stays plain data. */
export class IkeSa {
  constructor(
    public state: IkeSaState,
    private readonly ctx: IkeSaContext,
  ) {}
  handle(event: IkeSaEvent): readonly IkeSaAction[] {
    const r = step(this.state, event, this.ctx);
    this.state = r.state;
    return r.actions;
  }
}
