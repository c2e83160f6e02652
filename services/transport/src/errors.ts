/**
 * Errors of @ikegate/transport (STYLE.md rule 6). Nothing a peer sends makes this package throw:
 * bad input is a drop or a close event with a reason. These classes are for a dial that did not
 * connect (the caller asked for a connection it did not get) and for API misuse.
 */
export type TransportErrorCode =
  /** TCP connect plus TLS handshake did not finish within the dial's `timeoutMs`. */
  | 'IKEGATE_ERR_TRANSPORT_DIAL_TIMEOUT'
  /** The connect or the TLS handshake failed; `reason` has the OS or TLS error code. */
  | 'IKEGATE_ERR_TRANSPORT_DIAL_FAILED'
  /** The dial's AbortSignal fired first. */
  | 'IKEGATE_ERR_TRANSPORT_DIAL_ABORTED'
  /** An option out of range (a cap, a timeout). */
  | 'IKEGATE_ERR_TRANSPORT_BAD_OPTION'
  /** A bind or listener used in the wrong order (open twice, send before open). */
  | 'IKEGATE_ERR_TRANSPORT_USAGE';

export class DialError extends Error {
  override readonly name = 'DialError';
  constructor(
    readonly code: Extract<
      TransportErrorCode,
      | 'IKEGATE_ERR_TRANSPORT_DIAL_TIMEOUT'
      | 'IKEGATE_ERR_TRANSPORT_DIAL_FAILED'
      | 'IKEGATE_ERR_TRANSPORT_DIAL_ABORTED'
    >,
    /**
     * A short label for logs and metric labels: 'timeout', 'aborted', or the underlying error's
     * code ('ECONNREFUSED', 'DEPTH_ZERO_SELF_SIGNED_CERT', ...), 'error' when it has none.
     */
    readonly reason: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: Extract<
      TransportErrorCode,
      'IKEGATE_ERR_TRANSPORT_BAD_OPTION' | 'IKEGATE_ERR_TRANSPORT_USAGE'
    >,
    message: string,
  ) {
    super(message);
  }
}
