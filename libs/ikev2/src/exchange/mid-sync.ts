/**
 * RFC 6311 Message ID synchronization for IKE SAs taken over by another cluster member.
 *
 * The member that took over (the `mid-sync` command) sends an INFORMATIONAL request with Message
 * ID 0 carrying IKEV2_MESSAGE_ID_SYNC: a nonce, EXPECTED_SEND_REQ_MESSAGE_ID (the ID of our next
 * request) and EXPECTED_RECV_REQ_MESSAGE_ID (the ID we expect on the peer's next request). Message
 * ID 0 neither consumes nor advances the window (§4.2). The peer accepts the higher of its own and
 * the received values (§5), and answers with Message ID 0, echoing the nonce and giving its view
 * after the update: its next request ID and the ID it expects next. The initiator of the sync then
 * moves its own counters up to match. Message ID 0 is accepted for this exchange only.
 *
 * Not done: a request the peer had outstanding under the old counters is not renumbered; it is
 * retransmitted as it was (and, if the cluster now treats it as out of window, times out).
 */
import {
  decodeMessageIdSync,
  encodeMessageIdSync,
  ExchangeType,
  type MessageHeaderFields,
  NotifyStatus,
  type Payload,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import { respond, sendRequestWithId } from './message-window.js';
import type { IkeSaCore } from './types.js';
import { findNotify, notify, type Work } from './work.js';

export const MID_SYNC_MESSAGE_ID = 0;

function u32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/** Cluster side: sends the sync request on the current SA. */
export function startMidSync(w: Work): void {
  const core = w.s.current!;
  const nonce = u32(w.ctx.random(4));
  const data = encodeMessageIdSync({
    nonce,
    expectedSendRequestId: core.nextRequestId,
    expectedRecvRequestId: core.expectedRequestId,
  });
  w.s.current = sendRequestWithId(
    w.ctx,
    core,
    w.s.transport,
    w.now,
    ExchangeType.INFORMATIONAL,
    MID_SYNC_MESSAGE_ID,
    [notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC, data)],
    { kind: 'mid-sync', nonce },
    w.actions,
  );
}

/** Cluster side: the peer's answer (the outstanding request is already cleared from `core`). */
export function processMidSyncResponse(core: IkeSaCore, inner: readonly Payload[], nonce: number): IkeSaCore {
  const n = findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC);
  if (!n) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_MISSING_PAYLOAD', 'no IKEV2_MESSAGE_ID_SYNC');
  const v = decodeMessageIdSync(n.data);
  if (v.nonce !== nonce) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'sync nonce mismatch');
  return {
    ...core,
    nextRequestId: Math.max(core.nextRequestId, v.expectedRecvRequestId),
    expectedRequestId: Math.max(core.expectedRequestId, v.expectedSendRequestId),
  };
}

/**
 * Whether a request is an RFC 6311 sync request: an INFORMATIONAL with Message ID 0 carrying
 * IKEV2_MESSAGE_ID_SYNC. (Message ID 0 is also the first request of a responder or of a rekeyed
 * SA, so the payloads decide.) Decrypts only Message ID 0 INFORMATIONAL requests.
 */
export function isMidSyncRequest(h: MessageHeaderFields, inner: () => readonly Payload[]): boolean {
  return (
    h.messageId === MID_SYNC_MESSAGE_ID &&
    h.exchangeType === ExchangeType.INFORMATIONAL &&
    findNotify(inner(), NotifyStatus.IKEV2_MESSAGE_ID_SYNC) !== undefined
  );
}

/**
 * Peer side: answers a sync request on `core` and returns the updated core, or a drop reason
 * when the message is not an acceptable sync request (Message ID 0 is valid for nothing else).
 */
export function respondMidSync(w: Work, core: IkeSaCore, inner: readonly Payload[]): IkeSaCore | string {
  const n = findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC);
  if (w.s.status !== 'established' || !w.ctx.policy.messageIdSync || !n) return 'unexpected-message-id-sync';
  const v = decodeMessageIdSync(n.data);
  const updated: IkeSaCore = {
    ...core,
    expectedRequestId: Math.max(core.expectedRequestId, v.expectedSendRequestId),
    nextRequestId: Math.max(core.nextRequestId, v.expectedRecvRequestId),
  };
  const data = encodeMessageIdSync({
    nonce: v.nonce,
    expectedSendRequestId: updated.nextRequestId,
    expectedRecvRequestId: updated.expectedRequestId,
  });
  respond(
    w.ctx,
    updated,
    ExchangeType.INFORMATIONAL,
    MID_SYNC_MESSAGE_ID,
    [notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC, data)],
    w.actions,
    w.s.transport,
  );
  return updated;
}
