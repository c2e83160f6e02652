export { decodePayloadChain, encodePayloads, MAX_PAYLOADS_PER_CHAIN } from './chain.js';
export * from './constants.js';
export { FragmentReassembler, encodeProtectedFragments, type ReassemblyResult } from './fragments.js';
export { decodeHeader, MAX_MESSAGE_LENGTH, type MessageHeaderFields } from './header.js';
export { decodeMessage, encodeMessage } from './message.js';
export {
  CHILD_SA_SPI_LENGTH,
  decodeAdditionalKeyExchange,
  decodeCookie,
  decodeInvalidKe,
  decodeMessageIdSync,
  decodeNatDetection,
  decodeRekeySa,
  decodeReplayCounterSync,
  decodeSignatureHashAlgorithms,
  decodeWindowSize,
  encodeInvalidKe,
  encodeMessageIdSync,
  encodeReplayCounterSync,
  encodeSignatureHashAlgorithms,
  encodeWindowSize,
  MAX_COOKIE_LENGTH,
  type MessageIdSync,
  NAT_DETECTION_LENGTH,
  REPLAY_COUNTER_SYNC_NONCE_LENGTH,
  type ReplayCounterSync,
  WINDOW_SIZE_LENGTH,
} from './notify-data.js';
export { verifyAuth } from './payloads/auth-payload.js';
export { CA_HASH_LENGTH, certReqAuthorities, verifyCertReq } from './payloads/certreq-payload.js';
export { verifyCp } from './payloads/cp-payload.js';
export { verifyId } from './payloads/id-payload.js';
export { verifyKe } from './payloads/ke-payload.js';
export { MAX_NONCE_LENGTH, MIN_NONCE_LENGTH, verifyNonce } from './payloads/nonce-payload.js';
export { verifyNotify } from './payloads/notify-payload.js';
export { transformKeyLength, verifySa } from './payloads/sa-payload.js';
export { verifyTs } from './payloads/ts-payload.js';
export { verifyPayloads } from './verify.js';
export { decryptMessage, encodeProtectedMessage, type SkProtection } from './protect.js';
export type * from './types.js';
