/**
 * What `ikegate ctl` can fail with, one class per exit status, each with a stable `code`:
 *
 *   CtlUsageError     2  the command line is wrong (the usage follows the message)
 *   CtlInputError     2  a file the command line names cannot be read or parsed
 *   CtlApiError       1  the API answered 4xx/5xx (a problem document) or something unusable
 *   CtlConnectError   3  no answer: cannot connect, TLS refused, connection lost, timed out
 *
 * No message of these carries a token or a PSK: they name token sources and files, never contents.
 */

/** RFC 9457 problem details as the control API sends them (services/control/src/problem.ts). */
export interface Problem {
  readonly type?: string;
  readonly title?: string;
  readonly status: number;
  readonly detail?: string;
  readonly instance?: string;
  readonly errors?: readonly { readonly in: string; readonly field: string; readonly message: string }[];
  readonly holders?: readonly {
    readonly address: string;
    readonly spi: string;
    readonly peerId?: string;
    readonly peer?: string;
    readonly worker?: string;
  }[];
  readonly peers?: readonly string[];
}

export const EXIT_OK = 0;
export const EXIT_API = 1;
export const EXIT_USAGE = 2;
export const EXIT_CONNECT = 3;

export class CtlUsageError extends Error {
  readonly code = 'IKEGATE_ERR_CTL_USAGE';
  override readonly name = 'CtlUsageError';
}

export class CtlInputError extends Error {
  readonly code = 'IKEGATE_ERR_CTL_INPUT';
  override readonly name = 'CtlInputError';
}

export class CtlApiError extends Error {
  readonly code = 'IKEGATE_ERR_CTL_API';
  override readonly name = 'CtlApiError';
  /** The problem document, or one made from the status line when the body was not one. */
  readonly problem: Problem;
  constructor(problem: Problem) {
    super(`${problem.status} ${problem.title ?? ''}`.trim());
    this.problem = problem;
  }
}

export class CtlConnectError extends Error {
  readonly code = 'IKEGATE_ERR_CTL_CONNECT';
  override readonly name = 'CtlConnectError';
  /** The system or TLS error code (ECONNREFUSED, CERT_HAS_EXPIRED, ...), or 'TIMEOUT'. */
  readonly reason: string;
  constructor(message: string, reason: string) {
    super(message);
    this.reason = reason;
  }
}
