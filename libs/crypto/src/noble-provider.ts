/**
 * CryptoProvider over @noble (pure JavaScript, audited). Offers everything nodeProvider does plus
 * ML-KEM (FIPS 203). Per-key state is built once in `create()`: for HMAC the keyed inner/outer
 * hash states (cloned per message into one scratch instance), for the ciphers a copy of the key.
 * noble's AES-GCM and ChaCha20-Poly1305 take key and nonce together, so their key schedule is
 * redone per message — a property of the library, visible in the benchmark.
 *
 * MODP-2048 uses noble's modular `pow` over BigInt, which is neither constant-time nor fast; it is
 * here as an independent second implementation for interop tests, and defaultProvider never picks
 * it (see default-provider.ts).
 */
import { cbc, gcm } from '@noble/ciphers/aes.js';
import { chacha20poly1305 } from '@noble/ciphers/chacha.js';
import { pow } from '@noble/curves/abstract/modular.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { p256, p384, p521 } from '@noble/curves/nist.js';
import { type _HMAC, hmac } from '@noble/hashes/hmac.js';
import { sha1 } from '@noble/hashes/legacy.js';
import { sha256, sha384, sha512 } from '@noble/hashes/sha2.js';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
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
} from './algorithms.js';
import {
  badKeData,
  bigIntToBytes,
  bytesToBigInt,
  checkKeLength,
  checkModpPublic,
  drawEcScalar,
  drawModpExponent,
  drawRandom,
  EC_GROUPS,
  type EcGroup,
  MODP_2048_GENERATOR,
  MODP_2048_PRIME,
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

const HASHES = { sha1, sha256, sha384, sha512 } as const;

// --- PRF, integrity, hash -------------------------------------------------------------------

class NoblePrf implements PrfAlgorithm {
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
    const h = hmac.create(HASHES[this.#hash], key);
    for (const d of data) h.update(d);
    return h.digest();
  }
}

class NobleIntegrityKey implements IntegrityKey {
  /** Keyed HMAC state (ipad/opad blocks absorbed); never finalized, only cloned. */
  readonly #keyed: _HMAC<never>;
  readonly #scratch: _HMAC<never>;
  readonly #digest: Uint8Array;
  readonly #icvLength: number;
  /** For exportKeyMaterial only (the HMAC state does not give the key back). */
  readonly #key: Uint8Array;
  constructor(spec: IntegritySpec, key: Uint8Array) {
    this.#key = key.slice();
    this.#keyed = hmac.create(HASHES[spec.hash], key) as _HMAC<never>;
    this.#scratch = this.#keyed._cloneInto();
    this.#digest = new Uint8Array(this.#keyed.outputLen);
    this.#icvLength = spec.icvLength;
  }
  /** The full HMAC into the reused digest buffer. */
  #full(data: Uint8Array[]): Uint8Array {
    const h = this.#keyed._cloneInto(this.#scratch);
    for (const d of data) h.update(d);
    h.digestInto(this.#digest);
    return this.#digest;
  }
  compute(...data: Uint8Array[]): Uint8Array {
    return this.#full(data).slice(0, this.#icvLength);
  }
  verify(icv: Uint8Array, ...data: Uint8Array[]): boolean {
    if (icv.length !== this.#icvLength) return false;
    const full = this.#full(data);
    let diff = 0;
    for (let i = 0; i < icv.length; i++) diff |= full[i]! ^ icv[i]!;
    return diff === 0;
  }
  exportKeyMaterial(): Uint8Array {
    return this.#key.slice();
  }
}

class NobleIntegrity implements IntegrityAlgorithm {
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
    return new NobleIntegrityKey(this.spec, key);
  }
}

// --- AES-CBC --------------------------------------------------------------------------------

class NobleCbcKey implements CipherKey {
  readonly #key: Uint8Array;
  constructor(key: Uint8Array) {
    this.#key = key.slice();
  }
  encrypt(iv: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    checkIvLength('AES-CBC encrypt', iv, 16);
    checkBlockMultiple('AES-CBC encrypt', plaintext.length, 16);
    const result = outputBuffer(out, plaintext.length, 'AES-CBC encrypt');
    return cbc(this.#key, iv, { disablePadding: true }).encrypt(plaintext, result);
  }
  decrypt(iv: Uint8Array, ciphertext: Uint8Array, out?: Uint8Array): Uint8Array {
    checkIvLength('AES-CBC decrypt', iv, 16);
    checkBlockMultiple('AES-CBC decrypt', ciphertext.length, 16);
    const result = outputBuffer(out, ciphertext.length, 'AES-CBC decrypt');
    return cbc(this.#key, iv, { disablePadding: true }).decrypt(ciphertext, result);
  }
  exportKeyMaterial(): Uint8Array {
    return this.#key.slice();
  }
}

class NobleCbc implements CipherAlgorithm {
  readonly id;
  readonly name;
  readonly keyLength;
  readonly blockSize = 16;
  readonly ivLength = 16;
  constructor(spec: CbcSpec) {
    this.id = spec.id;
    this.name = spec.name;
    this.keyLength = spec.keyLength;
  }
  create(key: Uint8Array): CipherKey {
    checkKeyLength(this.name, key, this.keyLength);
    return new NobleCbcKey(key);
  }
}

// --- AEAD -----------------------------------------------------------------------------------

class NobleAeadKey implements AeadKey {
  readonly #key: Uint8Array;
  readonly #nonce = new Uint8Array(12);
  readonly #chacha: boolean;
  readonly #name: string;
  constructor(spec: AeadSpec, keyMaterial: Uint8Array) {
    this.#name = spec.name;
    this.#chacha = spec.kind === 'chacha20-poly1305';
    this.#key = keyMaterial.slice(0, spec.cipherKeyLength);
    this.#nonce.set(keyMaterial.subarray(spec.cipherKeyLength), 0);
  }
  seal(iv: Uint8Array, aad: Uint8Array, plaintext: Uint8Array, out?: Uint8Array): Uint8Array {
    checkIvLength(this.#name, iv, 8);
    this.#nonce.set(iv, 4);
    const result = outputBuffer(out, plaintext.length + 16, this.#name);
    if (this.#chacha) return chacha20poly1305(this.#key, this.#nonce, aad).encrypt(plaintext, result);
    result.set(gcm(this.#key, this.#nonce, aad).encrypt(plaintext));
    return result;
  }
  open(iv: Uint8Array, aad: Uint8Array, ciphertextAndIcv: Uint8Array, out?: Uint8Array): Uint8Array | null {
    if (iv.length !== 8 || ciphertextAndIcv.length < 16) return null;
    this.#nonce.set(iv, 4);
    const n = ciphertextAndIcv.length - 16;
    try {
      if (this.#chacha) {
        // noble verifies the tag before writing any plaintext into `result`.
        const result = outputBuffer(out, n, this.#name);
        return chacha20poly1305(this.#key, this.#nonce, aad).decrypt(ciphertextAndIcv, result);
      }
      const plain = gcm(this.#key, this.#nonce, aad).decrypt(ciphertextAndIcv);
      if (out === undefined) return plain;
      const result = outputBuffer(out, n, this.#name);
      result.set(plain);
      return result;
    } catch {
      return null;
    }
  }
  exportKeyMaterial(): Uint8Array {
    const material = new Uint8Array(this.#key.length + 4);
    material.set(this.#key, 0);
    material.set(this.#nonce.subarray(0, 4), this.#key.length);
    return material;
  }
}

class NobleAead implements AeadAlgorithm {
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
    return new NobleAeadKey(this.spec, keyMaterial);
  }
}

// --- Key exchange ---------------------------------------------------------------------------

abstract class NobleKeyExchange implements KeyExchangeMethod {
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
  abstract initiate(random: RandomBytes): KeyExchangeInitiation;
  abstract respond(
    initiatorData: Uint8Array,
    random: RandomBytes,
  ): { publicData: Uint8Array; sharedSecret: Uint8Array };
}

/** Diffie-Hellman: both roles make a key pair and agree with the peer's public value. */
abstract class NobleDh extends NobleKeyExchange {
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

class NobleModp extends NobleDh {
  protected keyPair(random: RandomBytes) {
    const x = bytesToBigInt(drawModpExponent(random));
    const publicData = bigIntToBytes(pow(MODP_2048_GENERATOR, x, MODP_2048_PRIME), 256);
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        checkModpPublic(peer);
        return bigIntToBytes(pow(bytesToBigInt(peer), x, MODP_2048_PRIME), 256);
      },
    };
  }
}

const NOBLE_CURVES = { 19: p256, 20: p384, 21: p521 } as const;

class NobleEcp extends NobleDh {
  readonly #curve: typeof p256;
  constructor(
    spec: KeyExchangeSpec,
    readonly group: EcGroup,
  ) {
    super(spec);
    this.#curve = NOBLE_CURVES[spec.id as 19 | 20 | 21];
  }
  protected keyPair(random: RandomBytes) {
    const sk = drawEcScalar(this.group, random);
    // RFC 5903 §7: x | y without the SEC1 0x04 prefix.
    const publicData = this.#curve.getPublicKey(sk, false).subarray(1);
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        const sec1 = new Uint8Array(peer.length + 1);
        sec1[0] = 0x04;
        sec1.set(peer, 1);
        let shared: Uint8Array;
        try {
          // Point.fromBytes rejects coordinates >= p and points not on the curve.
          shared = this.#curve.getSharedSecret(sk, sec1, true);
        } catch {
          throw badKeData(this.name, 'point is not on the curve');
        }
        // Compressed encoding is 0x02/0x03 | x; RFC 5903 §7 keeps x only.
        return shared.subarray(1);
      },
    };
  }
}

class NobleX25519 extends NobleDh {
  protected keyPair(random: RandomBytes) {
    const sk = drawRandom(random, 32).slice();
    const publicData = x25519.getPublicKey(sk);
    return {
      publicData,
      agree: (peer: Uint8Array) => {
        let secret: Uint8Array;
        try {
          secret = x25519.getSharedSecret(sk, peer);
        } catch {
          throw badKeData(this.name, 'low-order point');
        }
        // RFC 8031 §2.3: an all-zero shared secret MUST be rejected.
        if (isAllZero(secret)) throw badKeData(this.name, 'all-zero shared secret');
        return secret;
      },
    };
  }
}

const NOBLE_KEMS = { 35: ml_kem512, 36: ml_kem768, 37: ml_kem1024 } as const;

/**
 * ML-KEM in IKEv2 (draft-ietf-ipsecme-ikev2-mlkem §2): the initiator sends its encapsulation key
 * (keygen from a fresh 64-octet seed d | z), the responder answers with the ciphertext
 * (encapsulation with a fresh 32-octet m), and both use the 32-octet shared secret.
 */
class NobleMlKem extends NobleKeyExchange {
  readonly #kem: typeof ml_kem768;
  constructor(spec: KeyExchangeSpec) {
    super(spec);
    this.#kem = NOBLE_KEMS[spec.id as 35 | 36 | 37];
  }
  initiate(random: RandomBytes): KeyExchangeInitiation {
    const { publicKey, secretKey } = this.#kem.keygen(drawRandom(random, 64).slice());
    return {
      publicData: publicKey,
      complete: (responderData: Uint8Array) => {
        checkKeLength(this.spec, responderData, this.responderDataLength, 'responder');
        try {
          // Any ciphertext of the right length decapsulates (implicit rejection, FIPS 203 §6.3).
          return this.#kem.decapsulate(responderData, secretKey);
        } catch {
          throw badKeData(this.name, 'ciphertext rejected');
        }
      },
    };
  }
  respond(
    initiatorData: Uint8Array,
    random: RandomBytes,
  ): { publicData: Uint8Array; sharedSecret: Uint8Array } {
    checkKeLength(this.spec, initiatorData, this.initiatorDataLength, 'initiator');
    const m = drawRandom(random, 32).slice();
    let r: { cipherText: Uint8Array; sharedSecret: Uint8Array };
    try {
      // FIPS 203 §7.2 input check: the encapsulation key's coefficients must be reduced mod q.
      r = this.#kem.encapsulate(initiatorData, m);
    } catch {
      throw badKeData(this.name, 'encapsulation key fails the FIPS 203 modulus check');
    }
    return { publicData: r.cipherText, sharedSecret: r.sharedSecret };
  }
}

function keyExchangeFor(id: number): KeyExchangeMethod | undefined {
  const spec = KE_SPECS.get(id);
  if (spec === undefined) return undefined;
  if (id === KeyExchangeId.MODP_2048) return new NobleModp(spec);
  if (id === KeyExchangeId.CURVE25519) return new NobleX25519(spec);
  const group = EC_GROUPS.get(id);
  if (group !== undefined) return new NobleEcp(spec, group);
  return new NobleMlKem(spec);
}

/** @noble provider: pure JavaScript. Offers every primitive, ML-KEM included. */
export const nobleProvider: CryptoProvider = assembleProvider({
  name: 'noble',
  prf: (spec) => new NoblePrf(spec),
  integrity: (spec) => new NobleIntegrity(spec),
  cipher: (spec) => new NobleCbc(spec),
  aead: (spec) => new NobleAead(spec),
  keyExchange: keyExchangeFor,
  hash(name, data) {
    const h = HASHES[name].create();
    for (const d of data) h.update(d);
    return h.digest();
  },
});
