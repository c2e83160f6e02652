/**
 * CryptoProvider over node:crypto (OpenSSL). Per-key objects (the imported key, a 12-octet nonce
 * buffer with the salt already in place) are built once in `create()`; OpenSSL contexts
 * (createCipheriv, createHmac) cannot be reused across messages in node's API, so one per call is
 * unavoidable.
 *
 * Key exchanges draw private values from the injected RandomBytes only: X25519 keys are imported
 * as JWK (see NodeX25519), EC and MODP keys through setPrivateKey. ML-KEM is not offered (see mlKemUnsupported).
 */
import {
  type CipherKey as NodeCipherKey,
  createCipheriv,
  createDecipheriv,
  createDiffieHellman,
  createECDH,
  hash as oneShotHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  diffieHellman,
  type KeyObject,
  timingSafeEqual,
} from 'node:crypto';
import {
  assembleProvider,
  type AeadSpec,
  type CbcSpec,
  checkBlockMultiple,
  checkIvLength,
  checkKeyLength,
  type IntegritySpec,
  isAllZero,
  KE_SPECS,
  type KeyExchangeSpec,
  outputBuffer,
  type PrfSpec,
  view,
} from './algorithms.js';
import { LocalUsageError } from './errors.js';
import { concat } from './kdf.js';
import {
  badKeData,
  checkKeLength,
  checkModpPublic,
  drawEcScalar,
  drawModpExponent,
  drawRandom,
  EC_GROUPS,
  type EcGroup,
  MODP_2048_PRIME_HEX,
  padStart,
} from './ke-common.js';
import type {
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
import { KeyExchangeId } from './provider.js';

/**
 * AEAD/CBC keys are imported once as a KeyObject rather than kept as a raw Buffer. Measured on
 * node 20.20 (AES-256-GCM seal 1400 B, createCipheriv per packet): KeyObject 192,847/s vs Buffer
 * 191,575/s; HMAC-SHA256 64 B: 469,503/s vs 460,103/s — a tie within noise, so the KeyObject wins
 * on keeping key bytes out of the JS heap. (Ad-hoc harness.compare run, 3 rounds x 400 ms.)
 */
const USE_KEY_OBJECT = true;

function importKey(key: Uint8Array): NodeCipherKey {
  if (!USE_KEY_OBJECT) return Buffer.from(key);
  // Not from node's shared pool, and zeroed once the KeyObject holds its own copy.
  const copy = Buffer.allocUnsafeSlow(key.length);
  copy.set(key);
  try {
    return createSecretKey(copy);
  } finally {
    copy.fill(0);
  }
}

/** The octets of a key made by importKey (a new copy; the intermediate one is zeroed). */
function exportKey(key: NodeCipherKey): Uint8Array {
  if (!USE_KEY_OBJECT) return new Uint8Array(key as Buffer);
  const exported = (key as KeyObject).export();
  try {
    return new Uint8Array(exported);
  } finally {
    exported.fill(0);
  }
}

// --- PRF, integrity, hash -------------------------------------------------------------------

class NodePrf implements PrfAlgorithm {
  readonly id;
  readonly name;
  readonly outputLength;
  readonly #hash: HashName;
  constructor(spec: PrfSpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.outputLength = spec.outputLength;
    this.#hash = spec.hash;
  }
  compute(key: Uint8Array, ...data: Uint8Array[]): Uint8Array {
    const h = createHmac(this.#hash, key);
    for (const d of data) h.update(d);
    return view(h.digest());
  }
}

class NodeIntegrityKey implements IntegrityKey {
  readonly #hash: HashName;
  readonly #key: KeyObject;
  readonly #icvLength: number;
  constructor(spec: IntegritySpec, key: Uint8Array) {
    this.#hash = spec.hash;
    this.#icvLength = spec.icvLength;
    this.#key = createSecretKey(Buffer.from(key));
  }
  #full(data: Uint8Array[]): Buffer {
    const h = createHmac(this.#hash, this.#key);
    for (const d of data) h.update(d);
    return h.digest();
  }
  compute(...data: Uint8Array[]): Uint8Array {
    return view(this.#full(data).subarray(0, this.#icvLength));
  }
  verify(icv: Uint8Array, ...data: Uint8Array[]): boolean {
    if (icv.length !== this.#icvLength) return false;
    return timingSafeEqual(this.#full(data).subarray(0, this.#icvLength), icv);
  }
  exportKeyMaterial(): Uint8Array {
    return exportKey(this.#key);
  }
}

class NodeIntegrity implements IntegrityAlgorithm {
  readonly id;
  readonly name;
  readonly keyLength;
  readonly icvLength;
  constructor(readonly spec: IntegritySpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.keyLength = spec.keyLength;
    this.icvLength = spec.icvLength;
  }
  create(key: Uint8Array): IntegrityKey {
    checkKeyLength(this.name, key, this.keyLength);
    return new NodeIntegrityKey(this.spec, key);
  }
}

// --- AES-CBC --------------------------------------------------------------------------------

class NodeCbcKey implements CipherKey {
  readonly #cipherName: string;
  readonly #key: NodeCipherKey;
  constructor(spec: CbcSpec, key: Uint8Array) {
    this.#cipherName = `aes-${spec.keyLength * 8}-cbc`;
    this.#key = importKey(key);
  }
  #run(encrypt: boolean, iv: Uint8Array, input: Uint8Array, out: Uint8Array | undefined): Uint8Array {
    const what = encrypt ? 'AES-CBC encrypt' : 'AES-CBC decrypt';
    checkIvLength(what, iv, 16);
    checkBlockMultiple(what, input.length, 16);
    const c = encrypt
      ? createCipheriv(this.#cipherName, this.#key, iv)
      : createDecipheriv(this.#cipherName, this.#key, iv);
    c.setAutoPadding(false);
    const body = c.update(input);
    const tail = c.final();
    const result = outputBuffer(out, input.length, what);
    result.set(body, 0);
    if (tail.length > 0) result.set(tail, body.length);
    return result;
  }
  encrypt(iv: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#run(true, iv, plaintext, out);
  }
  decrypt(iv: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array {
    return this.#run(false, iv, ciphertext, out);
  }
  exportKeyMaterial(): Uint8Array {
    return exportKey(this.#key);
  }
}

class NodeCbc implements CipherAlgorithm {
  readonly id;
  readonly name;
  readonly keyLength;
  readonly blockSize = 16;
  readonly ivLength = 16;
  constructor(readonly spec: CbcSpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.keyLength = spec.keyLength;
  }
  create(key: Uint8Array): CipherKey {
    checkKeyLength(this.name, key, this.keyLength);
    return new NodeCbcKey(this.spec, key);
  }
}

// --- AEAD -----------------------------------------------------------------------------------

type AeadCipherName = 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | 'chacha20-poly1305';

/** The OpenSSL name of AES-GCM with a key of `keyLength` octets: a constant, not a string per key. */
function gcmName(keyLength: number): AeadCipherName {
  switch (keyLength) {
    case 16:
      return 'aes-128-gcm';
    case 24:
      return 'aes-192-gcm';
    case 32:
      return 'aes-256-gcm';
    default:
      throw new LocalUsageError('IKEGATE_ERR_CRYPTO_UNSUPPORTED', `AES-GCM with a ${keyLength}-octet key`);
  }
}

/** The AEAD nonce being built (salt | iv), shared by the thread's keys: used synchronously. */
const AEAD_NONCE = Buffer.alloc(12);

class NodeAeadKey implements AeadKey {
  readonly #cipherName: AeadCipherName;
  readonly #key: NodeCipherKey;
  /** The 4-octet salt (RFC 4106 §4, RFC 7634 §2), written before the IV into the shared nonce. */
  readonly #salt: number;
  readonly #name: string;
  constructor(spec: AeadSpec, keyMaterial: Uint8Array) {
    this.#name = spec.name;
    this.#cipherName = spec.kind === 'aes-gcm' ? gcmName(spec.cipherKeyLength) : 'chacha20-poly1305';
    this.#key = importKey(keyMaterial.subarray(0, spec.cipherKeyLength));
    const at = spec.cipherKeyLength;
    this.#salt =
      ((keyMaterial[at]! << 24) |
        (keyMaterial[at + 1]! << 16) |
        (keyMaterial[at + 2]! << 8) |
        keyMaterial[at + 3]!) >>>
      0;
  }

  /** salt | iv in the thread's nonce scratch (createCipheriv copies it; no nonce buffer per key). */
  #nonce(iv: Uint8Array): Buffer {
    AEAD_NONCE.writeUInt32BE(this.#salt, 0);
    AEAD_NONCE.set(iv, 4);
    return AEAD_NONCE;
  }
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    checkIvLength(this.#name, iv, 8);
    // The casts pick the GCM overload; chacha20-poly1305 has the same shape (authTagLength 16).
    const c = createCipheriv(this.#cipherName as 'aes-256-gcm', this.#key, this.#nonce(iv), {
      authTagLength: 16,
    });
    c.setAAD(aad);
    const body = c.update(plaintext);
    const tail = c.final();
    const result = outputBuffer(out, plaintext.length + 16, this.#name);
    result.set(body, 0);
    if (tail.length > 0) result.set(tail, body.length);
    result.set(c.getAuthTag(), plaintext.length);
    return result;
  }
  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array, out?: Uint8Array): Uint8Array | null {
    if (iv.length !== 8 || ciphertextAndIcv.length < 16) return null;
    const n = ciphertextAndIcv.length - 16;
    const d = createDecipheriv(this.#cipherName as 'aes-256-gcm', this.#key, this.#nonce(iv), {
      authTagLength: 16,
    });
    d.setAuthTag(ciphertextAndIcv.subarray(n));
    d.setAAD(aad);
    const body = d.update(ciphertextAndIcv.subarray(0, n));
    try {
      d.final();
    } catch {
      return null;
    }
    const result = outputBuffer(out, n, this.#name);
    result.set(body, 0);
    return result;
  }
  exportKeyMaterial(): Uint8Array {
    const key = exportKey(this.#key);
    const material = new Uint8Array(key.length + 4);
    material.set(key, 0);
    key.fill(0);
    new DataView(material.buffer).setUint32(key.length, this.#salt);
    return material;
  }
}

class NodeAead implements AeadAlgorithm {
  readonly id;
  readonly name;
  readonly keyLength;
  readonly saltLength = 4;
  readonly ivLength = 8;
  readonly icvLength = 16;
  constructor(readonly spec: AeadSpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.keyLength = spec.keyLength;
  }
  create(keyMaterial: Uint8Array): AeadKey {
    checkKeyLength(this.name, keyMaterial, this.keyLength);
    return new NodeAeadKey(this.spec, keyMaterial);
  }
}

// --- Key exchange ---------------------------------------------------------------------------

abstract class NodeKeyExchange implements KeyExchangeMethod {
  readonly id;
  readonly name;
  readonly initiatorDataLength;
  readonly responderDataLength;
  constructor(readonly spec: KeyExchangeSpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.initiatorDataLength = spec.initiatorDataLength;
    this.responderDataLength = spec.responderDataLength;
  }
  /** Our private value and public data, then a function from the peer's data to the shared secret. */
  protected abstract keyPair(random: RandomBytes): {
    publicData: Uint8Array;
    agree: (peer: Uint8Array) => Uint8Array;
  };
  initiate(random: RandomBytes): KeyExchangeInitiation {
    const { publicData, agree } = this.keyPair(random);
    return {
      publicData,
      complete: (responderData: Uint8Array) => {
        checkKeLength(this.spec, responderData, this.responderDataLength, 'responder');
        return agree(responderData);
      },
    };
  }
  respond(
    initiatorData: Uint8Array,
    random: RandomBytes,
  ): { publicData: Uint8Array; sharedSecret: Uint8Array } {
    checkKeLength(this.spec, initiatorData, this.initiatorDataLength, 'initiator');
    const { publicData, agree } = this.keyPair(random);
    return { publicData, sharedSecret: agree(initiatorData) };
  }
}

class NodeModp extends NodeKeyExchange {
  readonly #prime = Buffer.from(MODP_2048_PRIME_HEX, 'hex');
  protected keyPair(random: RandomBytes) {
    const dh = createDiffieHellman(this.#prime, Buffer.from([2]));
    dh.setPrivateKey(Buffer.from(drawModpExponent(random)));
    // With the private key set, generateKeys computes g^x mod p from it and draws nothing.
    const publicData = padStart(view(dh.generateKeys()), 256);
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        checkModpPublic(peer);
        let secret: Buffer;
        try {
          secret = dh.computeSecret(peer);
        } catch {
          throw badKeData(this.name, 'public value rejected');
        }
        return padStart(view(secret), 256);
      },
    };
  }
}

class NodeEcp extends NodeKeyExchange {
  constructor(
    spec: KeyExchangeSpec,
    readonly group: EcGroup,
  ) {
    super(spec);
  }
  protected keyPair(random: RandomBytes) {
    const ecdh = createECDH(this.group.nodeCurve);
    ecdh.setPrivateKey(Buffer.from(drawEcScalar(this.group, random)));
    // RFC 5903 §7: the KE data is x | y, without the SEC1 0x04 prefix.
    const publicData = view(ecdh.getPublicKey().subarray(1));
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        const sec1 = Buffer.allocUnsafe(peer.length + 1);
        sec1[0] = 0x04;
        sec1.set(peer, 1);
        let secret: Buffer;
        try {
          // OpenSSL rejects coordinates >= p and points not on the curve.
          secret = ecdh.computeSecret(sec1);
        } catch {
          throw badKeData(this.name, 'point is not on the curve');
        }
        // RFC 5903 §7: the shared secret is the x coordinate, fieldBytes octets.
        return padStart(view(secret), this.group.fieldBytes);
      },
    };
  }
}

/**
 * X25519 keys go in and out of OpenSSL as JWK: importing PKCS#8/SPKI DER goes through OpenSSL 3's
 * decoder framework and costs ~10x more (measured on node 20: DER private import + public export
 * ~2k/s, JWK ~22k/s; DER public import ~11k/s, JWK ~150k/s). node requires `x` on a private JWK
 * but derives the public key from `d` alone, so a placeholder stands in for it.
 *
 * Re-measured for issue #14 (`npx tsx scripts/bench/setup-parts.ts`, node 20.20.2, one responder side
 * in CPU time, same run): JWK 12,004/s; DER PKCS#8 + SPKI 1,758/s (0.15x); JWK private with a DER
 * peer key 6,178/s (0.51x); @noble/curves 706/s (0.06x). Of JWK's ~80 µs, the private import is
 * ~35 µs because OpenSSL derives the public key there (a scalar multiplication, as costly as
 * diffieHellman's ~34 µs); the JSON/base64 part (public export ~2 µs, peer import ~5.5 µs) is
 * under 10%. So JWK stays; the profile's `getKeyObjectHandleFromJwk` is mostly the floor.
 */
const JWK_X_PLACEHOLDER = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

function b64url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

class NodeX25519 extends NodeKeyExchange {
  protected keyPair(random: RandomBytes) {
    const privateKey = createPrivateKey({
      key: { kty: 'OKP', crv: 'X25519', d: b64url(drawRandom(random, 32)), x: JWK_X_PLACEHOLDER },
      format: 'jwk',
    });
    const x = createPublicKey(privateKey).export({ format: 'jwk' }).x;
    const publicData = view(Buffer.from(x ?? '', 'base64url'));
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        let secret: Buffer;
        try {
          const publicKey = createPublicKey({
            key: { kty: 'OKP', crv: 'X25519', x: b64url(peer) },
            format: 'jwk',
          });
          secret = diffieHellman({ privateKey, publicKey });
        } catch {
          // OpenSSL refuses to return an all-zero X25519 result (RFC 7748 §6.1).
          throw badKeData(this.name, 'low-order point');
        }
        // RFC 8031 §2.3: an all-zero shared secret MUST be rejected.
        if (isAllZero(secret)) throw badKeData(this.name, 'all-zero shared secret');
        return view(secret);
      },
    };
  }
}

function keyExchangeFor(id: number): KeyExchangeMethod | undefined {
  const spec = KE_SPECS.get(id);
  if (spec === undefined) return undefined;
  if (id === KeyExchangeId.MODP_2048) return new NodeModp(spec);
  if (id === KeyExchangeId.CURVE25519) return new NodeX25519(spec);
  const group = EC_GROUPS.get(id);
  if (group !== undefined) return new NodeEcp(spec, group);
  // ML-KEM (35/36/37): node 20 has none. Node >= 24 has crypto.encapsulate, but it draws the
  // encapsulation randomness m from OpenSSL's RNG, which would break the injected-randomness rule
  // (STYLE.md rule 1), so node's ML-KEM is not wired even when present; nobleProvider serves it.
  return undefined;
}

/** node:crypto (OpenSSL) provider. Offers everything except ML-KEM. */
export const nodeProvider: CryptoProvider = assembleProvider({
  name: 'node',
  prf: (spec) => new NodePrf(spec),
  integrity: (spec) => new NodeIntegrity(spec),
  cipher: (spec) => new NodeCbc(spec),
  aead: (spec) => new NodeAead(spec),
  keyExchange: keyExchangeFor,
  // One-shot digest (node >= 20.12): no Hash object. A Hash is a native handle that the garbage
  // collector frees in a weak callback; a setup hashes 5 times (NAT detection, request digest), and
  // those frees were ~1.4 us each, more than the digests (in-memory pairs, scripts/bench/lib/
  // ike-pair.ts; docs/performance.md).
  // Several parts are joined in a buffer of their own, wiped after use: Buffer.concat would leave a
  // copy in node's shared allocation pool, and one caller hashes a KE seed (key-exchange.ts).
  hash(name, data) {
    if (data.length === 1) return view(oneShotHash(name, data[0]!, 'buffer'));
    const joined = concat(data);
    try {
      return view(oneShotHash(name, joined, 'buffer'));
    } finally {
      joined.fill(0);
    }
  },
});
