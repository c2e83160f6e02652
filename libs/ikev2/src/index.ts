/**
 * @ikegate/ikev2: RFC 7296 message codec (codec/), AUTH computation (auth/) and the IKE SA state
 * machine for both roles (exchange/). Named exports only.
 */
export * from './auth/index.js';
export * from './codec/index.js';
export { type Ikev2ErrorCode, LocalUsageError, RemoteProtocolError } from './errors.js';
export * from './exchange/index.js';
export * from './negotiation/index.js';
