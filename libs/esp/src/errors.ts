/**
 * Errors of @ikegate/esp (STYLE.md rule 6).
 *
 * The per-packet path (`encapsulate`, `decapsulate`, `classifyUdpPayload`) never throws for a bad
 * packet: it returns a drop result with a reason label (STYLE.md rule 7). These classes exist for
 * the rest:
 *
 * RemoteProtocolError: the peer's configuration is unusable (e.g. key material of the wrong length
 * taken from a negotiated SA). Not raised on the per-packet path.
 *
 * LocalUsageError: our own caller misused the API (an out buffer that is too small, an unsupported
 * algorithm, a window size out of range, a CBC suite without a random source).
 */
export type EspErrorCode =
  | 'IKEGATE_ERR_ESP_BAD_CONFIG'
  | 'IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM'
  | 'IKEGATE_ERR_ESP_BAD_KEY_LENGTH'
  | 'IKEGATE_ERR_ESP_OUT_TOO_SMALL'
  | 'IKEGATE_ERR_ESP_BAD_SEQUENCE';

export class RemoteProtocolError extends Error {
  override readonly name = 'RemoteProtocolError';
  constructor(
    readonly code: EspErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: EspErrorCode,
    message: string,
  ) {
    super(message);
  }
}
