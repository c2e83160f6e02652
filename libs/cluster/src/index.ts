export { type ClusterErrorCode, LocalUsageError } from './errors.js';
export { placeShards } from './placement.js';
export {
  initialRequestShard,
  normalizePeerAddress,
  type RouteDecision,
  routeEspPacket,
  routeIkeMessage,
} from './routing.js';
export {
  checkLayout,
  DEFAULT_SHARD_BITS,
  espSpiShard,
  IKE_SPI_LENGTH,
  ikeSpiShard,
  MIN_ESP_SPI,
  type RandomBytes,
  makeEspSpi,
  makeIkeSpi,
  type ShardLayout,
  ShardSpiAllocator,
  shardCount,
} from './spi.js';
export type {
  EdgeLink,
  FrameEndpoint,
  InboundFrame,
  OutboundFrame,
  PeerPath,
  PeerTransport,
  SendResult,
  WorkerLink,
} from './frames.js';
