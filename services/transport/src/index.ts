export type {
  AcceptedStream,
  DatagramBind,
  DatagramReceiver,
  Endpoint,
  ResponderBinds,
  StreamAcceptor,
  StreamListener,
  StreamTransport,
} from './binds.js';
export { type DialOptions, dialStream, type DialTlsOptions } from './dial.js';
export {
  DEFAULT_UDP_RECEIVE_BUFFER,
  dropsInTable,
  procUdpLocal,
  type UdpSocketStats,
  udpSocketDrops,
} from './udp-socket-stats.js';
export { DialError, LocalUsageError, type TransportErrorCode } from './errors.js';
export { nativeUdpFor, UDP_RECEIVE_ENV, type UdpReceivePath } from './native-udp.js';
export {
  NodeTcpListener,
  NodeTlsListener,
  type NodeTlsListenerOptions,
  NodeUdpBind,
  numericLookup,
} from './node-binds.js';
export {
  IKETCP_STREAM_DEFAULTS,
  type IketcpCloseOrigin,
  type IketcpCloseReason,
  type IketcpRole,
  type IketcpSendResult,
  IketcpStream,
  type IketcpStreamDropReason,
  type IketcpStreamEvent,
  type IketcpStreamOptions,
  type IketcpStreamState,
} from './stream.js';
