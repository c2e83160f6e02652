/**
 * RFC 7296 §3.10 Notify payload.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * | Next Payload  |C|  RESERVED   |         Payload Length        |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Protocol ID  |   SPI Size    |      Notify Message Type      |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                Security Parameter Index (SPI)                 ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * ~                       Notification Data                       ~
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Notification Data stays opaque here; the typed layouts are in ../notify-data.ts.
 */
import { need, put16, u16 } from '../bytes.js';
import { PayloadType, ProtocolId } from '../constants.js';
import type { NotifyPayload } from '../types.js';

/** Protocol ID (1) + SPI Size (1) + Notify Message Type (2). */
export const NOTIFY_FIELDS_LENGTH = 4;
const CHILD_SPI_LENGTH = 4;

export function decodeNotify(body: Uint8Array, critical: boolean): NotifyPayload {
  need(body, NOTIFY_FIELDS_LENGTH, 'Notify payload');
  const spiSize = body[1]!;
  need(body, NOTIFY_FIELDS_LENGTH + spiSize, 'Notify SPI');
  return {
    type: PayloadType.NOTIFY,
    critical,
    protocolId: body[0]!,
    notifyType: u16(body, 2),
    spi: body.subarray(NOTIFY_FIELDS_LENGTH, NOTIFY_FIELDS_LENGTH + spiSize),
    data: body.subarray(NOTIFY_FIELDS_LENGTH + spiSize),
  };
}

/**
 * §3.10: a notification about the IKE SA has SPI Size 0; one about a Child SA names it by its
 * 4-octet ESP/AH SPI. (An empty SPI is always allowed: most notifies concern no particular SA.)
 */
export function verifyNotify(p: NotifyPayload): string | undefined {
  if (p.spi.length === 0) return undefined;
  if (
    (p.protocolId === ProtocolId.ESP || p.protocolId === ProtocolId.AH) &&
    p.spi.length === CHILD_SPI_LENGTH
  )
    return undefined;
  return `Notify ${p.notifyType}: SPI of ${p.spi.length} octets for protocol ${p.protocolId}`;
}

export function encodeNotify(p: NotifyPayload): Uint8Array {
  const out = new Uint8Array(NOTIFY_FIELDS_LENGTH + p.spi.length + p.data.length);
  out[0] = p.protocolId;
  out[1] = p.spi.length;
  put16(out, 2, p.notifyType);
  out.set(p.spi, NOTIFY_FIELDS_LENGTH);
  out.set(p.data, NOTIFY_FIELDS_LENGTH + p.spi.length);
  return out;
}
