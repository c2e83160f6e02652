/**
 * The algorithm table shared by every provider: names, lengths and hashes per IANA transform ID,
 * so nodeProvider and nobleProvider cannot disagree on a length. Providers supply only the
 * arithmetic. Sources: RFC 7296 §3.3.2 (IDs), RFC 4868 §2 (HMAC-SHA2 lengths), RFC 2404 (HMAC-SHA1-96),
 * RFC 3602 (AES-CBC), RFC 4106/5282 (AES-GCM key + 4-octet salt), RFC 7634 (ChaCha20-Poly1305).
 */
import { LocalUsageError } from './errors.js';
import {
  type AeadAlgorithm,
  type CipherAlgorithm,
  type CryptoProvider,
  EncryptionId,
  type HashName,
  type IntegrityAlgorithm,
  type KeyExchangeMethod,
  type PrfAlgorithm,
  IntegrityId,
  KeyExchangeId,
  type PrfId,
  PrfId as PrfIds,
} from './provider.js';

export interface PrfSpec {
  readonly id: PrfId;
  readonly name: string;
  readonly hash: HashName;
  readonly outputLength: number;
}

export const PRF_SPECS: ReadonlyMap<number, PrfSpec> = new Map<number, PrfSpec>([
  [PrfIds.HMAC_SHA1, { id: PrfIds.HMAC_SHA1, name: 'PRF_HMAC_SHA1', hash: 'sha1', outputLength: 20 }],
  [
    PrfIds.HMAC_SHA2_256,
    { id: PrfIds.HMAC_SHA2_256, name: 'PRF_HMAC_SHA2_256', hash: 'sha256', outputLength: 32 },
  ],
  [
    PrfIds.HMAC_SHA2_384,
    { id: PrfIds.HMAC_SHA2_384, name: 'PRF_HMAC_SHA2_384', hash: 'sha384', outputLength: 48 },
  ],
  [
    PrfIds.HMAC_SHA2_512,
    { id: PrfIds.HMAC_SHA2_512, name: 'PRF_HMAC_SHA2_512', hash: 'sha512', outputLength: 64 },
  ],
]);

export interface IntegritySpec {
  readonly id: IntegrityId;
  readonly name: string;
  readonly hash: HashName;
  /** RFC 4868 §2.1.1: the key is as long as the hash output. */
  readonly keyLength: number;
  readonly icvLength: number;
}

export const INTEGRITY_SPECS: ReadonlyMap<number, IntegritySpec> = new Map<number, IntegritySpec>([
  [
    IntegrityId.HMAC_SHA1_96,
    { id: IntegrityId.HMAC_SHA1_96, name: 'AUTH_HMAC_SHA1_96', hash: 'sha1', keyLength: 20, icvLength: 12 },
  ],
  [
    IntegrityId.HMAC_SHA2_256_128,
    {
      id: IntegrityId.HMAC_SHA2_256_128,
      name: 'AUTH_HMAC_SHA2_256_128',
      hash: 'sha256',
      keyLength: 32,
      icvLength: 16,
    },
  ],
  [
    IntegrityId.HMAC_SHA2_384_192,
    {
      id: IntegrityId.HMAC_SHA2_384_192,
      name: 'AUTH_HMAC_SHA2_384_192',
      hash: 'sha384',
      keyLength: 48,
      icvLength: 24,
    },
  ],
  [
    IntegrityId.HMAC_SHA2_512_256,
    {
      id: IntegrityId.HMAC_SHA2_512_256,
      name: 'AUTH_HMAC_SHA2_512_256',
      hash: 'sha512',
      keyLength: 64,
      icvLength: 32,
    },
  ],
]);

export interface CbcSpec {
  readonly id: EncryptionId;
  readonly name: string;
  readonly keyLength: number;
  readonly blockSize: 16;
  readonly ivLength: 16;
}

/** AES-CBC takes the Key Length attribute 128, 192 or 256 (RFC 3602, RFC 7296 §3.3.5). */
export function cbcSpec(id: number, keyBits: number): CbcSpec | undefined {
  if (id !== EncryptionId.AES_CBC || (keyBits !== 128 && keyBits !== 192 && keyBits !== 256))
    return undefined;
  return {
    id: EncryptionId.AES_CBC,
    name: `ENCR_AES_CBC_${keyBits}`,
    keyLength: keyBits / 8,
    blockSize: 16,
    ivLength: 16,
  };
}

export interface AeadSpec {
  readonly id: EncryptionId;
  readonly name: string;
  readonly kind: 'aes-gcm' | 'chacha20-poly1305';
  /** Cipher key octets, salt excluded. */
  readonly cipherKeyLength: number;
  /** Key material octets, salt included. */
  readonly keyLength: number;
  readonly saltLength: 4;
  readonly ivLength: 8;
  readonly icvLength: 16;
}

export function aeadSpec(id: number, keyBits: number): AeadSpec | undefined {
  if (id === EncryptionId.AES_GCM_16 && (keyBits === 128 || keyBits === 192 || keyBits === 256)) {
    return {
      id: EncryptionId.AES_GCM_16,
      name: `ENCR_AES_GCM_16_${keyBits}`,
      kind: 'aes-gcm',
      cipherKeyLength: keyBits / 8,
      keyLength: keyBits / 8 + 4,
      saltLength: 4,
      ivLength: 8,
      icvLength: 16,
    };
  }
  // RFC 7634 §2: ChaCha20-Poly1305 has a fixed 256-bit key and no Key Length attribute; 0 stands
  // for "attribute absent" so callers may pass either.
  if (id === EncryptionId.CHACHA20_POLY1305 && (keyBits === 256 || keyBits === 0)) {
    return {
      id: EncryptionId.CHACHA20_POLY1305,
      name: 'ENCR_CHACHA20_POLY1305',
      kind: 'chacha20-poly1305',
      cipherKeyLength: 32,
      keyLength: 36,
      saltLength: 4,
      ivLength: 8,
      icvLength: 16,
    };
  }
  return undefined;
}

export interface KeyExchangeSpec {
  readonly id: KeyExchangeId;
  readonly name: string;
  readonly initiatorDataLength: number;
  readonly responderDataLength: number;
}

export const KE_SPECS: ReadonlyMap<number, KeyExchangeSpec> = new Map<number, KeyExchangeSpec>(
  (
    [
      [KeyExchangeId.MODP_2048, 'MODP_2048', 256, 256],
      [KeyExchangeId.ECP_256, 'ECP_256', 64, 64],
      [KeyExchangeId.ECP_384, 'ECP_384', 96, 96],
      [KeyExchangeId.ECP_521, 'ECP_521', 132, 132],
      [KeyExchangeId.CURVE25519, 'CURVE25519', 32, 32],
      [KeyExchangeId.ML_KEM_512, 'ML_KEM_512', 800, 768],
      [KeyExchangeId.ML_KEM_768, 'ML_KEM_768', 1184, 1088],
      [KeyExchangeId.ML_KEM_1024, 'ML_KEM_1024', 1568, 1568],
    ] as const
  ).map(([id, name, i, r]) => [id, { id, name, initiatorDataLength: i, responderDataLength: r }]),
);

export function checkKeyLength(what: string, key: Uint8Array, expected: number): void {
  if (key.length !== expected) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_KEY_LENGTH',
      `${what}: key is ${key.length} octets, expected ${expected}`,
    );
  }
}

/** A zero-copy Uint8Array view of a node Buffer, so both providers return the same type. */
export function view(b: Buffer): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

/** Places `length` result octets in `out` (from offset 0) when given; checks its size. */
export function outputBuffer(out: Uint8Array | undefined, length: number, what: string): Uint8Array {
  if (out === undefined) return new Uint8Array(length);
  if (out.length < length) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_LENGTH',
      `${what}: out has ${out.length} octets, needs ${length}`,
    );
  }
  return out.subarray(0, length);
}

export function checkBlockMultiple(what: string, length: number, blockSize: number): void {
  if (length % blockSize !== 0) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_LENGTH',
      `${what}: length ${length} is not a multiple of ${blockSize}`,
    );
  }
}

export function checkIvLength(what: string, iv: Uint8Array, expected: number): void {
  if (iv.length !== expected) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_LENGTH',
      `${what}: IV is ${iv.length} octets, expected ${expected}`,
    );
  }
}

export function isAllZero(b: Uint8Array): boolean {
  let acc = 0;
  for (let i = 0; i < b.length; i++) acc |= b[i]!;
  return acc === 0;
}

const HASH_NAMES: ReadonlySet<string> = new Set(['sha1', 'sha256', 'sha384', 'sha512']);

export function checkHashName(name: string): void {
  if (!HASH_NAMES.has(name))
    throw new LocalUsageError('IKEGATE_ERR_CRYPTO_UNSUPPORTED', `hash ${name} is not offered`);
}

/** How one provider builds each primitive from its spec; `assembleProvider` does the rest. */
export interface PrimitiveFactories {
  readonly name: string;
  prf(spec: PrfSpec): PrfAlgorithm;
  integrity(spec: IntegritySpec): IntegrityAlgorithm;
  cipher(spec: CbcSpec): CipherAlgorithm;
  aead(spec: AeadSpec): AeadAlgorithm;
  keyExchange(id: number): KeyExchangeMethod | undefined;
  hash(name: HashName, data: readonly Uint8Array[]): Uint8Array;
}

/** Memoizes a lookup; only hits are cached, so ids chosen by a peer cannot grow the map. */
function memo<K, T>(make: (key: K) => T | undefined): (key: K) => T | undefined {
  const cache = new Map<K, T>();
  return (key) => {
    let v = cache.get(key);
    if (v === undefined) {
      v = make(key);
      if (v !== undefined) cache.set(key, v);
    }
    return v;
  };
}

/** A CryptoProvider over `f`: spec lookup, validation of ids and key sizes, and one cached algorithm object each. */
export function assembleProvider(f: PrimitiveFactories): CryptoProvider {
  const prfs = memo((id: number) => {
    const s = PRF_SPECS.get(id);
    return s && f.prf(s);
  });
  const integrities = memo((id: number) => {
    const s = INTEGRITY_SPECS.get(id);
    return s && f.integrity(s);
  });
  const ciphers = memo((key: string) => {
    const [id, bits] = key.split(':').map(Number);
    const s = cbcSpec(id!, bits!);
    return s && f.cipher(s);
  });
  const aeads = memo((key: string) => {
    const [id, bits] = key.split(':').map(Number);
    const s = aeadSpec(id!, bits!);
    return s && f.aead(s);
  });
  const keyExchanges = memo((id: number) => f.keyExchange(id));
  return {
    name: f.name,
    prf: (id) => prfs(id),
    integrity: (id) => integrities(id),
    cipher: (id, keyBits) => (cbcSpec(id, keyBits) ? ciphers(`${id}:${keyBits}`) : undefined),
    aead: (id, keyBits) => (aeadSpec(id, keyBits) ? aeads(`${id}:${keyBits}`) : undefined),
    keyExchange: (id) => keyExchanges(id),
    hash(name: HashName, ...data: Uint8Array[]): Uint8Array {
      checkHashName(name);
      return f.hash(name, data);
    },
  };
}
