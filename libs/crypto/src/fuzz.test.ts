/**
 * Hostile input (STYLE.md rule 12): key exchange data from the peer either works or raises
 * RemoteProtocolError; AEAD open with arbitrary input returns null and never throws.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzRuns, fuzzSeed, SeededRandom } from '@ikegate/testkit';
import fc from 'fast-check';
import { RemoteProtocolError } from './errors.js';
import { nobleProvider } from './noble-provider.js';
import { nodeProvider } from './node-provider.js';

const KE_IDS = [14, 19, 20, 21, 31, 35, 36, 37];
/** Key exchanges cost milliseconds each; these runs are bounded whatever fuzzRuns() says. */
const KE_RUNS = Math.min(fuzzRuns(), 400);

function onlyRemoteErrors(run: () => unknown): void {
  try {
    run();
  } catch (e) {
    if (!(e instanceof RemoteProtocolError) || e.code !== 'IKEGATE_ERR_CRYPTO_BAD_KE_DATA') throw e;
  }
}

for (const p of [nodeProvider, nobleProvider]) {
  describe(`${p.name} provider under hostile input`, () => {
    it('KE respond/complete with random octets of random length: a secret or RemoteProtocolError, nothing else', () => {
      const random = new SeededRandom(`fuzz-${p.name}`);
      const draw = (n: number) => random.bytes(n);
      const methods = KE_IDS.map((id) => p.keyExchange(id)).filter((m) => m !== undefined);
      const initiations = new Map(methods.map((m) => [m.id, m.initiate(draw)]));
      fc.assert(
        fc.property(
          fc.constantFrom(...methods),
          fc.boolean(),
          fc.oneof(fc.constant(-1), fc.nat({ max: 1600 })),
          fc.integer({ min: 0, max: 0xffff }),
          (ke, asResponder, len, salt) => {
            const expected = asResponder ? ke.initiatorDataLength : ke.responderDataLength;
            const data = new SeededRandom(salt).bytes(len < 0 ? expected : len);
            if (asResponder) onlyRemoteErrors(() => ke.respond(data, draw));
            else onlyRemoteErrors(() => initiations.get(ke.id)!.complete(data));
          },
        ),
        { numRuns: KE_RUNS, seed: fuzzSeed() },
      );
    });

    it('KE rejects boundary values: all zero, all 0xff, and one octet short or long', () => {
      for (const id of KE_IDS) {
        const ke = p.keyExchange(id);
        if (ke === undefined) continue;
        const n = ke.initiatorDataLength;
        for (const data of [
          new Uint8Array(n),
          new Uint8Array(n).fill(0xff),
          new Uint8Array(n - 1),
          new Uint8Array(n + 1),
        ]) {
          onlyRemoteErrors(() => ke.respond(data, (k) => new Uint8Array(k).fill(7)));
        }
        if (id === 14 || (id >= 19 && id <= 21) || id === 31) {
          // DH groups: zero is never a valid public value (RFC 6989, RFC 5903 §7, RFC 8031 §2.3).
          assert.throws(
            () => ke.respond(new Uint8Array(n), (k) => new Uint8Array(k).fill(7)),
            RemoteProtocolError,
          );
        }
      }
    });

    it('AEAD open with random iv, aad and ciphertext returns null and never throws', () => {
      const keys = (
        [
          [20, 128],
          [20, 256],
          [28, 256],
        ] as const
      ).map(([id, bits]) => {
        const a = p.aead(id, bits)!;
        return a.create(new Uint8Array(a.keyLength).fill(0x42));
      });
      fc.assert(
        fc.property(
          fc.constantFrom(...keys),
          fc.oneof(fc.uint8Array({ minLength: 8, maxLength: 8 }), fc.uint8Array({ maxLength: 12 })),
          fc.uint8Array({ maxLength: 32 }),
          fc.uint8Array({ maxLength: 200 }),
          (key, iv, aad, body) => {
            assert.equal(key.open(iv, aad, body), null);
          },
        ),
        { numRuns: fuzzRuns(), seed: fuzzSeed() },
      );
    });
  });
}
