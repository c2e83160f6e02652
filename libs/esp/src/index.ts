export {
  DEFAULT_REPLAY_WINDOW,
  ESP_HEADER_LENGTH,
  ESP_MAX_PADDING,
  ESP_SEQUENCE_OFFSET,
  ESP_SPI_OFFSET,
  ESP_TRAILER_LENGTH,
  IKE_HEADER_LENGTH,
  MAX_REPLAY_WINDOW,
  NAT_KEEPALIVE_OCTET,
  NAT_T_PORT,
  NextHeader,
  NON_ESP_MARKER_LENGTH,
} from './constants.js';
export { type EspErrorCode, LocalUsageError, RemoteProtocolError } from './errors.js';
export {
  type DecapsulateResult,
  ESP_DROP_REASONS,
  type EspDropReason,
  InboundSa,
  type InboundSaConfig,
} from './inbound.js';
export {
  type EncapsulateResult,
  type IvSource,
  OutboundSa,
  type OutboundSaConfig,
  skipTarget,
} from './outbound.js';
export { peekSequence, peekSpi } from './packet.js';
export { ReplayWindow } from './replay.js';
export {
  type EspShape,
  espShape,
  type EspSuite,
  type EspTransformIds,
  espSuite,
  minimumEspLength,
} from './suite.js';
export {
  classifyUdpPayload,
  encodeNatKeepalive,
  encodeNonEspMarker,
  type UdpEncapDropReason,
  type UdpPayloadClass,
} from './udp-encap.js';
