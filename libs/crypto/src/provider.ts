/**
 * The crypto provider contract. Every protocol library (ikev2, esp) reaches cryptography only
 * through these interfaces, so a primitive can be served by node:crypto or by @noble without the
 * protocol code knowing. Algorithms are identified by their IANA IKEv2 transform IDs
 * (RFC 7296 §3.3.2 and the "IKEv2 Parameters" registry), the same numbers that go on the wire.
 *
 * Buffer ownership: inputs are only read during the call; outputs are fresh (or written into the
 * caller's `out`, which must not overlap any input). Nothing here keeps a reference to a caller's
 * buffer after returning. Keys handed to `create` are copied or imported, so the caller may wipe them.
 */

/** Injected randomness. Protocol libraries never read global randomness (STYLE.md rule 1). */
export type RandomBytes = (length: number) => Uint8Array;

/** Transform type 2: pseudorandom functions. */
export const PrfId = {
  HMAC_SHA1: 2,
  HMAC_SHA2_256: 5,
  HMAC_SHA2_384: 6,
  HMAC_SHA2_512: 7,
} as const;
export type PrfId = (typeof PrfId)[keyof typeof PrfId];

/** Transform type 3: integrity algorithms (RFC 4868 for SHA-2). */
export const IntegrityId = {
  NONE: 0,
  HMAC_SHA1_96: 2,
  HMAC_SHA2_256_128: 12,
  HMAC_SHA2_384_192: 13,
  HMAC_SHA2_512_256: 14,
} as const;
export type IntegrityId = (typeof IntegrityId)[keyof typeof IntegrityId];

/** Transform type 1: encryption algorithms. AES ones take a Key Length attribute (128/192/256). */
export const EncryptionId = {
  AES_CBC: 12,
  AES_GCM_16: 20,
  CHACHA20_POLY1305: 28,
} as const;
export type EncryptionId = (typeof EncryptionId)[keyof typeof EncryptionId];

/**
 * Transform type 4 (Key Exchange Method) and, with RFC 9370, types 6..12 (ADDKE1..7).
 * ML-KEM numbers are from RFC-to-be draft-ietf-ipsecme-ikev2-mlkem (IANA registered 35/36/37).
 */
export const KeyExchangeId = {
  MODP_2048: 14,
  ECP_256: 19,
  ECP_384: 20,
  ECP_521: 21,
  CURVE25519: 31,
  ML_KEM_512: 35,
  ML_KEM_768: 36,
  ML_KEM_1024: 37,
} as const;
export type KeyExchangeId = (typeof KeyExchangeId)[keyof typeof KeyExchangeId];

export type HashName = 'sha1' | 'sha256' | 'sha384' | 'sha512';

export interface PrfAlgorithm {
  readonly id: PrfId;
  readonly name: string;
  /** Output length in octets; also the preferred key length (SK_d, SK_pi, SK_pr). */
  readonly outputLength: number;
  /** prf(key, data[0] | data[1] | ...). Concatenation is logical: no copy is required of the caller. */
  compute(key: Uint8Array, ...data: Uint8Array[]): Uint8Array;
}

export interface IntegrityAlgorithm {
  readonly id: IntegrityId;
  readonly name: string;
  readonly keyLength: number;
  /** Truncated ICV length in octets (e.g. 16 for HMAC-SHA2-256-128). */
  readonly icvLength: number;
  create(key: Uint8Array): IntegrityKey;
}

export interface IntegrityKey {
  /** Truncated ICV over data[0] | data[1] | ... */
  compute(...data: Uint8Array[]): Uint8Array;
  /** Constant-time comparison of the ICV over `data` with `icv`. */
  verify(icv: Uint8Array, ...data: Uint8Array[]): boolean;
  /**
   * A copy of the key material the key was made from (for an AEAD: key | salt). For an SA's
   * snapshot to the store, so that the SA does not also keep the raw octets; never for logs.
   */
  exportKeyMaterial(): Uint8Array;
}

/** A non-AEAD block cipher in CBC mode (RFC 3602). Callers pad; lengths must be block multiples. */
export interface CipherAlgorithm {
  readonly id: EncryptionId;
  readonly name: string;
  readonly keyLength: number;
  readonly blockSize: number;
  readonly ivLength: number;
  create(key: Uint8Array): CipherKey;
}

export interface CipherKey {
  /** Throws LocalUsageError if lengths are not block multiples (the caller pads). */
  encrypt(iv: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array;
  /** Throws LocalUsageError on a length that is not a block multiple; the caller checks first. */
  decrypt(iv: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * A copy of the key material the key was made from (for an AEAD: key | salt). For an SA's
   * snapshot to the store, so that the SA does not also keep the raw octets; never for logs.
   */
  exportKeyMaterial(): Uint8Array;
}

/**
 * AEAD as used by ESP (RFC 4106, RFC 7634) and IKEv2 SK (RFC 5282): the key material is the key
 * followed by a 4-octet salt; the 12-octet nonce is salt | iv where iv is the 8-octet explicit IV
 * carried in the packet.
 */
export interface AeadAlgorithm {
  readonly id: EncryptionId;
  readonly name: string;
  /** Key material length in octets, salt included (e.g. 36 for AES-256-GCM-16). */
  readonly keyLength: number;
  readonly saltLength: number;
  /** Explicit IV length on the wire: 8. */
  readonly ivLength: number;
  /** 16 for every AEAD ikegate supports. */
  readonly icvLength: number;
  create(keyMaterial: Uint8Array): AeadKey;
}

export interface AeadKey {
  /**
   * Encrypts `plaintext` and appends the ICV. Returns ciphertext | icv (length plaintext.length +
   * icvLength), written into `out` (from offset 0) when given. `out` must not overlap the inputs.
   */
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array;
  /**
   * Verifies and decrypts ciphertext | icv. Returns the plaintext (in `out` when given), or null when
   * authentication fails or the input is shorter than the ICV. Never throws for bad input.
   */
  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array, out?: Uint8Array): Uint8Array | null;
  /**
   * A copy of the key material the key was made from (for an AEAD: key | salt). For an SA's
   * snapshot to the store, so that the SA does not also keep the raw octets; never for logs.
   */
  exportKeyMaterial(): Uint8Array;
}

/**
 * A key exchange method: finite-field or elliptic-curve Diffie-Hellman, or a KEM (RFC 9370 with
 * ML-KEM). The two roles map onto IKEv2's KE payloads: the initiator sends first.
 */
export interface KeyExchangeMethod {
  readonly id: KeyExchangeId;
  readonly name: string;
  /** Octets of the initiator's KE data (DH public value, or ML-KEM encapsulation key). */
  readonly initiatorDataLength: number;
  /** Octets of the responder's KE data (DH public value, or ML-KEM ciphertext). */
  readonly responderDataLength: number;
  /** Initiator: a fresh ephemeral drawn from `random`. */
  initiate(random: RandomBytes): KeyExchangeInitiation;
  /**
   * Responder: consumes the initiator's KE data, returns ours and the shared secret.
   * Throws RemoteProtocolError (IKEGATE_ERR_CRYPTO_BAD_KE_DATA) for a wrong length or invalid value.
   */
  respond(
    initiatorData: Uint8Array,
    random: RandomBytes,
  ): { publicData: Uint8Array; sharedSecret: Uint8Array };
}

export interface KeyExchangeInitiation {
  readonly publicData: Uint8Array;
  /** Throws RemoteProtocolError (IKEGATE_ERR_CRYPTO_BAD_KE_DATA) for a wrong length or invalid value. */
  complete(responderData: Uint8Array): Uint8Array;
}

/** One source of every primitive. `undefined` means "this provider does not offer it". */
export interface CryptoProvider {
  readonly name: string;
  prf(id: number): PrfAlgorithm | undefined;
  integrity(id: number): IntegrityAlgorithm | undefined;
  /** keyBits is the Key Length attribute (128, 192, 256). */
  cipher(id: number, keyBits: number): CipherAlgorithm | undefined;
  /** keyBits is the Key Length attribute (128, 256 for AES-GCM; 256 for ChaCha20-Poly1305). */
  aead(id: number, keyBits: number): AeadAlgorithm | undefined;
  keyExchange(id: number): KeyExchangeMethod | undefined;
  hash(name: HashName, ...data: Uint8Array[]): Uint8Array;
}
