/**
 * In-memory fakes of the binds, for unit tests only (STYLE.md rule 8). A separate entry point,
 * `@ikegate/transport/testing`, as wireguard-go keeps its fake binds in their own package
 * (conn/bindtest): production code importing `@ikegate/transport` never loads them.
 */
export { testCertificate } from './certificate.js';
export {
  MemoryDatagramBind,
  type MemoryResponderBinds,
  memoryResponderBinds,
  MemoryStreamListener,
  MemoryStreamPeer,
  type SentDatagram,
} from './memory-binds.js';
export { MemoryDuplex } from './memory-duplex.js';
