/**
 * RFC 9329 frame encoders. The originator writes IKETCP_PREFIX once at the start of its stream;
 * the responder writes frames only. NAT-keepalives are never encoded: RFC 9329 §3 says not to
 * send them over TCP.
 *
 * Each encoder has an allocating form and an `...Into(out, offset)` form that writes into the
 * caller's buffer and returns the number of octets written (for batching writes to a socket).
 */
import { LENGTH_FIELD_SIZE, MAX_FRAME_LENGTH, NON_ESP_MARKER_SIZE } from './constants.js';
import { LocalUsageError } from './errors.js';

const IKE_OVERHEAD = LENGTH_FIELD_SIZE + NON_ESP_MARKER_SIZE;

function check(total: number, what: string): void {
  if (total > MAX_FRAME_LENGTH) {
    throw new LocalUsageError(
      'IKEGATE_ERR_IKETCP_TOO_LARGE_TO_SEND',
      `${what} of ${total - (what === 'IKE message' ? IKE_OVERHEAD : LENGTH_FIELD_SIZE)} octets does not fit a 16-bit frame`,
    );
  }
}

function room(out: Uint8Array, offset: number, total: number): void {
  if (offset < 0 || offset + total > out.length) {
    throw new LocalUsageError('IKEGATE_ERR_IKETCP_OUT_TOO_SMALL', `need ${total} octets at offset ${offset}`);
  }
}

/** Octets an IKE message of `length` octets takes on the stream. */
export function ikeFrameLength(length: number): number {
  return length + IKE_OVERHEAD;
}

/** Octets an ESP packet of `length` octets takes on the stream. */
export function espFrameLength(length: number): number {
  return length + LENGTH_FIELD_SIZE;
}

/** Length | zero Non-ESP Marker | IKE message. @throws LocalUsageError if it exceeds 65535. */
export function encodeIkeFrameInto(message: Uint8Array, out: Uint8Array, offset = 0): number {
  const total = ikeFrameLength(message.length);
  check(total, 'IKE message');
  room(out, offset, total);
  out[offset] = total >>> 8;
  out[offset + 1] = total & 0xff;
  out.fill(0, offset + 2, offset + IKE_OVERHEAD);
  out.set(message, offset + IKE_OVERHEAD);
  return total;
}

export function encodeIkeFrame(message: Uint8Array): Uint8Array {
  const out = new Uint8Array(ikeFrameLength(message.length));
  encodeIkeFrameInto(message, out, 0);
  return out;
}

/**
 * Length | ESP packet. The packet must start with its non-zero SPI (a zero SPI would read as a
 * Non-ESP Marker on the other side).
 * @throws LocalUsageError if it exceeds 65535 octets, or is shorter than SPI|SN, or has SPI 0.
 */
export function encodeEspFrameInto(packet: Uint8Array, out: Uint8Array, offset = 0): number {
  const total = espFrameLength(packet.length);
  check(total, 'ESP packet');
  if (packet.length < 8 || (packet[0]! | packet[1]! | packet[2]! | packet[3]!) === 0) {
    throw new LocalUsageError(
      'IKEGATE_ERR_IKETCP_BAD_ESP_PACKET',
      'an ESP packet needs a non-zero SPI and SN',
    );
  }
  room(out, offset, total);
  out[offset] = total >>> 8;
  out[offset + 1] = total & 0xff;
  out.set(packet, offset + LENGTH_FIELD_SIZE);
  return total;
}

export function encodeEspFrame(packet: Uint8Array): Uint8Array {
  const out = new Uint8Array(espFrameLength(packet.length));
  encodeEspFrameInto(packet, out, 0);
  return out;
}
