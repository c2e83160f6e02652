/**
 * One IKE SA: a pure `step(state, event, ctx)` and `nextTimeout(state)`.
 *
 * How this works: `state` is plain serializable data (types.ts); an event is a received message
 * (with the path it came on), a timeout, a command or a lost connection, each carrying `now`;
 * `ctx` injects crypto, randomness, SPI allocation, policy, PSKs and address assignment. `step`
 * returns the next state and actions (send, install/remove a child SA, established, path
 * validated, deleted, rejected, dropped, persist). It does no IO, reads no clock and never throws
 * for anything the peer sends. The task manager (task-manager.ts) owns Message IDs, the window,
 * retransmission and the response cache; each exchange is a task file in ../exchange/ with its
 * initiator and responder halves. A responder SA is created by ../endpoint/ once an IKE_SA_INIT
 * request passed the stateless checks there (COOKIE, proposals, KE group, limits).
 *
 * Files: messages.ts handles a received message, paths.ts the path rules, lifetimes.ts rekeys,
 * expiry and liveness. The order of checks on a received message is what keeps an
 * unauthenticated packet from changing anything: decode the header; find the SA core by both SPIs; check the I flag; classify
 * the Message ID (an out-of-window request or an unexpected response is dropped before any
 * crypto); verify integrity; only then process, update the path (RFC 7296 §2.23, RFC 9329 §6)
 * and the liveness time. A retransmission (same octets as the request we answered, or an
 * authenticated copy with the same Message ID) is answered from the cache and changes nothing.
 *
 * Status transitions (anything can go to 'deleted'):
 *
 *   initiator:  idle --initiate--> init-sent --INIT resp--> auth-sent --AUTH resp--> established
 *               init-sent --COOKIE / INVALID_KE_PAYLOAD--> init-sent (retry)
 *               init-sent stays while an IKE_INTERMEDIATE (RFC 9242) runs
 *   responder:  (created by the endpoint) init-answered --AUTH req--> established
 *               init-answered stays while it answers IKE_INTERMEDIATE
 *
 * After establishment an IKE SA may hold up to three cores: `current`, the `previous` one being
 * deleted after a rekey, and a `collision` one (a redundant SA from a simultaneous rekey).
 * Incoming messages are routed to the core whose SPIs match.
 */
import { NO_KEY } from '@ikegate/crypto';
import { LocalUsageError } from '../errors.js';
import { onInitTimer, startInit } from '../exchange/ike-init.js';
import { startDeleteChild, startDeleteIke, startLiveness, terminate } from '../exchange/informational.js';
import { startRekeyChild } from '../exchange/child-rekey.js';
import { startRekeyIke } from '../exchange/ike-rekey.js';
import { startMidSync } from '../exchange/mid-sync.js';
import { onLifetimeTimers, PREVIOUS_WAIT_MS } from './lifetimes.js';
import { enqueue, isQueueable, onRequestTimer, pushSends, SLOTS } from './task-manager.js';
import type {
  IkePath,
  IkeSaCommand,
  IkeSaContext,
  IkeSaCore,
  IkeSaEvent,
  IkeSaState,
  IkeSaStatus,
  StepResult,
} from './types.js';
import { bytesEqual, copyAll, type Work } from './work.js';
import { onMessage } from './messages.js';
import { onConnectionLost, resendAll, validatePath } from './paths.js';

export { nextTimeout } from './lifetimes.js';
export { createIkeSa } from './state.js';

/** Every status change `step` may make; a change outside this table is a bug (checked in step). */
export const STATUS_TRANSITIONS: Readonly<Record<IkeSaStatus, readonly IkeSaStatus[]>> = {
  idle: ['init-sent', 'deleted'],
  'init-sent': ['auth-sent', 'deleted'],
  'init-answered': ['established', 'deleted'],
  'auth-sent': ['established', 'deleted'],
  established: ['deleted'],
  deleted: [],
};

/** Fields whose change alone does not need a write-through (timing bookkeeping). */
const VOLATILE: ReadonlySet<string> = new Set(['livenessAt', 'lastInboundAt']);

/**
 * Feeds one event to an IKE SA. `state` is not modified; the returned state replaces it. The
 * caller performs the actions in order. `event.bytes` is only read during the call (whatever the
 * state keeps is copied). Returns no actions once the SA is 'deleted'.
 * @throws LocalUsageError for a command that does not fit the state (e.g. `initiate` twice, or
 *   a rekey before establishment). Never throws for anything received from the peer.
 */
export function step(state: IkeSaState, event: IkeSaEvent, ctx: IkeSaContext): StepResult {
  if (state.status === 'deleted') return { state, actions: [] };
  const w: Work = {
    s: { ...state },
    actions: [],
    ctx,
    now: event.now,
    ...(event.kind === 'message' || event.kind === 'esp-path' ? { from: event.path } : {}),
  };
  switch (event.kind) {
    case 'message':
      onMessage(w, event.bytes);
      break;
    case 'timeout':
      onTimeout(w, event.espActivityAt);
      break;
    case 'command':
      onCommand(w, event.command);
      break;
    case 'connection-lost':
      onConnectionLost(w, event.pathId);
      break;
    case 'esp-path':
      if (w.s.status === 'established') validatePath(w);
      break;
  }
  drainQueue(w);
  settle(w);
  if (w.s.status !== state.status && !STATUS_TRANSITIONS[state.status].includes(w.s.status))
    throw new Error(`bug: IKE SA status ${state.status} -> ${w.s.status}`);
  const keys = new Set([...Object.keys(state), ...Object.keys(w.s)] as (keyof IkeSaState)[]);
  let changed = false;
  let touched = false;
  for (const k of keys) {
    if (w.s[k] === state[k]) continue;
    touched = true;
    if (!VOLATILE.has(k)) changed = true;
  }
  if (changed && !w.actions.some((a) => a.kind === 'persist')) w.actions.push({ kind: 'persist' });
  // Nothing changed (a dropped message): the caller keeps the very same state object.
  return { state: touched ? w.s : state, actions: w.actions };
}

/**
 * An established SA with no rekey in flight (no `previous`, no `collision`) keeps only what it
 * needs for its life: settledCore. Runs at the end of every step: after IKE_AUTH, and once an
 * IKE rekey is done (the old SA deleted), so a rekeyed SA is as small as a new one.
 */
function settle(w: Work): void {
  boundLeftovers(w);
  if (settles(w.s)) w.s.current = settledCore(w.s.current!);
}

/**
 * `previousUntil` is set while a rekey's leftovers (`previous`, `collision`) are kept, and gone
 * with them. A state an older release stored holds them without it: it gets one here. It goes
 * by a new object without the key: `delete` would put the state in dictionary mode (~4x heap).
 */
function boundLeftovers(w: Work): void {
  const kept = w.s.previous !== undefined || w.s.collision !== undefined;
  if (kept && w.s.previousUntil === undefined) w.s.previousUntil = w.now + PREVIOUS_WAIT_MS;
  else if (!kept && 'previousUntil' in w.s) {
    const { previousUntil: _gone, ...rest } = w.s;
    w.s = rest;
  }
}

function settles(s: IkeSaState): boolean {
  const c = s.current;
  return s.status === 'established' && c !== undefined && !s.previous && !s.collision && !isSettled(c);
}

/**
 * `s` as the end of a step leaves it. For a state read back from a store: one an older release
 * wrote may keep what a settled SA drops, and settling it on adoption keeps the first step after
 * it from changing (and persisting) a state that nothing else changed.
 */
export function settledState(s: IkeSaState): IkeSaState {
  return settles(s) ? { ...s, current: settledCore(s.current!) } : s;
}

/** Settled once (no nonces, no SK_p); a state read back from a store is laid out by compactState. */
function isSettled(c: IkeSaCore): boolean {
  const k = c.keys;
  return c.ni.length === 0 && c.nr.length === 0 && k.skPi.length === 0 && k.skPr.length === 0;
}

/**
 * `c` without its nonces and SK_pi/SK_pr, with its SPIs and other keys as views of one new buffer
 * (issue #14, memory per held SA). The nonces served AUTH and the first child's KEYMAT (or, after
 * an IKE rekey, that exchange's keys), SK_pi and SK_pr only AUTH (RFC 7296 §2.15); later exchanges
 * bring their own nonces (§2.17, §2.18), and a simultaneous rekey compares the nonces of the new
 * SAs, which are not settled while it is undecided (§2.8.1). One ArrayBuffer instead of two, and
 * not the KEYMAT buffer that held SK_pi and SK_pr.
 */
export function settledCore(c: IkeSaCore): IkeSaCore {
  const k = c.keys;
  const [spiI, spiR, skD, skAi, skAr, skEi, skEr] = copyAll([
    c.spiI,
    c.spiR,
    k.skD,
    k.skAi,
    k.skAr,
    k.skEi,
    k.skEr,
  ]) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array];
  const keys = { skD, skAi, skAr, skEi, skEr, skPi: NO_KEY, skPr: NO_KEY };
  return { ...c, spiI, spiR, ni: NO_KEY, nr: NO_KEY, keys };
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
      w.s.path = c.path;
      startInit(w);
      return;
    case 'connection-restored':
      w.s.path = c.path;
      w.s.disconnectedAt = undefined;
      w.s.reconnectBy = undefined;
      // Our answer to the peer's rekey of the IKE SA may have been lost with the stream. The peer,
      // still on the old SA, waits for it, and could only ask again on a stream it knows to be ours,
      // which it learns from that old SA alone: the answer goes again (a duplicate is dropped). It
      // goes first: a request of ours resent on the new SA before it would be dropped as unknown,
      // and over TCP nothing resends it again.
      if (w.s.previous?.lastResponse) pushSends(w, w.s.previous.lastResponse, c.path);
      resendAll(w);
      // The peer moves the SA to the new stream only on a new authenticated message (a resent
      // request is a retransmission, which must not move it: anyone can replay one on a stream of
      // their own). Until then it counts down its reconnect wait and would end the SA at its end,
      // while we believe the stream is back: a liveness check, after what we resent, is that
      // message (RFC 9329 §6: the original initiator restores the connection).
      if (w.s.status === 'established') enqueue(w, { kind: 'liveness' });
      return;
    case 'mid-sync':
      if (w.s.status !== 'established' || !w.s.peerMessageIdSync)
        throw new LocalUsageError(
          'IKEGATE_ERR_IKEV2_BAD_STATE',
          `mid-sync in ${w.s.status} (peer sync support: ${w.s.peerMessageIdSync})`,
        );
      enqueue(w, c, true);
      return;
    default:
      if (w.s.status !== 'established')
        throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', `${c.kind} in ${w.s.status}`);
      if (!isQueueable(c) || inFlight(w, c)) return;
      if (enqueue(w, c) === 'full') w.actions.push({ kind: 'dropped', reason: 'queue-full' });
  }
}

/** Whether a request of ours on any core already does what `c` asks (the same child's rekey or delete). */
function inFlight(w: Work, c: { kind: string; spi?: Uint8Array }): boolean {
  // One IKE rekey at a time: a second one asked while the first runs is the same request.
  if (c.kind === 'rekey-ike') return w.s.current?.outstanding?.task.kind === 'rekey-ike';
  if (c.kind !== 'rekey-child' && c.kind !== 'delete-child') return false;
  for (const slot of SLOTS) {
    const t = w.s[slot]?.outstanding?.task;
    if (!t || !c.spi) continue;
    if (c.kind === 'rekey-child' && t.kind === 'rekey-child' && bytesEqual(t.oldSpi, c.spi)) return true;
    if (c.kind === 'delete-child' && t.kind === 'delete-child' && bytesEqual(t.spi, c.spi)) return true;
  }
  return false;
}

/**
 * Whether a queued request can start now. An IKE rekey waits while the SA an earlier rekey
 * replaced is still being deleted (`previous`): a third generation would push that one out with
 * its outstanding request (RFC 7296 §2.18: the DELETE is the last request on the old SA).
 */
function ready(w: Work, c: { kind: string }): boolean {
  // A `collision` when no rekey of ours is outstanding is the peer's redundant SA from the last
  // rekey, waiting for its DELETE: a new rekey would take it for a live collision (§2.8.1).
  return c.kind !== 'rekey-ike' || (w.s.previous === undefined && w.s.collision === undefined);
}

/** Starts queued requests while the window (of one) is free. */
function drainQueue(w: Work): void {
  while (w.s.status === 'established' && !busy(w) && w.s.queue.length > 0) {
    const i = w.s.queue.findIndex((x) => ready(w, x));
    if (i < 0) break;
    const c = w.s.queue[i]!;
    w.s.queue = [...w.s.queue.slice(0, i), ...w.s.queue.slice(i + 1)];
    // Already running on an older core (an IKE rekey moved the window on): not twice.
    if (inFlight(w, c)) continue;
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
        startMidSync(w, c.replayCounter);
        break;
    }
  }
}

// --- timers --------------------------------------------------------------------------------------

function onTimeout(w: Work, espActivityAt: number | undefined): void {
  if (w.s.status === 'init-sent' && !w.s.current) return onInitTimer(w);
  if (w.s.halfOpenExpiresAt !== undefined && w.now >= w.s.halfOpenExpiresAt && w.s.status === 'init-answered')
    return terminate(w, 'half-open-expired');
  if (w.s.reconnectBy !== undefined && w.now >= w.s.reconnectBy) return terminate(w, 'connection-lost');
  for (const slot of SLOTS) {
    const core = w.s[slot];
    if (!core) continue;
    const next = onRequestTimer(w, core);
    if (next === 'dead') {
      if (slot === 'current') return terminate(w, 'dead-peer');
      w.s[slot] = undefined;
      continue;
    }
    w.s[slot] = next;
  }
  if (w.s.previousUntil !== undefined && w.now >= w.s.previousUntil) {
    // A rekey's leftovers whose DELETE exchange never finished (the peer gave its DELETE up, or
    // ours went unanswered) go without one, so the next IKE SA rekey is neither refused for the
    // old SA nor confused by the redundant one. A collision of a rekey of ours still outstanding
    // stays: it is decided when our rekey's answer comes.
    w.s.previous = undefined;
    if (w.s.current?.outstanding?.task.kind !== 'rekey-ike') w.s.collision = undefined;
    w.s.previousUntil = undefined;
  }
  if (w.s.status === 'established') onLifetimeTimers(w, espActivityAt);
}

/** A thin object wrapper for callers that prefer methods; the state stays plain data. */
export class IkeSa {
  constructor(
    public state: IkeSaState,
    private readonly ctx: IkeSaContext,
  ) {}
  handle(event: IkeSaEvent): StepResult['actions'] {
    const r = step(this.state, event, this.ctx);
    this.state = r.state;
    return r.actions;
  }
}

export type { IkePath };
