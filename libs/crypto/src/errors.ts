/**
 * Errors of @ikegate/crypto. Two families (STYLE.md rule 6): RemoteProtocolError, the peer sent
 * something invalid (a bad KE value); LocalUsageError, our caller misused the API.
 */
export type CryptoErrorCode =
  | 'IKEGATE_ERR_CRYPTO_BAD_KE_DATA'
  | 'IKEGATE_ERR_CRYPTO_BAD_SIGNATURE_INPUT'
  | 'IKEGATE_ERR_CRYPTO_BAD_KEY_LENGTH'
  | 'IKEGATE_ERR_CRYPTO_BAD_LENGTH'
  | 'IKEGATE_ERR_CRYPTO_UNSUPPORTED'
  /** The injected RandomBytes returned the wrong length, or never produced a usable scalar. */
  | 'IKEGATE_ERR_CRYPTO_BAD_RANDOM';

export class RemoteProtocolError extends Error {
  override readonly name = 'RemoteProtocolError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
  }
}
