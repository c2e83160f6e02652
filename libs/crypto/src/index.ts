/**
 * @ikegate/crypto: the crypto provider contract (provider.ts), its node:crypto and @noble
 * implementations, the benchmark-chosen defaultProvider, IKEv2 key derivation, RFC 7427
 * signatures and X.509 helpers. Named exports only.
 */
export { compositeProvider, defaultProvider } from './default-provider.js';
export type { CryptoErrorCode } from './errors.js';
export { LocalUsageError, RemoteProtocolError } from './errors.js';
export type { ChildSaKeyLengths, ChildSaKeys, IkeSaKeyLengths, IkeSaKeys, SharedSecrets } from './kdf.js';
export {
  deriveAdditionalKeSkeyseed,
  deriveChildSaKeys,
  deriveIkeSaKeys,
  deriveRekeySkeyseed,
  deriveSkeyseed,
  NO_KEY,
  PRF_PLUS_MAX_ITERATIONS,
  prfPlus,
} from './kdf.js';
export { nobleProvider } from './noble-provider.js';
export { nodeProvider } from './node-provider.js';
export type {
  AeadAlgorithm,
  AeadKey,
  CipherAlgorithm,
  CipherKey,
  CryptoProvider,
  HashName,
  IntegrityAlgorithm,
  IntegrityKey,
  KeyExchangeInitiation,
  KeyExchangeMethod,
  PrfAlgorithm,
  RandomBytes,
} from './provider.js';
export { EncryptionId, IntegrityId, KeyExchangeId, PrfId } from './provider.js';
export { RANDOM_POOL_SIZE, RandomPool } from './random-pool.js';
export type { SignatureScheme, SignatureSchemeName } from './signatures.js';
export {
  SIGNATURE_SCHEMES,
  schemeFromAlgorithmIdentifier,
  sign,
  signatureScheme,
  verify,
} from './signatures.js';
export type { ChainFailure, ChainVerification, SubjectAltNames } from './x509.js';
export {
  certificateDer,
  loadCertificate,
  loadCertificates,
  MAX_CHAIN_LENGTH,
  subjectAltNames,
  subjectOf,
  subjectPublicKeyInfoSha1,
  verifyChain,
} from './x509.js';
