/**
 * @ikegate/ikev2: RFC 7296 message codec (codec/) and exchange state machines (exchange/).
 * Named exports only.
 */
export * from './auth/index.js';
export * from './codec/index.js';
export { type Ikev2ErrorCode, LocalUsageError, RemoteProtocolError } from './errors.js';
