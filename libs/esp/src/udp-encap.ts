/**
 * UDP encapsulation of IKE and ESP on port 4500 (RFC 3948).
 *
 * RFC 3948 §2.1-2.3, what follows the UDP header on port 4500:
 *
 *   ESP:           | SPI (non-zero, 4) | Sequence Number (4) | ...     (§2.1)
 *   IKE:           | Non-ESP Marker: 0x00000000 (4) | IKE header ...  (§2.2)
 *   NAT-keepalive: | 0xFF (1) |                                        (§2.3)
 *
 * Decisions for what the RFC leaves open (every one is a drop with a reason, never a throw):
 * - a one-octet payload other than 0xFF: drop 'short' (it is neither a keepalive nor anything else);
 * - zero to three octets, or an ESP packet shorter than its 8-octet header: drop 'short';
 * - a non-ESP marker followed by fewer than 28 octets (an IKE header): drop 'short_ike';
 * - a non-zero SPI in 1..255 (reserved, RFC 4303 §2.1): drop 'reserved_spi'.
 * The IKE message and the ESP packet are returned as views of the datagram (no copies). Deeper
 * checks belong to the IKE codec and to decapsulate.
 */
import {
  ESP_HEADER_LENGTH,
  IKE_HEADER_LENGTH,
  NAT_KEEPALIVE_OCTET,
  NON_ESP_MARKER_LENGTH,
} from './constants.js';
import { LocalUsageError } from './errors.js';
import { readU32 } from './packet.js';

export type UdpEncapDropReason = 'short' | 'short_ike' | 'reserved_spi';

export type UdpPayloadClass =
  | { readonly kind: 'keepalive' }
  | { readonly kind: 'ike'; readonly message: Uint8Array }
  | { readonly kind: 'esp'; readonly packet: Uint8Array; readonly spi: number }
  | { readonly kind: 'drop'; readonly reason: UdpEncapDropReason };

const KEEPALIVE: UdpPayloadClass = Object.freeze({ kind: 'keepalive' });
const DROP_SHORT: UdpPayloadClass = Object.freeze({ kind: 'drop', reason: 'short' });
const DROP_SHORT_IKE: UdpPayloadClass = Object.freeze({ kind: 'drop', reason: 'short_ike' });
const DROP_RESERVED_SPI: UdpPayloadClass = Object.freeze({ kind: 'drop', reason: 'reserved_spi' });

/** Classifies a UDP payload received on port 4500. Never throws; views, no copies. */
export function classifyUdpPayload(payload: Uint8Array): UdpPayloadClass {
  const n = payload.length;
  if (n === 1) return payload[0] === NAT_KEEPALIVE_OCTET ? KEEPALIVE : DROP_SHORT;
  if (n < NON_ESP_MARKER_LENGTH) return DROP_SHORT;
  const spi = readU32(payload, 0);
  if (spi === 0) {
    if (n < NON_ESP_MARKER_LENGTH + IKE_HEADER_LENGTH) return DROP_SHORT_IKE;
    return { kind: 'ike', message: payload.subarray(NON_ESP_MARKER_LENGTH) };
  }
  if (n < ESP_HEADER_LENGTH) return DROP_SHORT;
  if (spi < 256) return DROP_RESERVED_SPI;
  return { kind: 'esp', packet: payload, spi };
}

/**
 * The UDP payload for an IKE message on port 4500: the 4-octet non-ESP marker, then the message.
 * Written into `out` (from offset 0) when given, else into a fresh array.
 * @throws LocalUsageError if `out` is too small or the message is empty.
 */
export function encodeNonEspMarker(ikeMessage: Uint8Array, out?: Uint8Array): Uint8Array {
  if (ikeMessage.length === 0)
    throw new LocalUsageError('IKEGATE_ERR_ESP_BAD_CONFIG', 'an IKE message cannot be empty');
  const length = NON_ESP_MARKER_LENGTH + ikeMessage.length;
  let dst: Uint8Array;
  if (out === undefined) dst = new Uint8Array(length);
  else {
    if (out.length < length)
      throw new LocalUsageError(
        'IKEGATE_ERR_ESP_OUT_TOO_SMALL',
        `out holds ${out.length} octets, need ${length}`,
      );
    dst = out.subarray(0, length);
    dst.fill(0, 0, NON_ESP_MARKER_LENGTH);
  }
  dst.set(ikeMessage, NON_ESP_MARKER_LENGTH);
  return dst;
}

/** A NAT-keepalive payload (RFC 3948 §2.3): one octet 0xFF. Fresh each call. Never sent on TCP. */
export function encodeNatKeepalive(): Uint8Array {
  return Uint8Array.of(NAT_KEEPALIVE_OCTET);
}
