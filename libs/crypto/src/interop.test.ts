/**
 * nodeProvider and nobleProvider must be interchangeable: same outputs for the same inputs, and a
 * key exchange run with one role on each. MODP-2048 is checked against a test-only BigInt reference
 * (no RFC known-answer vector exists for group 14).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzSeed, SeededRandom, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { defaultProvider } from './default-provider.js';
import { MODP_2048_PRIME } from './ke-common.js';
import { nobleProvider } from './noble-provider.js';
import { nodeProvider } from './node-provider.js';

const RUNS = 200;
const params = { numRuns: RUNS, seed: fuzzSeed() };
const AEADS = [
  [20, 128],
  [20, 192],
  [20, 256],
  [28, 256],
] as const;

describe('node vs noble interop (fast-check)', () => {
  it('AEAD: same ciphertext for the same key, iv, aad and plaintext, and each opens the other', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...AEADS),
        fc.uint8Array({ minLength: 36, maxLength: 36 }),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        fc.uint8Array({ maxLength: 64 }),
        fc.uint8Array({ maxLength: 600 }),
        ([id, bits], km, iv, aad, pt) => {
          const a = nodeProvider.aead(id, bits)!;
          const key = km.subarray(0, a.keyLength);
          const n = a.create(key);
          const b = nobleProvider.aead(id, bits)!.create(key);
          const c = n.seal(iv, aad, pt);
          assert.equal(toHex(b.seal(iv, aad, pt)), toHex(c));
          assert.equal(toHex(b.open(iv, aad, c)!), toHex(pt));
          assert.equal(toHex(n.open(iv, aad, c)!), toHex(pt));
        },
      ),
      params,
    );
  });

  it('PRF, integrity, CBC and hash agree', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(2, 5, 6, 7),
        fc.constantFrom(2, 12, 13, 14),
        fc.constantFrom(128, 192, 256),
        fc.uint8Array({ minLength: 64, maxLength: 64 }),
        fc.uint8Array({ maxLength: 300 }),
        fc.nat({ max: 20 }),
        (prfId, integId, bits, keyBytes, data, blocks) => {
          const pk = keyBytes.subarray(0, 1 + (keyBytes[0]! % 63));
          assert.equal(
            toHex(nodeProvider.prf(prfId)!.compute(pk, data)),
            toHex(nobleProvider.prf(prfId)!.compute(pk, data)),
          );
          const integ = nodeProvider.integrity(integId)!;
          const ik = keyBytes.subarray(0, integ.keyLength);
          const icv = integ.create(ik).compute(data);
          assert.equal(toHex(nobleProvider.integrity(integId)!.create(ik).compute(data)), toHex(icv));
          assert.equal(nobleProvider.integrity(integId)!.create(ik).verify(icv, data), true);
          const ck = keyBytes.subarray(0, bits / 8);
          const iv = keyBytes.subarray(40, 56);
          const pt = new Uint8Array(16 * blocks).fill(data.length & 0xff);
          const ct = nodeProvider.cipher(12, bits)!.create(ck).encrypt(iv, pt);
          assert.equal(toHex(nobleProvider.cipher(12, bits)!.create(ck).encrypt(iv, pt)), toHex(ct));
          assert.equal(toHex(nobleProvider.cipher(12, bits)!.create(ck).decrypt(iv, ct)), toHex(pt));
          for (const h of ['sha1', 'sha256', 'sha384', 'sha512'] as const) {
            assert.equal(toHex(nodeProvider.hash(h, data, pk)), toHex(nobleProvider.hash(h, data, pk)));
          }
        },
      ),
      params,
    );
  });

  it('key exchanges: node initiator with noble responder and vice versa derive the same secret', () => {
    fc.assert(
      fc.property(fc.constantFrom(19, 20, 21, 31), fc.nat(), (id, seed) => {
        const r1 = new SeededRandom(seed);
        const r2 = new SeededRandom(seed);
        const random1 = (n: number) => r1.bytes(n);
        const random2 = (n: number) => r2.bytes(n);
        const a = nodeProvider.keyExchange(id)!.initiate(random1);
        const b = nobleProvider.keyExchange(id)!.initiate(random2);
        assert.equal(toHex(a.publicData), toHex(b.publicData), 'same private value, same public value');
        const rb = nobleProvider.keyExchange(id)!.respond(a.publicData, random1);
        const ra = nodeProvider.keyExchange(id)!.respond(b.publicData, random2);
        assert.equal(toHex(ra.publicData), toHex(rb.publicData));
        assert.equal(toHex(a.complete(rb.publicData)), toHex(rb.sharedSecret));
        assert.equal(toHex(ra.sharedSecret), toHex(rb.sharedSecret));
      }),
      { numRuns: 20, seed: fuzzSeed() },
    );
  });
});

/** Test-only square-and-multiply, the independent reference for g^x mod p. */
function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let result = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) result = (result * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return result;
}

const big = (b: Uint8Array) => BigInt(`0x${toHex(b) || '0'}`);

describe('MODP-2048 (group 14, RFC 3526 §3)', () => {
  for (const p of [nodeProvider, nobleProvider]) {
    it(`${p.name}: public value is 2^x mod p by an independent BigInt reference, and both sides agree`, () => {
      for (const seed of [1, 2, 3]) {
        const draws: Uint8Array[] = [];
        const rng = new SeededRandom(`modp-${seed}`);
        const random = (n: number) => {
          const b = rng.bytes(n);
          draws.push(b);
          return b;
        };
        const ke = p.keyExchange(14)!;
        const init = ke.initiate(random);
        const x = big(draws[0]!);
        assert.equal(draws[0]!.length, 40, '320-bit exponent (RFC 3526 §8)');
        assert.equal(init.publicData.length, 256);
        assert.equal(big(init.publicData), modPow(2n, x, MODP_2048_PRIME));
        const resp = ke.respond(init.publicData, random);
        const y = big(draws[1]!);
        assert.equal(big(resp.sharedSecret), modPow(big(init.publicData), y, MODP_2048_PRIME));
        assert.deepEqual(init.complete(resp.publicData), resp.sharedSecret);
        assert.equal(resp.sharedSecret.length, 256, 'g^ir keeps the length of the prime (RFC 7296 §2.14)');
      }
    });
  }

  it('the RFC 3526 prime in ke-common equals node:crypto built-in modp14', async () => {
    const { getDiffieHellman } = await import('node:crypto');
    assert.equal(getDiffieHellman('modp14').getPrime('hex'), MODP_2048_PRIME.toString(16));
  });
});

describe('defaultProvider', () => {
  it('serves every IKEv2 algorithm ikegate negotiates, ML-KEM from noble', () => {
    for (const id of [2, 5, 6, 7]) assert.ok(defaultProvider.prf(id));
    for (const id of [2, 12, 13, 14]) assert.ok(defaultProvider.integrity(id));
    for (const bits of [128, 192, 256]) assert.ok(defaultProvider.cipher(12, bits));
    for (const [id, bits] of AEADS) assert.ok(defaultProvider.aead(id, bits));
    for (const id of [14, 19, 20, 21, 31, 35, 36, 37]) assert.ok(defaultProvider.keyExchange(id), `KE ${id}`);
    assert.equal(defaultProvider.keyExchange(36), nobleProvider.keyExchange(36));
    assert.equal(defaultProvider.aead(20, 256), nodeProvider.aead(20, 256));
  });

  it('returns undefined for algorithms nobody offers', () => {
    assert.equal(defaultProvider.prf(4), undefined);
    assert.equal(defaultProvider.aead(20, 64), undefined);
    assert.equal(defaultProvider.cipher(3, 128), undefined);
    assert.equal(defaultProvider.keyExchange(2), undefined);
    assert.equal(defaultProvider.integrity(1), undefined);
  });
});
