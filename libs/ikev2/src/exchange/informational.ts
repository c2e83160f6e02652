/**
 * INFORMATIONAL exchanges (RFC 7296 §1.4): an empty request is a liveness check (§2.4); DELETE
 * of child SAs (§1.4.1: the responder deletes the inbound and outbound halves and answers with a
 * DELETE of its own inbound SPIs) and of the IKE SA itself (answered with an empty response).
 * Also the teardown every path to 'deleted' goes through.
 */
import { type DeletePayload, ExchangeType, type Payload, PayloadType, ProtocolId } from '../codec/index.js';
import { connected, sendRequest } from '../sa/task-manager.js';
import type { DeleteReason, IkeSaCore } from '../sa/types.js';
import { bytesEqual, type Work } from '../sa/work.js';

function deletePayload(protocolId: number, spis: Uint8Array[]): DeletePayload {
  return {
    type: PayloadType.DELETE,
    critical: false,
    protocolId,
    spiSize: protocolId === ProtocolId.IKE ? 0 : 4,
    spis,
  };
}

/** Ends the IKE SA: every child is removed and reported, then `deleted` with the reason. */
export function terminate(w: Work, reason: DeleteReason): void {
  for (const c of w.s.children) w.actions.push({ kind: 'remove-child', inboundSpi: c.inboundSpi, reason });
  w.s.children = [];
  w.s.status = 'deleted';
  w.s.queue = [];
  w.actions.push({ kind: 'deleted', reason });
}

// --- initiator -----------------------------------------------------------------------------------

export function startLiveness(w: Work): void {
  w.s.current = sendRequest(w, w.s.current!, ExchangeType.INFORMATIONAL, [], { kind: 'liveness' });
}

/**
 * DELETE of our inbound child SA `spi` (RFC 7296 §1.4.1). The child may already be out of the
 * data plane (hard expiry); the peer is told either way.
 */
export function startDeleteChild(w: Work, spi: Uint8Array): void {
  w.s.current = sendRequest(
    w,
    w.s.current!,
    ExchangeType.INFORMATIONAL,
    [deletePayload(ProtocolId.ESP, [spi])],
    {
      kind: 'delete-child',
      spi,
    },
  );
}

export function startDeleteIke(w: Work): void {
  w.s.current = sendRequest(
    w,
    w.s.current!,
    ExchangeType.INFORMATIONAL,
    [deletePayload(ProtocolId.IKE, [])],
    {
      kind: 'delete-ike',
    },
  );
}

/**
 * A DELETE of the IKE SA we do not wait for (hard expiry, wrong peer identity): sent when the
 * window is free and the peer reachable; the SA is terminated by the caller right after.
 */
export function startDeleteIkeUnanswered(w: Work): void {
  const core = w.s.current;
  if (!core || core.outstanding !== undefined || !connected(w)) return;
  sendRequest(w, core, ExchangeType.INFORMATIONAL, [deletePayload(ProtocolId.IKE, [])], {
    kind: 'delete-ike',
  });
}

/** DELETE of an IKE SA other than the current one (replaced by a rekey or redundant after a collision). */
export function sendDeleteOn(w: Work, core: IkeSaCore): IkeSaCore {
  return sendRequest(w, core, ExchangeType.INFORMATIONAL, [deletePayload(ProtocolId.IKE, [])], {
    kind: 'delete-old-ike',
  });
}

export function removeChild(w: Work, inboundSpi: Uint8Array, reason: string): void {
  const before = w.s.children.length;
  w.s.children = w.s.children.filter((c) => !bytesEqual(c.inboundSpi, inboundSpi));
  if (w.s.children.length !== before) w.actions.push({ kind: 'remove-child', inboundSpi, reason });
}

// --- responder -----------------------------------------------------------------------------------

export type InformationalOutcome = { response: Payload[]; ikeDeleted: boolean };

/** Processes a request's DELETE payloads; returns the response payloads. */
export function respondInformational(w: Work, inner: readonly Payload[]): InformationalOutcome {
  const response: Payload[] = [];
  let ikeDeleted = false;
  const ours: Uint8Array[] = [];
  for (const p of inner) {
    if (p.type !== PayloadType.DELETE || 'unknown' in p) continue;
    const d = p as DeletePayload;
    if (d.protocolId === ProtocolId.IKE) ikeDeleted = true;
    else if (d.protocolId === ProtocolId.ESP) {
      for (const spi of d.spis) {
        const child = w.s.children.find((c) => bytesEqual(c.outboundSpi, spi));
        if (!child) continue;
        ours.push(child.inboundSpi);
        removeChild(w, child.inboundSpi, 'peer-deleted');
      }
    }
  }
  if (!ikeDeleted && ours.length > 0) response.push(deletePayload(ProtocolId.ESP, ours));
  return { response, ikeDeleted };
}
