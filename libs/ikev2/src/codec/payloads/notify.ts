/**
 * RFC 7296 §3.10 Notify and §3.11 Delete payloads.
 *
 * Notify:  | Protocol ID (8) | SPI Size (8) | Notify Message Type (16) | SPI ~ | Notification Data ~
 * Delete:  | Protocol ID (8) | SPI Size (8) | Num of SPIs (16)         | SPIs (Num × SPI Size) ~
 */
import { need, put16, syntax, u16 } from '../bytes.js';
import { PayloadType, ProtocolId } from '../constants.js';
import type { DeletePayload, NotifyPayload } from '../types.js';

export function decodeNotify(body: Uint8Array, critical: boolean): NotifyPayload {
  need(body, 4, 'Notify payload');
  const spiSize = body[1]!;
  need(body, 4 + spiSize, 'Notify SPI');
  return {
    type: PayloadType.NOTIFY,
    critical,
    protocolId: body[0]!,
    notifyType: u16(body, 2),
    spi: body.subarray(4, 4 + spiSize),
    data: body.subarray(4 + spiSize),
  };
}

export function encodeNotify(p: NotifyPayload): Uint8Array {
  const out = new Uint8Array(4 + p.spi.length + p.data.length);
  out[0] = p.protocolId;
  out[1] = p.spi.length;
  put16(out, 2, p.notifyType);
  out.set(p.spi, 4);
  out.set(p.data, 4 + p.spi.length);
  return out;
}

export function decodeDelete(body: Uint8Array, critical: boolean): DeletePayload {
  need(body, 4, 'Delete payload');
  const protocolId = body[0]!;
  const spiSize = body[1]!;
  const count = u16(body, 2);
  if (4 + spiSize * count !== body.length)
    throw syntax(`Delete: ${count} SPIs of ${spiSize} in ${body.length - 4} octets`);
  if (protocolId === ProtocolId.IKE && (spiSize !== 0 || count !== 0))
    throw syntax('IKE Delete carries no SPIs');
  if ((protocolId === ProtocolId.ESP || protocolId === ProtocolId.AH) && spiSize !== 4)
    throw syntax('ESP/AH Delete SPI size');
  const spis: Uint8Array[] = [];
  for (let i = 0; i < count; i++) spis.push(body.subarray(4 + i * spiSize, 4 + (i + 1) * spiSize));
  return { type: PayloadType.DELETE, critical, protocolId, spiSize, spis };
}

export function encodeDelete(p: DeletePayload): Uint8Array {
  const out = new Uint8Array(4 + p.spiSize * p.spis.length);
  out[0] = p.protocolId;
  out[1] = p.spiSize;
  put16(out, 2, p.spis.length);
  p.spis.forEach((s, i) => {
    out.set(s.subarray(0, p.spiSize), 4 + i * p.spiSize);
  });
  return out;
}
