/**
 * Errors of @ikegate/iketcp (STYLE.md rule 6). The decoder never throws for bad input from the
 * network: it reports drops and close decisions as events. These classes are for API misuse, and
 * RemoteProtocolError exists for callers that want to turn a close decision into an exception.
 */
export type IketcpErrorCode =
  | 'IKEGATE_ERR_IKETCP_BAD_PREFIX'
  | 'IKEGATE_ERR_IKETCP_BAD_LENGTH'
  | 'IKEGATE_ERR_IKETCP_FRAME_TOO_LARGE'
  | 'IKEGATE_ERR_IKETCP_GARBAGE'
  | 'IKEGATE_ERR_IKETCP_PENDING_EVENTS'
  | 'IKEGATE_ERR_IKETCP_CLOSED'
  | 'IKEGATE_ERR_IKETCP_TOO_LARGE_TO_SEND'
  | 'IKEGATE_ERR_IKETCP_BAD_ESP_PACKET'
  | 'IKEGATE_ERR_IKETCP_BAD_OPTION'
  | 'IKEGATE_ERR_IKETCP_OUT_TOO_SMALL';

export class RemoteProtocolError extends Error {
  override readonly name = 'RemoteProtocolError';
  constructor(
    readonly code: IketcpErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: IketcpErrorCode,
    message: string,
  ) {
    super(message);
  }
}
