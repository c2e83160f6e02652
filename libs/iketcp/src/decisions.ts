/**
 * What a stream does after a frame was handed up (RFC 9329 and PROTOCOL.md). The decoder decides
 * what it can see (framing); these rules need knowledge of SAs, so services apply them, and this
 * table keeps every service on the same rule.
 */

/** Outcome of processing an ESP frame above the decoder. */
export type EspFrameOutcome =
  | 'delivered'
  /** No SA has this SPI: drop the packet, keep the connection (RFC 9329 §3). */
  | 'unknown_spi'
  /** A known SA's ICV failed: the stream is not trustworthy; close it (PROTOCOL.md). */
  | 'auth_failed'
  /** Replay, bad padding, dummy packet, etc.: drop the packet, keep the connection. */
  | 'dropped';

/** Outcome of processing an IKE frame above the decoder. */
export type IkeFrameOutcome =
  | 'delivered'
  /** Unknown IKE SPI, failed integrity, retransmission: drop silently (RFC 7296 §2.21). */
  | 'dropped'
  /**
   * Syntax error inside an authenticated IKE message: the IKE SA is torn down with
   * INVALID_SYNTAX, but the TCP connection stays (PROTOCOL.md: "not the connection").
   */
  | 'invalid_syntax';

export type StreamAction = 'keep' | 'close';

export function streamActionForEsp(outcome: EspFrameOutcome): StreamAction {
  return outcome === 'auth_failed' ? 'close' : 'keep';
}

export function streamActionForIke(_outcome: IkeFrameOutcome): StreamAction {
  return 'keep';
}
