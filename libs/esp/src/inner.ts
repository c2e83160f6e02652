/**
 * Minimal checks of the inner packet that tunnel mode carries (RFC 4303 §2: Next Header 4 or 41).
 * Only what keeps a broken packet out of the tunnel or off the TUN device: the version nibble and
 * a length field consistent with the buffer. Checksums and options are the stack's business.
 *
 * IPv4 (RFC 791 §3.1): version 4, IHL >= 5, IHL*4 <= Total Length.
 * IPv6 (RFC 8200 §3): version 6, 40-octet header + Payload Length (jumbograms, Payload Length 0
 * with a Hop-by-Hop jumbo option, are refused: they cannot fit a 65535-octet ESP payload anyway).
 */
import { NextHeader } from './constants.js';

export const IPV4_MIN_HEADER_LENGTH = 20;
export const IPV6_HEADER_LENGTH = 40;

/**
 * Length of the IP packet at the start of `b` as its header states it, or -1 if the header is
 * broken or claims more than `b` holds. The Next Header that carries it is returned through the
 * version nibble: 4 -> NextHeader.IPV4, 6 -> NextHeader.IPV6.
 */
export function innerPacketLength(b: Uint8Array, length: number): number {
  if (length < 1) return -1;
  const version = b[0]! >>> 4;
  if (version === 4) {
    if (length < IPV4_MIN_HEADER_LENGTH) return -1;
    const ihl = (b[0]! & 0x0f) * 4;
    const total = (b[2]! << 8) | b[3]!;
    if (ihl < IPV4_MIN_HEADER_LENGTH || total < ihl || total > length) return -1;
    return total;
  }
  if (version === 6) {
    if (length < IPV6_HEADER_LENGTH) return -1;
    const payload = (b[4]! << 8) | b[5]!;
    if (payload === 0) return length === IPV6_HEADER_LENGTH ? IPV6_HEADER_LENGTH : -1;
    const total = IPV6_HEADER_LENGTH + payload;
    if (total > length) return -1;
    return total;
  }
  return -1;
}

/** The Next Header value for the inner packet's version nibble (0 when it is neither 4 nor 6). */
export function nextHeaderForVersion(firstOctet: number): number {
  const version = firstOctet >>> 4;
  return version === 4 ? NextHeader.IPV4 : version === 6 ? NextHeader.IPV6 : 0;
}
