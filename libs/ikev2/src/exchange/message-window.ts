/**
 * Message IDs, the request window and retransmission (RFC 7296 §2.1, §2.2, §2.3; RFC 9329 §2.
 *
 * We keep a window of one: at most one request of ours is outstanding per IKE SA; further
 * commands wait in the state's queue. Over UDP the outstanding request is retransmitted with
 * exponential backoff (initialMs, 2x, 4x, ...) and after `maxRetransmits` the peer is dead. Over
 * TCP nothing is retransmitted on a timer; the service reports `connection-restored` and every
 * outstanding request is sent again (RFC 9329 §2). The last response is cached so a duplicate
 * request is answered without being processed again.
 *
 * RFC 7383: when both sides announced fragmentation and the transport is UDP, a protected message
 * longer than `policy.fragmentSize` is also encoded as SKF fragments; those are what goes on the
 * wire (and are retransmitted), `bytes` stays the unfragmented encoding for TCP. Never over TCP.
 */
import {
  encodeProtectedFragments,
  encodeProtectedMessage,
  HeaderFlag,
  type Payload,
} from '../codec/index.js';
import { hex, skProtection } from './suite.js';
import type { IkeSaAction, IkeSaContext, IkeSaCore, IkeTask, RetransmitPolicy, Transport } from './types.js';

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { initialMs: 1000, maxRetransmits: 5 };
export const DEFAULT_FRAGMENT_SIZE = 1280;

/** What goes on the wire for a message we keep: its fragments over UDP if it has them. */
export function wireMessages(
  m: { readonly bytes: Uint8Array; readonly fragments?: readonly Uint8Array[] },
  transport: Transport,
): readonly Uint8Array[] {
  return transport === 'udp' && m.fragments !== undefined ? m.fragments : [m.bytes];
}

export function pushSends(
  actions: IkeSaAction[],
  m: { readonly bytes: Uint8Array; readonly fragments?: readonly Uint8Array[] },
  transport: Transport,
): void {
  for (const bytes of wireMessages(m, transport)) actions.push({ kind: 'send', bytes });
}

/** RFC 7383 §2.5: SKF fragments of a message too long for one datagram, if fragmentation applies. */
function fragmentsFor(
  ctx: IkeSaContext,
  core: IkeSaCore,
  transport: Transport | undefined,
  exchangeType: number,
  response: boolean,
  messageId: number,
  inner: readonly Payload[],
  bytes: Uint8Array,
): Uint8Array[] | undefined {
  if (!core.fragmentation || transport !== 'udp') return undefined;
  const size = ctx.policy.fragmentSize ?? DEFAULT_FRAGMENT_SIZE;
  if (bytes.length <= size) return undefined;
  return encodeProtectedFragments(
    {
      initiatorSpi: core.spiI,
      responderSpi: core.spiR,
      exchangeType,
      flags: flagsFor(core.role, response),
      messageId,
    },
    inner,
    skProtection(ctx.provider, core.suite, core.keys, core.role === 'initiator'),
    ctx.random,
    size,
  );
}

export function retransmitTimerId(core: { spiI: Uint8Array }, messageId: number): string {
  return `retransmit:${hex(core.spiI)}:${messageId}`;
}

export function flagsFor(role: 'initiator' | 'responder', response: boolean): number {
  return (role === 'initiator' ? HeaderFlag.INITIATOR : 0) | (response ? HeaderFlag.RESPONSE : 0);
}

/** Encodes and protects a message of `core` with our outbound keys. */
export function protect(
  ctx: IkeSaContext,
  core: IkeSaCore,
  exchangeType: number,
  response: boolean,
  messageId: number,
  inner: readonly Payload[],
): Uint8Array {
  return encodeProtectedMessage(
    {
      initiatorSpi: core.spiI,
      responderSpi: core.spiR,
      exchangeType,
      flags: flagsFor(core.role, response),
      messageId,
    },
    inner,
    skProtection(ctx.provider, core.suite, core.keys, core.role === 'initiator'),
    ctx.random,
  );
}

/** Starts a request on `core`: allocates its Message ID, sends it and arms the retransmit timer. */
export function sendRequest(
  ctx: IkeSaContext,
  core: IkeSaCore,
  transport: Transport,
  now: number,
  exchangeType: number,
  inner: readonly Payload[],
  task: IkeTask,
  actions: IkeSaAction[],
): IkeSaCore {
  const messageId = core.nextRequestId;
  return {
    ...sendRequestWithId(ctx, core, transport, now, exchangeType, messageId, inner, task, actions),
    nextRequestId: messageId + 1,
  };
}

/** Like sendRequest with an explicit Message ID that does not advance the counter (RFC 6311 uses 0). */
export function sendRequestWithId(
  ctx: IkeSaContext,
  core: IkeSaCore,
  transport: Transport,
  now: number,
  exchangeType: number,
  messageId: number,
  inner: readonly Payload[],
  task: IkeTask,
  actions: IkeSaAction[],
): IkeSaCore {
  const bytes = protect(ctx, core, exchangeType, false, messageId, inner);
  const fragments = fragmentsFor(ctx, core, transport, exchangeType, false, messageId, inner, bytes);
  const rt = ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
  const outstanding = {
    messageId,
    bytes,
    task,
    retransmits: 0,
    nextAt: now + rt.initialMs,
    ...(fragments ? { fragments } : {}),
  };
  pushSends(actions, outstanding, transport);
  if (transport === 'udp')
    actions.push({ kind: 'arm-timer', id: retransmitTimerId(core, messageId), at: outstanding.nextAt });
  return { ...core, outstanding };
}

/**
 * A retransmit timer fired. Returns the updated core, or 'dead' when the bound is reached.
 * Stale timers (for an answered request) change nothing.
 */
export function onRetransmitTimer(
  ctx: IkeSaContext,
  core: IkeSaCore,
  id: string,
  now: number,
  actions: IkeSaAction[],
): IkeSaCore | 'dead' {
  const o = core.outstanding;
  if (!o || id !== retransmitTimerId(core, o.messageId) || now < o.nextAt) return core;
  const rt = ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
  if (o.retransmits >= rt.maxRetransmits) return 'dead';
  const retransmits = o.retransmits + 1;
  const nextAt = now + rt.initialMs * 2 ** retransmits;
  pushSends(actions, o, 'udp');
  actions.push({ kind: 'arm-timer', id, at: nextAt });
  return { ...core, outstanding: { ...o, retransmits, nextAt } };
}

/** The response matches our outstanding request (RFC 7296 §2.2). */
export function isExpectedResponse(core: IkeSaCore, messageId: number): boolean {
  return core.outstanding !== undefined && core.outstanding.messageId === messageId;
}

export type RequestDisposition = 'new' | 'duplicate' | 'out-of-window';

export function classifyRequest(core: IkeSaCore, messageId: number): RequestDisposition {
  if (core.lastResponse && core.lastResponse.messageId === messageId) return 'duplicate';
  return messageId === core.expectedRequestId ? 'new' : 'out-of-window';
}

/** Sends our response to the peer's current request and caches it for duplicates. */
export function sendResponse(
  ctx: IkeSaContext,
  core: IkeSaCore,
  exchangeType: number,
  messageId: number,
  inner: readonly Payload[],
  actions: IkeSaAction[],
  transport?: Transport,
): IkeSaCore {
  const lastResponse = respond(ctx, core, exchangeType, messageId, inner, actions, transport);
  return { ...core, expectedRequestId: messageId + 1, lastResponse };
}

/** Sends a response without touching the window (sendResponse, or RFC 6311's Message ID 0). */
export function respond(
  ctx: IkeSaContext,
  core: IkeSaCore,
  exchangeType: number,
  messageId: number,
  inner: readonly Payload[],
  actions: IkeSaAction[],
  transport?: Transport,
): NonNullable<IkeSaCore['lastResponse']> {
  const bytes = protect(ctx, core, exchangeType, true, messageId, inner);
  const fragments = fragmentsFor(ctx, core, transport, exchangeType, true, messageId, inner, bytes);
  const out = { messageId, bytes, ...(fragments ? { fragments } : {}) };
  pushSends(actions, out, transport ?? 'tcp');
  return out;
}
