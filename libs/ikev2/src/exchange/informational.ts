/**
 * INFORMATIONAL exchanges (RFC 7296 §1.4): an empty request is a liveness check (§2.4); DELETE
 * of child SAs (§1.4.1: the responder deletes the inbound and outbound halves and answers with a
 * DELETE of its own inbound SPIs) and of the IKE SA itself (answered with an empty response).
 */
import { type DeletePayload, ExchangeType, type Payload, PayloadType, ProtocolId } from '../codec/index.js';
import { sendRequest } from './message-window.js';
import { bytesEqual } from './suite.js';
import type { DeleteReason, IkeSaCore } from './types.js';
import type { Work } from './work.js';

function deletePayload(protocolId: number, spis: Uint8Array[]): DeletePayload {
  return {
    type: PayloadType.DELETE,
    critical: false,
    protocolId,
    spiSize: protocolId === ProtocolId.IKE ? 0 : 4,
    spis,
  };
}

/** Removes every child in all IKE-level teardown paths and reports it. */
export function terminate(w: Work, reason: DeleteReason): void {
  for (const c of w.s.children) w.actions.push({ kind: 'remove-child', inboundSpi: c.inboundSpi });
  w.s.children = [];
  w.s.status = 'deleted';
  w.s.queue = [];
  w.actions.push({ kind: 'deleted', reason });
}

// --- initiator -----------------------------------------------------------------------------------

export function startLiveness(w: Work): void {
  w.s.current = sendRequest(
    w.ctx,
    w.s.current!,
    w.s.transport,
    w.now,
    ExchangeType.INFORMATIONAL,
    [],
    { kind: 'liveness' },
    w.actions,
  );
}

export function startDeleteChild(w: Work, spi: Uint8Array): void {
  if (!w.s.children.some((c) => bytesEqual(c.inboundSpi, spi))) return;
  w.s.current = sendRequest(
    w.ctx,
    w.s.current!,
    w.s.transport,
    w.now,
    ExchangeType.INFORMATIONAL,
    [deletePayload(ProtocolId.ESP, [spi])],
    { kind: 'delete-child', spi },
    w.actions,
  );
}

export function startDeleteIke(w: Work): void {
  w.s.current = sendRequest(
    w.ctx,
    w.s.current!,
    w.s.transport,
    w.now,
    ExchangeType.INFORMATIONAL,
    [deletePayload(ProtocolId.IKE, [])],
    { kind: 'delete-ike' },
    w.actions,
  );
}

/** DELETE of an IKE SA other than the current one (replaced by a rekey or redundant after a collision). */
export function sendDeleteOn(w: Work, core: IkeSaCore): IkeSaCore {
  return sendRequest(
    w.ctx,
    core,
    w.s.transport,
    w.now,
    ExchangeType.INFORMATIONAL,
    [deletePayload(ProtocolId.IKE, [])],
    { kind: 'delete-old-ike' },
    w.actions,
  );
}

export function removeChild(w: Work, inboundSpi: Uint8Array): void {
  const before = w.s.children.length;
  w.s.children = w.s.children.filter((c) => !bytesEqual(c.inboundSpi, inboundSpi));
  if (w.s.children.length !== before) w.actions.push({ kind: 'remove-child', inboundSpi });
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
        removeChild(w, child.inboundSpi);
      }
    }
  }
  if (!ikeDeleted && ours.length > 0) response.push(deletePayload(ProtocolId.ESP, ours));
  return { response, ikeDeleted };
}
