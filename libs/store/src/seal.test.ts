import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { LocalUsageError, SealedValueError } from './errors.js';
import { SEAL_FORMAT, Sealer } from './seal.js';
import { startRedisServer } from './testing/redis-server.js';

const kek = (id: number, fill: number) => ({ id, key: new Uint8Array(32).fill(fill) });

describe('SA values sealed at rest (ARCHITECTURE.md: keys encrypted with a KEK)', () => {
  const sealer = new Sealer({ current: kek(7, 1), previous: [kek(3, 2)] });

  test('open(seal(v)) is v for any value, shard and key, under the current KEK id', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 512 }),
        fc.nat(65535),
        fc.stringMatching(/^[a-z0-9:]{1,20}$/),
        (v, shard, key) => {
          const sealed = sealer.seal(shard, key, v);
          assert.equal(sealed[0], SEAL_FORMAT);
          assert.equal(sealed[1], 7);
          assert.deepEqual(sealer.open(shard, key, sealed), v);
        },
      ),
    );
  });

  test('any single flipped bit, another shard or another key fails with SealedValueError, never garbage', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (v, at) => {
        const sealed = sealer.seal(1, 'k', v);
        const bad = sealed.slice();
        const bit = at % (bad.length * 8);
        bad[bit >> 3]! ^= 1 << (bit & 7);
        assert.throws(() => sealer.open(1, 'k', bad), SealedValueError);
        assert.throws(() => sealer.open(2, 'k', sealed), SealedValueError);
        assert.throws(() => sealer.open(1, 'k2', sealed), SealedValueError);
      }),
    );
  });

  test('values sealed under a previous KEK open after rotation; an unknown KEK id is named in the error', () => {
    const old = new Sealer({ current: kek(3, 2) });
    const sealed = old.seal(0, 'k', new Uint8Array([1, 2, 3]));
    assert.deepEqual(sealer.open(0, 'k', sealed), new Uint8Array([1, 2, 3]));
    assert.throws(
      () => new Sealer({ current: kek(9, 9) }).open(0, 'k', sealed),
      (e: unknown) =>
        e instanceof SealedValueError && e.code === 'IKEGATE_ERR_STORE_UNKNOWN_KEK' && /id 3/.test(e.message),
    );
  });

  test('a malformed keyring is a LocalUsageError (KEK length, id range, duplicate ids)', () => {
    const bad = (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_STORE_BAD_KEK';
    assert.throws(() => new Sealer({ current: { id: 1, key: new Uint8Array(16) } }), bad);
    assert.throws(() => new Sealer({ current: kek(256, 1) }), bad);
    assert.throws(() => new Sealer({ current: kek(1, 1), previous: [kek(1, 2)] }), bad);
  });
});

test('a missing redis-server binary gives a skip reason instead of failing', async () => {
  const r = await startRedisServer('/nonexistent/redis-server');
  assert.equal(typeof r, 'string');
  assert.match(r as string, /not available/);
});
