export {
  DEFAULT_MAX_QUEUE,
  INITIAL_CREDIT,
  MAX_BATCH,
  qualify,
  RELAY_FLOW_CONTROL_WINDOW,
  RelayClient,
  type RelayClientOptions,
  RelayServer,
  type RelayServerOptions,
  type RelayTls,
  relayCertificateName,
  workerNameAdmits,
  unqualify,
} from './relay.js';
export {
  type EdgeMessage,
  frameFromWire,
  frameToWire,
  outboundFrameFromWire,
  PROTO_PATH,
  relayDefinition,
  relayService,
  type WireFrame,
  type WorkerMessage,
} from './wire.js';
export {
  decodeEdgeMessage,
  decodeWorkerMessage,
  encodeEdgeMessage,
  encodeWorkerMessage,
  RelayCodecError,
} from './codec.js';
