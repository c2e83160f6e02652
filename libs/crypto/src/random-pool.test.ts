/**
 * RandomPool: exact lengths, copies the caller owns (nonces and keys outlive refills), fresh
 * octets after every refill, large requests, and a fast-check property over request sizes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LocalUsageError } from './errors.js';
import { RandomPool, RANDOM_POOL_SIZE } from './random-pool.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** A result owns its whole ArrayBuffer: it is not a view into the pool or into another result. */
function assertOwned(b: Uint8Array, length: number): void {
  assert.equal(b.length, length);
  assert.equal(b.byteOffset, 0);
  assert.equal(b.buffer.byteLength, length);
}

describe('RandomPool (pooled injected randomness)', () => {
  it('gives exactly the requested number of octets, including 0 and the refill boundary', () => {
    const pool = new RandomPool(64);
    for (const n of [0, 1, 2, 4, 8, 16, 15, 32, 63, 64, 65, 200, RANDOM_POOL_SIZE])
      assertOwned(pool.random(n), n);
  });

  it('never repeats output across refills (distinct 16-octet draws over 25 refills of a 64-octet pool)', () => {
    const pool = new RandomPool(64);
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const h = hex(pool.random(16));
      assert.ok(!seen.has(h), `draw ${i} repeated an earlier one`);
      assert.notEqual(h, '00'.repeat(16), `draw ${i} is all zero (a consumed region handed out again)`);
      seen.add(h);
    }
  });

  it('refills when a request does not fit the rest of the pool (no short or zeroed tail)', () => {
    const pool = new RandomPool(64);
    const first = pool.random(60);
    const second = pool.random(16); // 4 octets left: must come from a refill, whole
    assertOwned(second, 16);
    assert.notEqual(hex(second), '00'.repeat(16));
    assert.ok(!hex(first).includes(hex(second)));
  });

  it('serves requests larger than the pool', () => {
    const pool = new RandomPool(64);
    const big = pool.random(10_000);
    assertOwned(big, 10_000);
    // 10,000 octets of OS randomness hold every octet value with overwhelming probability.
    assert.equal(new Set(big).size, 256);
    assertOwned(pool.random(8), 8);
  });

  it('returns independent arrays: mutating one changes no other, and refills change none', () => {
    const pool = new RandomPool(64);
    const a = pool.random(32);
    const b = pool.random(16);
    const keepA = hex(a);
    const keepB = hex(b);
    b.fill(0xff);
    assert.equal(hex(a), keepA);
    a.fill(0xee);
    assert.equal(hex(b), 'ff'.repeat(16));
    const c = pool.random(16);
    const keepC = hex(c);
    for (let i = 0; i < 40; i++) pool.random(16); // ten refills under c
    assert.equal(hex(c), keepC);
    assert.notEqual(keepA.slice(0, 32), keepB);
  });

  it('is a RandomBytes: the bound `random` works detached from the pool object', () => {
    const { random } = new RandomPool();
    assertOwned(random(32), 32);
  });

  it('rejects a negative or fractional length, and a pool below 64 octets, with LocalUsageError', () => {
    const pool = new RandomPool(64);
    for (const n of [-1, 1.5, Number.NaN]) assert.throws(() => pool.random(n), LocalUsageError);
    assert.throws(() => new RandomPool(16), LocalUsageError);
  });

  it('property: any sequence of request sizes gives exact, owned, independent results', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 512 }),
        fc.array(fc.integer({ min: 0, max: 1600 }), { maxLength: 60 }),
        (size, sizes) => {
          const pool = new RandomPool(size);
          const out = sizes.map((n) => pool.random(n));
          const snapshot = out.map(hex);
          out.forEach((b, i) => assertOwned(b, sizes[i]!));
          for (const b of out) b.fill(0xa5);
          // Every result filled with 0xa5 and nothing else touched: no two share memory.
          out.forEach((b, i) => assert.equal(hex(b), 'a5'.repeat(sizes[i]!)));
          // 16 or more octets from the OS are never all zero in practice; all zero would mean a
          // consumed (zeroed) region of the pool was handed out.
          snapshot.forEach((h, i) => {
            if (sizes[i]! >= 16) assert.notEqual(h, '00'.repeat(sizes[i]!));
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
