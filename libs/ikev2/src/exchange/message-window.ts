/**
 * Message IDs, the request window and retransmission (RFC 7296 §2.1, §2.2, §2.3; RFC 9329 §2.
 *
 * We keep a window of one: at most one request of ours is outstanding per IKE SA; further
 * commands wait in the state's queue. Over UDP the outstanding request is retransmitted with
 * exponential backoff (initialMs, 2x, 4x, ...) and after `maxRetransmits` the peer is dead. Over
 * TCP nothing is retransmitted on a timer; the service reports `connection-restored` and every
 * outstanding request is sent again (RFC 9329 §2). The last response is cached so a duplicate
 * request is answered without being processed again.
 */
import { encodeProtectedMessage, HeaderFlag, type Payload } from '../codec/index.js';
import { hex, skProtection } from './suite.js';
import type { IkeSaAction, IkeSaContext, IkeSaCore, IkeTask, RetransmitPolicy, Transport } from './types.js';

export const DEFAULT_RETRANSMIT: RetransmitPolicy = { initialMs: 1000, maxRetransmits: 5 };

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
  const bytes = protect(ctx, core, exchangeType, false, messageId, inner);
  const rt = ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
  actions.push({ kind: 'send', bytes });
  const nextAt = now + rt.initialMs;
  if (transport === 'udp')
    actions.push({ kind: 'arm-timer', id: retransmitTimerId(core, messageId), at: nextAt });
  return {
    ...core,
    nextRequestId: messageId + 1,
    outstanding: { messageId, bytes, task, retransmits: 0, nextAt },
  };
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
  actions.push({ kind: 'send', bytes: o.bytes });
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
): IkeSaCore {
  const bytes = protect(ctx, core, exchangeType, true, messageId, inner);
  actions.push({ kind: 'send', bytes });
  return { ...core, expectedRequestId: messageId + 1, lastResponse: { messageId, bytes } };
}
