export { type RunTcpShimOptions, parseTcpShimArgs, runTcpShim, TCP_SHIM_USAGE } from './cli.js';
export { LocalUsageError, type TcpShimErrorCode } from './errors.js';
export { SHIM_EVENTS, type ShimDropReason, type ShimEvent } from './events.js';
export { TcpShim, type TcpShimCounters, type TcpShimOptions, type TcpShimTlsOptions } from './shim.js';
