/**
 * Errors of @ikegate/ikev2 (STYLE.md rule 6).
 *
 * RemoteProtocolError: the peer sent something that breaks RFC 7296 or a companion. It carries the
 * Notify error type to answer with (RFC 7296 §3.10.1), or `undefined` when the RFCs say to drop
 * the message silently (e.g. an ICV failure, §2.21.1 / §3.14). Anything else thrown by a parser
 * is a bug, and the fuzz tests treat it so.
 *
 * LocalUsageError: our own caller misused the API (wrong state, impossible configuration).
 */
import { NotifyError } from './codec/constants.js';

export type Ikev2ErrorCode =
  | 'IKEGATE_ERR_IKEV2_TRUNCATED'
  | 'IKEGATE_ERR_IKEV2_BAD_LENGTH'
  | 'IKEGATE_ERR_IKEV2_BAD_VERSION'
  | 'IKEGATE_ERR_IKEV2_BAD_VALUE'
  | 'IKEGATE_ERR_IKEV2_UNSUPPORTED_CRITICAL'
  | 'IKEGATE_ERR_IKEV2_INTEGRITY'
  | 'IKEGATE_ERR_IKEV2_BAD_PADDING'
  | 'IKEGATE_ERR_IKEV2_FRAGMENT'
  | 'IKEGATE_ERR_IKEV2_MISSING_PAYLOAD'
  | 'IKEGATE_ERR_IKEV2_UNEXPECTED_PAYLOAD'
  | 'IKEGATE_ERR_IKEV2_NO_PROPOSAL'
  | 'IKEGATE_ERR_IKEV2_INVALID_KE'
  | 'IKEGATE_ERR_IKEV2_AUTH_FAILED'
  | 'IKEGATE_ERR_IKEV2_TS_UNACCEPTABLE'
  | 'IKEGATE_ERR_IKEV2_BAD_MESSAGE_ID'
  | 'IKEGATE_ERR_IKEV2_BAD_STATE'
  | 'IKEGATE_ERR_IKEV2_CONFIG'
  | 'IKEGATE_ERR_IKEV2_CRYPTO';

export class RemoteProtocolError extends Error {
  override readonly name = 'RemoteProtocolError';
  /**
   * @param notify Notify error type to answer with, or undefined to drop silently.
   * @param notifyData Notification Data for the answer (e.g. the payload type for
   *   UNSUPPORTED_CRITICAL_PAYLOAD, the accepted group for INVALID_KE_PAYLOAD).
   */
  constructor(
    readonly code: Ikev2ErrorCode,
    message: string,
    readonly notify: number | undefined = NotifyError.INVALID_SYNTAX,
    readonly notifyData: Uint8Array = new Uint8Array(0),
  ) {
    super(message);
  }
}

export class LocalUsageError extends Error {
  override readonly name = 'LocalUsageError';
  constructor(
    readonly code: Ikev2ErrorCode,
    message: string,
  ) {
    super(message);
  }
}
