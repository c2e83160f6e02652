/**
 * RFC 9329 wire constants.
 *
 *   Stream prefix (originator -> responder, once, §4):  "IKETCP" = 49 4B 45 54 43 50
 *
 *   Frame (§3):
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |             Length            |   Non-ESP Marker (IKE only)   |
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |  ... (zero)                   |   IKE header / ESP SPI ...    ~
 *
 *   Length (16 bits) counts itself. An IKE frame carries a 4-octet zero Non-ESP Marker, then the
 *   IKE message (RFC 7296 §3.1); an ESP frame carries the ESP packet, whose SPI is never zero.
 */
/** Read-only by convention: never write into it. */
export const IKETCP_PREFIX: Uint8Array = Uint8Array.from([0x49, 0x4b, 0x45, 0x54, 0x43, 0x50]);
export const PREFIX_LENGTH = 6;
export const LENGTH_FIELD_SIZE = 2;
export const NON_ESP_MARKER_SIZE = 4;
/** RFC 7296 §3.1 fixed header. */
export const IKE_HEADER_SIZE = 28;
/** Offset of the IKE header's own Length field. */
export const IKE_LENGTH_OFFSET = 24;
/** SPI + Sequence Number (RFC 4303 §2). */
export const ESP_MIN_SIZE = 8;
/** The Length field is 16 bits. */
export const MAX_FRAME_LENGTH = 0xffff;
/** RFC 3948 §2.3 NAT-keepalive octet; RFC 9329 §3 says not to send it on TCP. */
export const NAT_KEEPALIVE_OCTET = 0xff;
