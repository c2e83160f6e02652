/**
 * The cryptographic suite of one ESP SA, bound to its keys: either an AEAD (AES-GCM-16 per
 * RFC 4106, ChaCha20-Poly1305 per RFC 7634) or AES-CBC (RFC 3602) with HMAC-SHA2 (RFC 4868).
 * Algorithms come from a CryptoProvider (@ikegate/crypto), so the same SA code runs on node:crypto
 * or @noble.
 *
 * Key material is what RFC 7296 §2.17 draws from KEYMAT for one direction: for an AEAD the key
 * followed by the 4-octet salt (RFC 4106 §8.1, RFC 7634 §2); otherwise the encryption key followed
 * by the integrity key.
 */
import type {
  AeadAlgorithm,
  CipherAlgorithm,
  CryptoProvider,
  EncryptionId,
  IntegrityAlgorithm,
} from '@ikegate/crypto';
import { ESP_HEADER_LENGTH, ESP_TRAILER_LENGTH } from './constants.js';
import { LocalUsageError } from './errors.js';

export type EspSuite =
  | {
      readonly kind: 'aead';
      readonly aead: AeadAlgorithm;
      /** Key followed by the 4-octet salt (aead.keyLength octets). */
      readonly keyMaterial: Uint8Array;
    }
  | {
      readonly kind: 'cbc-hmac';
      readonly cipher: CipherAlgorithm;
      readonly encryptionKey: Uint8Array;
      readonly integrity: IntegrityAlgorithm;
      readonly integrityKey: Uint8Array;
    };

/** Negotiated ESP transforms, as IKEv2 transform IDs (RFC 7296 §3.3.2). */
export interface EspTransformIds {
  readonly encryption: EncryptionId | number;
  /** Key Length attribute in bits (128/256 for AES; 256 for ChaCha20-Poly1305). */
  readonly keyBits: number;
  /** Integrity transform; absent or 0 (NONE) for an AEAD. */
  readonly integrity?: number;
}

/**
 * Resolves negotiated transform IDs against a provider and binds the keys.
 * `keyMaterial` is this direction's KEYMAT slice: AEAD key|salt, or encryption key|integrity key.
 * @throws LocalUsageError (IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM) if the provider lacks the
 *   algorithm or the combination is not allowed (an AEAD with an integrity transform, or CBC
 *   without one); (IKEGATE_ERR_ESP_BAD_KEY_LENGTH) if the key material has the wrong length.
 */
export function espSuite(provider: CryptoProvider, ids: EspTransformIds, keyMaterial: Uint8Array): EspSuite {
  const r = resolve(provider, ids);
  if (r.kind === 'aead') {
    checkLength('AEAD key material', keyMaterial, r.aead.keyLength);
    return { kind: 'aead', aead: r.aead, keyMaterial: keyMaterial.slice() };
  }
  const { cipher, integrity } = r;
  checkLength('CBC+HMAC key material', keyMaterial, cipher.keyLength + integrity.keyLength);
  return {
    kind: 'cbc-hmac',
    cipher,
    encryptionKey: keyMaterial.slice(0, cipher.keyLength),
    integrity,
    integrityKey: keyMaterial.slice(cipher.keyLength),
  };
}

/** The provider's algorithms for `ids`, or the LocalUsageError espSuite documents. */
function resolve(
  provider: CryptoProvider,
  ids: EspTransformIds,
):
  | { readonly kind: 'aead'; readonly aead: AeadAlgorithm }
  | { readonly kind: 'cbc-hmac'; readonly cipher: CipherAlgorithm; readonly integrity: IntegrityAlgorithm } {
  const integrityId = ids.integrity ?? 0;
  const aead = provider.aead(ids.encryption, ids.keyBits);
  if (aead) {
    if (integrityId !== 0)
      throw new LocalUsageError(
        'IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM',
        `an AEAD (${aead.name}) takes no integrity transform (RFC 7296 §3.3)`,
      );
    return { kind: 'aead', aead };
  }
  const cipher = provider.cipher(ids.encryption, ids.keyBits);
  if (!cipher)
    throw new LocalUsageError(
      'IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM',
      `encryption transform ${ids.encryption}/${ids.keyBits} is not offered by provider ${provider.name}`,
    );
  const integrity = integrityId === 0 ? undefined : provider.integrity(integrityId);
  if (!integrity)
    throw new LocalUsageError(
      'IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM',
      `${cipher.name} needs an integrity transform; ${integrityId} is not offered by provider ${provider.name}`,
    );
  return { kind: 'cbc-hmac', cipher, integrity };
}

/** The lengths an ESP SA's packets have under a suite, known before any key is imported. */
export interface EspShape {
  /** Octets of key material per direction (RFC 7296 §2.17: cipher key, salt, integrity key). */
  readonly keyLength: number;
  readonly ivLength: number;
  /** The ciphertext is a multiple of this (1 for an AEAD). */
  readonly blockSize: number;
  readonly icvLength: number;
}

/**
 * The shape of the suite `espSuite` would make from `ids`, without keys: for a caller that keeps
 * keys aside and builds the SA later (a cold child SA, services/worker data-plane.ts).
 * @throws LocalUsageError as espSuite and createTransform do for an algorithm the provider lacks,
 *   a bad combination, or an AEAD whose IV is not 8 octets.
 */
export function espShape(provider: CryptoProvider, ids: EspTransformIds): EspShape {
  const r = resolve(provider, ids);
  if (r.kind === 'aead') {
    const { aead } = r;
    if (aead.ivLength !== 8)
      throw new LocalUsageError('IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM', `${aead.name}: IV must be 8 octets`);
    return { keyLength: aead.keyLength, ivLength: aead.ivLength, blockSize: 1, icvLength: aead.icvLength };
  }
  const { cipher, integrity } = r;
  return {
    keyLength: cipher.keyLength + integrity.keyLength,
    ivLength: cipher.ivLength,
    blockSize: cipher.blockSize,
    icvLength: integrity.icvLength,
  };
}

/**
 * The shortest ESP packet an SA of this shape can open (RFC 4303 §2): header, IV, the smallest
 * ciphertext (one block, or the 2-octet trailer for an AEAD) and the ICV.
 */
export function minimumEspLength(shape: Pick<EspShape, 'ivLength' | 'blockSize' | 'icvLength'>): number {
  const minCiphertext = shape.blockSize > 1 ? shape.blockSize : ESP_TRAILER_LENGTH;
  return ESP_HEADER_LENGTH + shape.ivLength + minCiphertext + shape.icvLength;
}

function checkLength(what: string, key: Uint8Array, expected: number): void {
  if (key.length !== expected)
    throw new LocalUsageError(
      'IKEGATE_ERR_ESP_BAD_KEY_LENGTH',
      `${what} must be ${expected} octets, got ${key.length}`,
    );
}
