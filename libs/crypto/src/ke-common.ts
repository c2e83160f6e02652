/**
 * Parts of the key exchange methods that do not depend on the provider: group constants, the
 * draw of private values from the injected RandomBytes (so both providers derive the same key from
 * the same random octets, which the interop tests rely on), and peer-value checks that are plain
 * comparisons. No arithmetic on secrets happens here.
 */
import { LocalUsageError, RemoteProtocolError } from './errors.js';
import type { KeyExchangeSpec } from './algorithms.js';
import type { RandomBytes } from './provider.js';

/** RFC 3526 §3, the 2048-bit MODP group (IKEv2 group 14), generator 2. */
export const MODP_2048_PRIME_HEX =
  'ffffffffffffffffc90fdaa22168c234c4c6628b80dc1cd129024e088a67cc74020bbea63b139b22514a08798e3404dd' +
  'ef9519b3cd3a431b302b0a6df25f14374fe1356d6d51c245e485b576625e7ec6f44c42e9a637ed6b0bff5cb6f406b7ed' +
  'ee386bfb5a899fa5ae9f24117c4b1fe649286651ece45b3dc2007cb8a163bf0598da48361c55d39a69163fa8fd24cf5f' +
  '83655d23dca3ad961c62f356208552bb9ed529077096966d670c354e4abc9804f1746c08ca18217c32905e462e36ce3b' +
  'e39e772c180e86039b2783a2ec07a28fb5c55df06f4c52c9de2bcbf6955817183995497cea956ae515d2261898fa0510' +
  '15728e5a8aacaa68ffffffffffffffff';
export const MODP_2048_PRIME = BigInt(`0x${MODP_2048_PRIME_HEX}`);
export const MODP_2048_GENERATOR = 2n;
/**
 * Private exponent length: RFC 3526 §8 estimates the 2048-bit group at 110-160 bits of strength
 * and asks for an exponent of twice that, 220-320 bits; we take the upper end.
 */
export const MODP_2048_EXPONENT_BYTES = 40;

export interface EcGroup {
  /** node:crypto curve name. */
  readonly nodeCurve: 'prime256v1' | 'secp384r1' | 'secp521r1';
  /** Octets of a field element and of a scalar (RFC 5903 §6: x and y each this long). */
  readonly fieldBytes: number;
  /** Group order n (FIPS 186-4 D.1.2). Private keys are in [1, n-1]. */
  readonly order: bigint;
  /** Mask applied to the first random octet (P-521 keeps 1 bit of its 66th octet). */
  readonly topMask: number;
}

export const EC_GROUPS: ReadonlyMap<number, EcGroup> = new Map<number, EcGroup>([
  [
    19,
    {
      nodeCurve: 'prime256v1',
      fieldBytes: 32,
      order: 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n,
      topMask: 0xff,
    },
  ],
  [
    20,
    {
      nodeCurve: 'secp384r1',
      fieldBytes: 48,
      order:
        0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n,
      topMask: 0xff,
    },
  ],
  [
    21,
    {
      nodeCurve: 'secp521r1',
      fieldBytes: 66,
      order:
        0x1fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffa51868783bf2f966b7fcc0148f709a5d03bb5c9b8899c47aebb6fb71e91386409n,
      topMask: 0x01,
    },
  ],
]);

const MAX_DRAWS = 64;

export function drawRandom(random: RandomBytes, length: number): Uint8Array {
  const r = random(length);
  if (!(r instanceof Uint8Array) || r.length !== length) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_RANDOM',
      `RandomBytes returned the wrong length (wanted ${length})`,
    );
  }
  return r;
}

function toBigInt(b: Uint8Array): bigint {
  return b.length === 0
    ? 0n
    : BigInt(`0x${Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')}`);
}

/**
 * An EC private key by rejection sampling (FIPS 186-5 A.4.2): draw fieldBytes octets, mask the
 * top octet to the order's bit length, retry until the value is in [1, n-1]. Returns big-endian octets.
 */
export function drawEcScalar(group: EcGroup, random: RandomBytes): Uint8Array {
  for (let i = 0; i < MAX_DRAWS; i++) {
    const k = drawRandom(random, group.fieldBytes).slice();
    k[0] = k[0]! & group.topMask;
    const v = toBigInt(k);
    if (v >= 1n && v < group.order) return k;
  }
  throw new LocalUsageError('IKEGATE_ERR_CRYPTO_BAD_RANDOM', 'RandomBytes never produced a valid EC scalar');
}

/** A MODP private exponent x with 1 < x (MODP_2048_EXPONENT_BYTES octets, big-endian). */
export function drawModpExponent(random: RandomBytes): Uint8Array {
  for (let i = 0; i < MAX_DRAWS; i++) {
    const x = drawRandom(random, MODP_2048_EXPONENT_BYTES).slice();
    if (toBigInt(x) > 1n) return x;
  }
  throw new LocalUsageError(
    'IKEGATE_ERR_CRYPTO_BAD_RANDOM',
    'RandomBytes never produced a valid MODP exponent',
  );
}

/**
 * RFC 7296 §3.4 / RFC 6989 §2.1: a MODP public value y must satisfy 1 < y < p-1. The group is a
 * safe-prime group, so this range check also excludes the order-2 subgroup.
 */
export function checkModpPublic(y: Uint8Array): void {
  const v = toBigInt(y);
  if (v <= 1n || v >= MODP_2048_PRIME - 1n)
    throw badKeData('MODP_2048', 'public value out of range (1, p-1)');
}

export function badKeData(method: string, why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_CRYPTO_BAD_KE_DATA', `${method}: ${why}`);
}

export function checkKeLength(spec: KeyExchangeSpec, data: Uint8Array, expected: number, role: string): void {
  if (!(data instanceof Uint8Array) || data.length !== expected) {
    throw badKeData(spec.name, `${role} KE data is ${data?.length} octets, expected ${expected}`);
  }
}

/** Left-pads `b` with zeros to `length` (g^ir keeps the length of the prime, RFC 7296 §2.14). */
export function padStart(b: Uint8Array, length: number): Uint8Array {
  if (b.length === length) return b;
  const out = new Uint8Array(length);
  out.set(b, length - b.length);
  return out;
}

export function bigIntToBytes(v: bigint, length: number): Uint8Array {
  const hex = v.toString(16).padStart(length * 2, '0');
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

export { toBigInt as bytesToBigInt };
