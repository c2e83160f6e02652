export {
  ESP_MIN_SIZE,
  IKE_HEADER_SIZE,
  IKETCP_PREFIX,
  LENGTH_FIELD_SIZE,
  MAX_FRAME_LENGTH,
  NAT_KEEPALIVE_OCTET,
  NON_ESP_MARKER_SIZE,
  PREFIX_LENGTH,
} from './constants.js';
export {
  type EspFrameOutcome,
  type IkeFrameOutcome,
  type StreamAction,
  streamActionForEsp,
  streamActionForIke,
} from './decisions.js';
export {
  type CloseReason,
  type DecoderCounters,
  type DecoderOptions,
  type DecoderState,
  type DropReason,
  IketcpDecoder,
  type IketcpEvent,
} from './decoder.js';
export {
  encodeEspFrame,
  encodeEspFrameInto,
  encodeIkeFrame,
  encodeIkeFrameInto,
  espFrameLength,
  ikeFrameLength,
} from './encoder.js';
export { type IketcpErrorCode, LocalUsageError, RemoteProtocolError } from './errors.js';
