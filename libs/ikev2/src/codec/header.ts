/**
 * RFC 7296 §3.1 IKE header.
 *
 *                      1                   2                   3
 *  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Initiator's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                       IKE SA Responder's SPI                  |
 * |                                                               |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                          Message ID                           |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 * |                            Length                             |
 * +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * A header that cannot be read is dropped silently (notify undefined): there is no SA to answer
 * from. A major version other than 2 gets INVALID_MAJOR_VERSION (§1.5).
 */
import { RemoteProtocolError } from '../errors.js';
import { put32, u32 } from './bytes.js';
import { IKE_HEADER_LENGTH, IKE_MAJOR_VERSION, NotifyError } from './constants.js';
import type { IkeHeader } from './types.js';

/** Upper bound for one IKE message: the largest UDP payload / RFC 9329 frame. */
export const MAX_MESSAGE_LENGTH = 65535;

export interface MessageHeaderFields {
  readonly initiatorSpi: Uint8Array;
  readonly responderSpi: Uint8Array;
  readonly exchangeType: number;
  readonly flags: number;
  readonly messageId: number;
}

export function decodeHeader(buf: Uint8Array): IkeHeader {
  if (buf.length < IKE_HEADER_LENGTH) {
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_TRUNCATED',
      `message of ${buf.length} octets`,
      undefined,
    );
  }
  const version = buf[17]!;
  const header: IkeHeader = {
    initiatorSpi: buf.subarray(0, 8),
    responderSpi: buf.subarray(8, 16),
    nextPayload: buf[16]!,
    majorVersion: version >>> 4,
    minorVersion: version & 0x0f,
    exchangeType: buf[18]!,
    flags: buf[19]!,
    messageId: u32(buf, 20),
    length: u32(buf, 24),
  };
  if (header.majorVersion !== IKE_MAJOR_VERSION) {
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_VERSION',
      `major version ${header.majorVersion}`,
      NotifyError.INVALID_MAJOR_VERSION,
    );
  }
  if (header.length !== buf.length) {
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_LENGTH',
      `header says ${header.length} octets, message has ${buf.length}`,
      undefined,
    );
  }
  return header;
}

/** Writes a header with the given Next Payload and total Length into out[0..28). */
export function writeHeader(
  out: Uint8Array,
  h: MessageHeaderFields,
  nextPayload: number,
  length: number,
): void {
  out.set(h.initiatorSpi.subarray(0, 8), 0);
  out.set(h.responderSpi.subarray(0, 8), 8);
  out[16] = nextPayload;
  out[17] = IKE_MAJOR_VERSION << 4;
  out[18] = h.exchangeType;
  out[19] = h.flags;
  put32(out, 20, h.messageId);
  put32(out, 24, length);
}
