/**
 * SA values at rest: AES-256-GCM under a key-encryption key (KEK) from the process settings.
 *
 *   sealed = | format (1) = 0x01 | KEK id (1) | nonce (12, random per write) | ciphertext | tag (16) |
 *   AAD    = "ikegate-sa" | format | KEK id | shard (4, big-endian) | SA key (UTF-8)
 *
 * The AAD binds a value to its shard and key, so a value copied to another SA key fails to open
 * rather than being served as that SA. The KEK id selects the key on open, so a keyring with the
 * new KEK as `current` and the old one in `previous` reads both while every new write uses the new
 * one (rotation). Random 96-bit nonces: NIST SP 800-38D §8.3 caps one key at 2^32 seals; rotate the
 * KEK (new id) long before a deployment writes that many values.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { LocalUsageError, SealedValueError } from './errors.js';

export interface Kek {
  /** 0..255, stored in every sealed value. */
  readonly id: number;
  /** 32 octets (AES-256). */
  readonly key: Uint8Array;
}

export interface Keyring {
  /** Seals every new value; opens values sealed under its id. */
  readonly current: Kek;
  /** Retired KEKs, only for opening values written before a rotation. */
  readonly previous?: readonly Kek[];
}

export const SEAL_FORMAT = 0x01;
const NONCE_LENGTH = 12;
const TAG_LENGTH = 16;
const HEADER_LENGTH = 2 + NONCE_LENGTH;
const AAD_LABEL = Buffer.from('ikegate-sa', 'ascii');
const KEK_LENGTH = 32;

function checkKek(kek: Kek): void {
  if (!Number.isInteger(kek.id) || kek.id < 0 || kek.id > 255) {
    throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_KEK', `KEK id must be 0..255, got ${kek.id}`);
  }
  if (!(kek.key instanceof Uint8Array) || kek.key.length !== KEK_LENGTH) {
    throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_KEK', `KEK ${kek.id} must be ${KEK_LENGTH} octets`);
  }
}

function aad(keyId: number, shard: number, key: string): Buffer {
  const fixed = Buffer.alloc(6);
  fixed[0] = SEAL_FORMAT;
  fixed[1] = keyId;
  fixed.writeUInt32BE(shard, 2);
  return Buffer.concat([AAD_LABEL, fixed, Buffer.from(key, 'utf8')]);
}

/** Seals and opens SA values for one keyring. Holds copies of the KEKs. */
export class Sealer {
  private readonly current: Kek;
  private readonly byId = new Map<number, Buffer>();

  constructor(keyring: Keyring) {
    checkKek(keyring.current);
    this.current = { id: keyring.current.id, key: Buffer.from(keyring.current.key) };
    for (const k of [keyring.current, ...(keyring.previous ?? [])]) {
      checkKek(k);
      if (this.byId.has(k.id)) {
        throw new LocalUsageError('IKEGATE_ERR_STORE_BAD_KEK', `KEK id ${k.id} appears twice in the keyring`);
      }
      this.byId.set(k.id, Buffer.from(k.key));
    }
  }

  /** A new buffer holding `value` sealed for (shard, key) under the current KEK; `value` is not kept. */
  seal(shard: number, key: string, value: Uint8Array): Uint8Array {
    const nonce = randomBytes(NONCE_LENGTH);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, nonce, { authTagLength: TAG_LENGTH });
    cipher.setAAD(aad(this.current.id, shard, key));
    const body = cipher.update(value);
    const final = cipher.final();
    const header = Buffer.from([SEAL_FORMAT, this.current.id]);
    return new Uint8Array(Buffer.concat([header, nonce, body, final, cipher.getAuthTag()]));
  }

  /**
   * The plaintext of a value sealed for (shard, key), as a new buffer.
   * @throws SealedValueError IKEGATE_ERR_STORE_UNKNOWN_KEK when its KEK id is not in the keyring;
   *   IKEGATE_ERR_STORE_UNSEAL when it is malformed or fails authentication (wrong KEK, moved, altered).
   */
  open(shard: number, key: string, sealed: Uint8Array): Uint8Array {
    const where = `SA value of shard ${shard} key ${key}`;
    if (sealed.length < HEADER_LENGTH + TAG_LENGTH || sealed[0] !== SEAL_FORMAT) {
      throw new SealedValueError(
        'IKEGATE_ERR_STORE_UNSEAL',
        `${where} is not a sealed value (format ${sealed[0] ?? 'none'}, ${sealed.length} octets)`,
      );
    }
    const keyId = sealed[1]!;
    const kek = this.byId.get(keyId);
    if (kek === undefined) {
      throw new SealedValueError(
        'IKEGATE_ERR_STORE_UNKNOWN_KEK',
        `${where} was sealed with KEK id ${keyId}, which is not in the configured keyring`,
      );
    }
    const nonce = sealed.subarray(2, HEADER_LENGTH);
    const body = sealed.subarray(HEADER_LENGTH, sealed.length - TAG_LENGTH);
    const tag = sealed.subarray(sealed.length - TAG_LENGTH);
    const decipher = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG_LENGTH });
    decipher.setAAD(aad(keyId, shard, key));
    decipher.setAuthTag(tag);
    try {
      return new Uint8Array(Buffer.concat([decipher.update(body), decipher.final()]));
    } catch {
      throw new SealedValueError(
        'IKEGATE_ERR_STORE_UNSEAL',
        `${where} failed authentication under KEK id ${keyId}: the configured KEK is not the one it was ` +
          'sealed with, or the value was altered or moved at rest',
      );
    }
  }
}
