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
 * Each sync request is processed once: its nonce is remembered (a bounded list), a retransmission
 * of the same octets from where it came gets the same answer, any other copy is dropped.
 *
 * IPSEC_REPLAY_COUNTER_SYNC (§4.3) rides in the same request when the peer announced
 * IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED: the Incoming IPsec SA Replay Counter is where the cluster's
 * inbound replay windows (all Child SAs of the IKE SA) now start, so that the sequence numbers the
 * failed member accepted after its last checkpoint cannot be replayed to the new one. The peer
 * moves the outbound counter of each Child SA to at least that value (the `replay-counter-sync`
 * action; the data plane owns the counters) and answers with IKEV2_MESSAGE_ID_SYNC only. A
 * counter that does not decode is dropped with a reason; the Message ID sync still proceeds.
 *
 * Not done: a request the peer had outstanding under the old counters is not renumbered; it is
 * retransmitted as it was (and, if the cluster now treats it as out of window, times out).
 */
import {
  decodeMessageIdSync,
  decodeReplayCounterSync,
  encodeMessageIdSync,
  encodeReplayCounterSync,
  ExchangeType,
  NotifyStatus,
  type Payload,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import { digest, retransmissionAnswerable, sendRequest, sourceOf } from '../sa/task-manager.js';
import type { IkeSaCore } from '../sa/types.js';
import { bytesEqual, findNotify, notify, type Work } from '../sa/work.js';
import { pushSends } from '../sa/task-manager.js';
import { encodeProtectedMessage } from '../codec/index.js';
import { flagsFor, protectionOf } from '../sa/task-manager.js';

export const MID_SYNC_MESSAGE_ID = 0;
/** Sync nonces remembered per IKE SA. */
const MAX_SYNC_NONCES = 8;

function u32(b: Uint8Array): number {
  return ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;
}

/**
 * Cluster side: sends the sync request on the current SA; with `replayCounter` (and a peer that
 * announced support) IPSEC_REPLAY_COUNTER_SYNC goes in the same message.
 */
export function startMidSync(
  w: Work,
  replayCounter?: { readonly value: bigint; readonly esn: boolean },
): void {
  // Message ID 0 is the sync exchange's own (§4.2): our next request after it is at least 1, or
  // the peer would see a second request 0, and a peer that derives its AES-GCM IVs from the
  // Message ID (strongSwan's iv_gen_seq) refuses to encrypt a second response 0 and drops the SA.
  const core = { ...w.s.current!, nextRequestId: Math.max(1, w.s.current!.nextRequestId) };
  const nonce = u32(w.ctx.random(4));
  const data = encodeMessageIdSync({
    nonce,
    expectedSendRequestId: core.nextRequestId,
    expectedRecvRequestId: core.expectedRequestId,
  });
  const payloads = [notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC, data)];
  if (replayCounter && w.s.peerReplayCounterSync)
    payloads.push(
      notify(
        NotifyStatus.IPSEC_REPLAY_COUNTER_SYNC,
        encodeReplayCounterSync({ nonce, incomingReplayCounter: replayCounter.value }, replayCounter.esn),
      ),
    );
  w.s.current = sendRequest(
    w,
    core,
    ExchangeType.INFORMATIONAL,
    payloads,
    { kind: 'mid-sync', nonce },
    MID_SYNC_MESSAGE_ID,
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

/** An authenticated Message ID 0 INFORMATIONAL request carrying IKEV2_MESSAGE_ID_SYNC. */
export function isMidSyncRequest(inner: readonly Payload[]): boolean {
  return findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC) !== undefined;
}

/**
 * Peer side: answers an authenticated sync request on `core` and returns the updated core, or a
 * drop reason when it is not acceptable (not negotiated, or a copy of one already processed).
 */
export function respondMidSync(
  w: Work,
  core: IkeSaCore,
  inner: readonly Payload[],
  bytes: Uint8Array,
): IkeSaCore | string {
  const n = findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC);
  if (w.s.status !== 'established' || !w.ctx.policy.messageIdSync || !n) return 'unexpected-message-id-sync';
  const v = decodeMessageIdSync(n.data);
  const requestDigest = digest(w.ctx, bytes);
  if ((core.syncNonces ?? []).includes(v.nonce)) {
    const last = core.lastSyncResponse;
    const from = w.from!;
    if (
      last &&
      bytesEqual(last.requestDigest, requestDigest) &&
      (last.source.pathId === from.id || retransmissionAnswerable(last.source, from))
    ) {
      pushSends(w, last, from);
      return core;
    }
    return 'replayed-message-id-sync';
  }
  const replay = findNotify(inner, NotifyStatus.IPSEC_REPLAY_COUNTER_SYNC);
  if (replay && w.ctx.policy.replayCounterSync) {
    try {
      const counter = decodeReplayCounterSync(replay.data).incomingReplayCounter;
      w.actions.push({ kind: 'replay-counter-sync', counter });
    } catch {
      w.actions.push({ kind: 'dropped', reason: 'invalid-replay-counter-sync' });
    }
  }
  const updated: IkeSaCore = {
    ...core,
    expectedRequestId: Math.max(core.expectedRequestId, v.expectedSendRequestId),
    nextRequestId: Math.max(core.nextRequestId, v.expectedRecvRequestId),
  };
  // A request of ours the cluster has not seen yet (its expected ID is not past it) is resent
  // after this exchange (messages.ts): tell the cluster to expect that ID, not the one after it.
  const pending = updated.outstanding?.messageId;
  const data = encodeMessageIdSync({
    nonce: v.nonce,
    expectedSendRequestId:
      pending !== undefined && pending >= v.expectedRecvRequestId ? pending : updated.nextRequestId,
    expectedRecvRequestId: updated.expectedRequestId,
  });
  const response = encodeProtectedMessage(
    {
      initiatorSpi: core.spiI,
      responderSpi: core.spiR,
      exchangeType: ExchangeType.INFORMATIONAL,
      flags: flagsFor(core.role, true),
      messageId: MID_SYNC_MESSAGE_ID,
    },
    [notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC, data)],
    protectionOf(w.ctx, core, 'us'),
    w.ctx.random,
  );
  const from = w.from!;
  w.actions.push({ kind: 'send', bytes: response, path: from });
  return {
    ...updated,
    syncNonces: [...(core.syncNonces ?? []), v.nonce].slice(-MAX_SYNC_NONCES),
    lastSyncResponse: {
      messageId: MID_SYNC_MESSAGE_ID,
      bytes: response,
      requestDigest,
      source: sourceOf(from),
    },
  };
}
