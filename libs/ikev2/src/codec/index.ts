export { decodePayloadChain, encodePayloads, MAX_PAYLOADS_PER_CHAIN } from './chain.js';
export * from './constants.js';
export { FragmentReassembler, encodeProtectedFragments, type ReassemblyResult } from './fragments.js';
export { decodeHeader, MAX_MESSAGE_LENGTH, type MessageHeaderFields } from './header.js';
export { decodeMessage, encodeMessage } from './message.js';
export {
  decodeCookie,
  decodeInvalidKe,
  decodeMessageIdSync,
  decodeNatDetection,
  decodeSignatureHashAlgorithms,
  decodeWindowSize,
  encodeInvalidKe,
  encodeMessageIdSync,
  encodeSignatureHashAlgorithms,
  type MessageIdSync,
  NAT_DETECTION_LENGTH,
} from './notify-data.js';
export { verifyCp } from './payloads/cp.js';
export { transformKeyLength, verifySa } from './payloads/sa.js';
export { MAX_NONCE_LENGTH, MIN_NONCE_LENGTH, verifyNonce } from './payloads/simple.js';
export { verifyTs } from './payloads/ts.js';
export { decryptMessage, encodeProtectedMessage, type SkProtection } from './protect.js';
export type * from './types.js';
