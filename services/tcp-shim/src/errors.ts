/**
 * Errors of @ikegate/tcp-shim (STYLE.md rule 6). Nothing the network sends makes the shim throw:
 * bad datagrams and frames are dropped and counted, upstream failures are logged. These classes
 * are for configuration and command-line mistakes.
 */
export type TcpShimErrorCode = 'IKEGATE_ERR_TCP_SHIM_USAGE' | 'IKEGATE_ERR_TCP_SHIM_BAD_OPTION';

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: TcpShimErrorCode,
    message: string,
  ) {
    super(message);
  }
}
