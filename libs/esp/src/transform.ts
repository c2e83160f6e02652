/**
 * The per-SA cryptographic step of ESP, behind one small interface so that the SA code does not
 * care whether it drives an AEAD or CBC+HMAC. Buffers are owned by the caller (the SA); the only
 * state here is scratch for the AAD, IV and ESN high half, reused on every packet.
 *
 * AEAD (RFC 4106 §5, RFC 7634 §2.1): AAD = SPI | SN, or SPI | SN-high | SN-low with ESN;
 * nonce = salt | IV is built by the provider; the ICV is the tag.
 * CBC + HMAC (RFC 4303 §3.3.2.1): ICV = HMAC over SPI | SN | IV | ciphertext, with SN-high
 * appended (never transmitted) when ESN is on; truncated per RFC 4868.
 */
import type { AeadKey, CipherKey, IntegrityKey } from '@ikegate/crypto';
import { ESP_HEADER_LENGTH } from './constants.js';
import { LocalUsageError } from './errors.js';
import { writeU32 } from './packet.js';
import type { EspSuite } from './suite.js';

export interface EspTransform {
  readonly ivLength: number;
  readonly icvLength: number;
  /** The ciphertext must be a multiple of this (1 for an AEAD). */
  readonly blockSize: number;
  /** Padded plaintext length is a multiple of this (RFC 4303 §2.4: block size, at least 4). */
  readonly alignment: number;
  /**
   * `packet` holds SPI | SN | IV in its first ESP_HEADER_LENGTH + ivLength octets; `body` is the
   * view of `packet` right after the IV. Encrypts `plaintext` into `body`, writes the ICV after it,
   * and returns the packet length.
   */
  seal(packet: Uint8Array, body: Uint8Array, plaintext: Uint8Array, iv: Uint8Array, seqHi: number): number;
  /**
   * Verifies the ICV of `packet` (whose lengths the caller has checked) and decrypts into `out`.
   * Returns the plaintext length, or -1 when integrity fails.
   */
  open(packet: Uint8Array, seqHi: number, out: Uint8Array): number;
  /**
   * A copy of the keying material the transform was made from, in RFC 7296 §2.17 order (encryption
   * key, salt included, then integrity key): for the SA's snapshot; never for logs.
   */
  exportKeyMaterial(): Uint8Array;
}

export function createTransform(suite: EspSuite, esn: boolean): EspTransform {
  if (suite.kind === 'aead') {
    if (suite.aead.ivLength !== 8)
      throw new LocalUsageError(
        'IKEGATE_ERR_ESP_UNSUPPORTED_ALGORITHM',
        `${suite.aead.name}: IV must be 8 octets`,
      );
    return new AeadTransform(suite.aead.create(suite.keyMaterial), suite.aead.icvLength, esn);
  }
  return new CbcHmacTransform(
    suite.cipher.create(suite.encryptionKey),
    suite.cipher.ivLength,
    suite.cipher.blockSize,
    suite.integrity.create(suite.integrityKey),
    suite.integrity.icvLength,
    esn,
  );
}

/**
 * Scratch for the AAD and the received IV, shared by every AEAD transform of the thread: seal and
 * open use them synchronously and the AEAD copies them, so an SA holds no buffer of its own for
 * them (issue #14: memory per SA).
 */
const AAD_SPI_SEQ = new Uint8Array(8);
const AAD_SPI_ESN_SEQ = new Uint8Array(12);
const OPEN_IV = new Uint8Array(8);

class AeadTransform implements EspTransform {
  readonly ivLength = 8;
  readonly blockSize = 1;
  readonly alignment = 4;
  constructor(
    readonly key: AeadKey,
    readonly icvLength: number,
    readonly esn: boolean,
  ) {}

  exportKeyMaterial(): Uint8Array {
    return this.key.exportKeyMaterial();
  }

  #fillAad(packet: Uint8Array, seqHi: number): Uint8Array {
    const aad = this.esn ? AAD_SPI_ESN_SEQ : AAD_SPI_SEQ;
    aad[0] = packet[0]!;
    aad[1] = packet[1]!;
    aad[2] = packet[2]!;
    aad[3] = packet[3]!;
    const at = this.esn ? 8 : 4;
    if (this.esn) writeU32(aad, 4, seqHi);
    aad[at] = packet[4]!;
    aad[at + 1] = packet[5]!;
    aad[at + 2] = packet[6]!;
    aad[at + 3] = packet[7]!;
    return aad;
  }

  seal(packet: Uint8Array, body: Uint8Array, plaintext: Uint8Array, iv: Uint8Array, seqHi: number): number {
    const sealed = this.key.seal(iv, this.#fillAad(packet, seqHi), plaintext, body);
    return ESP_HEADER_LENGTH + 8 + sealed.length;
  }

  open(packet: Uint8Array, seqHi: number, out: Uint8Array): number {
    const iv = OPEN_IV;
    for (let i = 0; i < 8; i++) iv[i] = packet[ESP_HEADER_LENGTH + i]!;
    const opened = this.key.open(
      iv,
      this.#fillAad(packet, seqHi),
      packet.subarray(ESP_HEADER_LENGTH + 8),
      out,
    );
    return opened === null ? -1 : opened.length;
  }
}

class CbcHmacTransform implements EspTransform {
  readonly alignment: number;
  readonly #high = new Uint8Array(4);
  constructor(
    readonly cipher: CipherKey,
    readonly ivLength: number,
    readonly blockSize: number,
    readonly integrity: IntegrityKey,
    readonly icvLength: number,
    readonly esn: boolean,
  ) {
    this.alignment = Math.max(4, blockSize);
  }

  exportKeyMaterial(): Uint8Array {
    const encryption = this.cipher.exportKeyMaterial();
    const integrity = this.integrity.exportKeyMaterial();
    const material = new Uint8Array(encryption.length + integrity.length);
    material.set(encryption, 0);
    material.set(integrity, encryption.length);
    encryption.fill(0);
    integrity.fill(0);
    return material;
  }

  seal(packet: Uint8Array, body: Uint8Array, plaintext: Uint8Array, iv: Uint8Array, seqHi: number): number {
    const ct = this.cipher.encrypt(iv, plaintext, body);
    const covered = ESP_HEADER_LENGTH + this.ivLength + ct.length;
    const data = packet.subarray(0, covered);
    let icv: Uint8Array;
    if (this.esn) {
      writeU32(this.#high, 0, seqHi);
      icv = this.integrity.compute(data, this.#high);
    } else icv = this.integrity.compute(data);
    packet.set(icv, covered);
    return covered + this.icvLength;
  }

  open(packet: Uint8Array, seqHi: number, out: Uint8Array): number {
    const covered = packet.length - this.icvLength;
    const data = packet.subarray(0, covered);
    const icv = packet.subarray(covered);
    let ok: boolean;
    if (this.esn) {
      writeU32(this.#high, 0, seqHi);
      ok = this.integrity.verify(icv, data, this.#high);
    } else ok = this.integrity.verify(icv, data);
    if (!ok) return -1;
    const ivEnd = ESP_HEADER_LENGTH + this.ivLength;
    return this.cipher.decrypt(
      packet.subarray(ESP_HEADER_LENGTH, ivEnd),
      packet.subarray(ivEnd, covered),
      out,
    ).length;
  }
}
