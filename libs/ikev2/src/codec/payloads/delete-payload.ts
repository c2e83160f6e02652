/**
 * RFC 7296 §3.11 Delete payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Protocol ID   |   SPI Size    |          Num of SPIs          |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~               Security Parameter Index(es) (SPI)              ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * An IKE SA delete has SPI Size 0 and no SPIs; ESP/AH deletes have 4-octet SPIs. The count times
 * the size must fill the payload exactly, so the SPI list is bounded by the payload length.
 * (The SPI sizes are checked while decoding because the layout depends on them.)
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType, ProtocolId } from '../constants.js';
import type { DeletePayload } from '../types.js';

/** Protocol ID (1) + SPI Size (1) + Num of SPIs (2). */
export const DELETE_FIELDS_LENGTH = 4;
const CHILD_SPI_LENGTH = 4;

export function decodeDelete(body: Uint8Array, critical: boolean): DeletePayload {
  need(body, DELETE_FIELDS_LENGTH, 'Delete payload');
  const protocolId = body[0]!;
  const spiSize = body[1]!;
  const count = u16(body, 2);
  if (DELETE_FIELDS_LENGTH + spiSize * count !== body.length)
    throw syntax(`Delete: ${count} SPIs of ${spiSize} in ${body.length - DELETE_FIELDS_LENGTH} octets`);
  if (protocolId === ProtocolId.IKE && (spiSize !== 0 || count !== 0))
    throw syntax('IKE Delete carries no SPIs');
  if ((protocolId === ProtocolId.ESP || protocolId === ProtocolId.AH) && spiSize !== CHILD_SPI_LENGTH)
    throw syntax('ESP/AH Delete SPI size');
  if (protocolId !== ProtocolId.IKE && protocolId !== ProtocolId.ESP && protocolId !== ProtocolId.AH)
    throw syntax(`Delete for protocol ${protocolId}`);
  const spis: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const at = DELETE_FIELDS_LENGTH + i * spiSize;
    spis.push(body.subarray(at, at + spiSize));
  }
  return { type: PayloadType.DELETE, critical, protocolId, spiSize, spis };
}

export function encodeDelete(p: DeletePayload): Uint8Array {
  const out = new Uint8Array(DELETE_FIELDS_LENGTH + p.spiSize * p.spis.length);
  out[0] = p.protocolId;
  out[1] = p.spiSize;
  put16(out, 2, p.spis.length);
  p.spis.forEach((s, i) => {
    out.set(s.subarray(0, p.spiSize), DELETE_FIELDS_LENGTH + i * p.spiSize);
  });
  return out;
}
