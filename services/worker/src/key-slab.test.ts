import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { KeySlab } from './key-slab.js';

test('key slab (property): a slot handed out is zeros and in use by no one else, slots never overlap, a released slot is zeroed, and pages grow only with the most slots in use at once (issue #14, cold child SAs)', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 300 }),
      fc.array(fc.oneof(fc.constant(-1), fc.nat(1000)), { maxLength: 400 }),
      (size, ops) => {
        const slab = new KeySlab(size);
        const live = new Map<number, number>(); // slot -> the octet written into it
        let mark = 0;
        let most = 0;
        for (const op of ops) {
          if (op === -1 || live.size === 0) {
            const slot = slab.alloc();
            assert.ok(!live.has(slot), 'not in use');
            const v = slab.view(slot);
            assert.equal(v.length, size);
            assert.ok(
              v.every((x) => x === 0),
              'zeros',
            );
            mark = (mark % 255) + 1;
            v.fill(mark);
            live.set(slot, mark);
          } else {
            const slot = [...live.keys()][op % live.size]!;
            const v = slab.view(slot);
            slab.release(slot);
            assert.ok(
              v.every((x) => x === 0),
              'zeroed on release',
            );
            live.delete(slot);
          }
          most = Math.max(most, live.size);
          assert.equal(slab.used, live.size);
        }
        for (const [slot, m] of live)
          assert.ok(
            slab.view(slot).every((x) => x === m),
            'each slot kept what was written into it',
          );
        const perPage = Math.floor(65536 / size);
        assert.equal(slab.octets, Math.ceil(most / perPage) * 65536);
      },
    ),
    { numRuns: 300 },
  );
});

test('key slab: a slot size outside 1..65536 is refused', () => {
  for (const bad of [0, -1, 1.5, 65537, Number.NaN]) assert.throws(() => new KeySlab(bad), RangeError);
  const whole = new KeySlab(65536);
  assert.equal(whole.view(whole.alloc()).length, 65536, 'one slot per page');
  assert.equal(whole.view(whole.alloc()).length, 65536);
  assert.equal(whole.octets, 2 * 65536);
});

test('key slab: released slots are handed out again, the last released first, before any new one (no page grows while slots are free)', () => {
  const slab = new KeySlab(1024); // 64 slots a page
  const first = Array.from({ length: 200 }, () => slab.alloc());
  assert.equal(slab.octets, 4 * 65536);
  for (const s of first) slab.release(s);
  assert.equal(slab.used, 0);
  const again = Array.from({ length: 200 }, () => slab.alloc());
  assert.deepEqual(again, [...first].reverse());
  assert.equal(slab.octets, 4 * 65536, 'no new page');
  assert.equal(slab.alloc(), 200, 'a new slot once none is free');
});

test('key slab: releasing a slot not in use (twice, or never handed out) is refused, so one slot never goes to two holders', () => {
  const slab = new KeySlab(32);
  const a = slab.alloc();
  slab.release(a);
  assert.throws(() => slab.release(a), RangeError);
  assert.throws(() => slab.release(7), RangeError);
  assert.equal(slab.used, 0);
  assert.equal(slab.alloc(), a);
  assert.equal(slab.alloc(), 1, 'a is handed out once');
});
