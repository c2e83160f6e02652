/**
 * Log event names of the shim, in one place (STYLE.md rule 13; there is no libs/telemetry yet, so
 * they live here and move there when it exists). Each is reported through `TcpShimOptions.logger`.
 */
export const SHIM_EVENTS = [
  /** Both UDP sockets are bound. fields: address, ikePort, natTPort */
  'listening',
  /** A stream to the responder is being opened. fields: daemon, upstream, tls, reconnect */
  'upstream_connecting',
  /** The stream is up and the IKETCP prefix was written. fields: daemon, local, flushedFrames */
  'upstream_connected',
  /**
   * The stream closed (FIN, reset, error, a failed dial or our own close). fields: daemon, hadError,
   * opened, droppedQueued, discarded (octets of a partial frame), reason (IketcpStream's close reason,
   * e.g. peer_closed, reset, bad_length, ike_output_overflow, or the dial's: timeout, ECONNREFUSED)
   */
  'upstream_closed',
  /** A socket or TLS error on the stream; never fatal. fields: daemon, error, code */
  'upstream_error',
  /** The connect (and TLS handshake) did not finish in time. fields: daemon, timeoutMs */
  'upstream_connect_timeout',
  /** The responder's stream broke RFC 9329 framing; it is closed. fields: daemon, reason */
  'upstream_protocol_error',
  /** A UDP socket error; never fatal. fields: socket, error */
  'udp_error',
  /** The keylog file could not be written. fields: file, error */
  'keylog_error',
  /** close() finished. fields: counters */
  'closed',
] as const;

export type ShimEvent = (typeof SHIM_EVENTS)[number];

/** Reasons counted in `counters.dropsByReason`. */
export type ShimDropReason =
  | 'udp_short'
  | 'udp_short_ike'
  | 'udp_reserved_spi'
  | 'too_large'
  | 'queue_overflow'
  | 'backpressure'
  | 'upstream_holdoff'
  | 'upstream_closed'
  | 'upstream_keepalive'
  | 'upstream_short_frame'
  | 'upstream_short_ike'
  | 'upstream_ike_length_mismatch'
  | 'upstream_short_esp'
  | 'no_daemon'
  | 'no_natt_port'
  | 'udp_send_error';
