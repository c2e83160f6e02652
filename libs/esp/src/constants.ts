/**
 * Wire sizes and numbers of ESP (RFC 4303) and its UDP encapsulation (RFC 3948).
 *
 * RFC 4303 §2, top-level format of an ESP packet:
 *
 *     0                   1                   2                   3
 *     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ----
 *    |               Security Parameters Index (SPI)                 | ^Int.
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
 *    |                      Sequence Number                          | |ered
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ | ----
 *    |                    Payload Data* (variable)                   | |   ^
 *    ~                                                               ~ |   |
 *    |                                                               | |Conf.
 *    +               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |Cov-
 *    |               |     Padding (0-255 bytes)                     | |ered*
 *    +-+-+-+-+-+-+-+-+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ |   |
 *    |                               |  Pad Length   | Next Header   | v   v
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+ ------
 *    |         Integrity Check Value-ICV   (variable)                |
 *    ~                                                               ~
 *    +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *
 * Payload Data starts with the explicit IV (8 octets for AES-GCM and ChaCha20-Poly1305, RFC 4106
 * §3.1 / RFC 7634 §2; 16 for AES-CBC, RFC 3602 §3).
 */

/** SPI (4) + Sequence Number (4). */
export const ESP_HEADER_LENGTH = 8;
export const ESP_SPI_OFFSET = 0;
export const ESP_SEQUENCE_OFFSET = 4;
/** Pad Length (1) + Next Header (1). */
export const ESP_TRAILER_LENGTH = 2;
/** RFC 4303 §2.4: at most 255 octets of padding. */
export const ESP_MAX_PADDING = 255;

/** Next Header values ESP tunnel mode carries (IANA protocol numbers). */
export const NextHeader = {
  /** IPv4-in-ESP (tunnel mode). */
  IPV4: 4,
  /** IPv6-in-ESP (tunnel mode). */
  IPV6: 41,
  /** RFC 4303 §2.6: a dummy packet for traffic flow confidentiality; the receiver discards it. */
  NO_NEXT_HEADER: 59,
} as const;

/** Anti-replay window defaults and limits (RFC 4303 §3.4.3: 32 minimum, 64 recommended default). */
export const DEFAULT_REPLAY_WINDOW = 64;
/** Largest window this implementation keeps (a 8 KiB bitmap per SA). */
export const MAX_REPLAY_WINDOW = 65_536;

/** RFC 3948 §2: IKE and ESP-in-UDP share this port. */
export const NAT_T_PORT = 4500;
/** RFC 3948 §2.2: four zero octets that precede an IKE message on port 4500. */
export const NON_ESP_MARKER_LENGTH = 4;
/** RFC 3948 §2.3: a NAT-keepalive is one octet, 0xFF. */
export const NAT_KEEPALIVE_OCTET = 0xff;
/** RFC 7296 §3.1: fixed IKE header. */
export const IKE_HEADER_LENGTH = 28;
