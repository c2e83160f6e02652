/**
 * @ikegate/ikev2: RFC 7296 message codec (codec/), AUTH computation (auth/), negotiation
 * (negotiation/), the exchange tasks (exchange/), one IKE SA with its task manager (sa/) and the
 * endpoint that holds them all (endpoint/). Named exports only.
 */
export * from './auth/index.js';
export * from './codec/index.js';
export { type Ikev2ErrorCode, LocalUsageError, RemoteProtocolError } from './errors.js';
export * from './endpoint/index.js';
export * from './exchange/index.js';
export * from './negotiation/index.js';
export * from './sa/index.js';
