/**
 * Pure IKEv2 negotiation logic (no IO, no clock, no randomness): proposals, traffic selectors,
 * NAT detection, AUTH, key lengths and SK protection, configuration payloads. Named exports only.
 */
export { formatIpAddress, parseIpAddress } from './ip-address.js';
export {
  buildNatDetection,
  evaluateNatDetection,
  NAT_DETECTION_HASH_LENGTH,
  type NatDetectionResult,
  natDetectionHash,
  type TransportEndpoint,
} from './nat-detection.js';
export {
  buildProposals,
  type ChosenProposalCheck,
  checkChosenProposal,
  checkKeyExchangePayload,
  type EncryptionChoice,
  INTEGRITY_NONE,
  isAeadEncryption,
  KEY_EXCHANGE_NONE,
  type KeCheck,
  type NegotiatedSuite,
  type ProposalPolicy,
  type ProposalSelection,
  type SelectOptions,
  proposedKeyExchanges,
  selectProposal,
  sharedSuite,
} from './proposals.js';
export {
  ANY_PROTOCOL,
  isSpecificTrafficSelector,
  narrowTrafficSelectors,
  type SelectorOptions,
  substituteVirtualIp,
  trafficSelectorContains,
  trafficSelectorFromCidr,
} from './traffic-selectors.js';
export {
  certificateSubjectDer,
  chooseSignatureScheme,
  idPayloadBody,
  initiatorSignedOctets,
  intAuthStep,
  intAuthSuffix,
  MAX_INTERMEDIATE_CERTIFICATES,
  type PeerCertificateCheck,
  parseSignatureAuthData,
  peerIdMatchesCertificate,
  pskAuthData,
  responderSignedOctets,
  signatureAuthData,
  verifyPeerCertificate,
  verifyPskAuth,
  verifySignatureAuth,
} from './auth.js';
export {
  buildCfgReply,
  buildCfgRequest,
  type CfgAssignment,
  type CfgWants,
  IP4_ATTRIBUTE_LENGTH,
  IP6_ADDRESS_ATTRIBUTE_LENGTH,
  IP6_DNS_ATTRIBUTE_LENGTH,
  type Ipv6Assignment,
  parseCfgReply,
  parseCfgRequest,
} from './config-payload.js';
export {
  deriveChildSaKeysForSuite,
  deriveIkeSaKeysForSuite,
  type EspDirectionKeys,
  ikeSkProtections,
  type SuiteKeyLengths,
  skProtection,
  suiteKeyLengths,
  suitePrf,
} from './keys.js';
export { addressToBigInt, bigIntToAddress } from './ip-address.js';
