import assert from 'node:assert/strict';
import { test } from 'node:test';
import { copyAll, copyPair } from './work.js';

test('copyPair: copies of both values, views of one buffer (issue #14: an SA keeps one ArrayBuffer for its SPIs), independent of the sources', () => {
  const a = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8);
  const b = Buffer.from([9, 10, 11, 12]);
  const [x, y] = copyPair(a, b);
  assert.deepEqual([...x], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual([...y], [9, 10, 11, 12]);
  assert.equal(x.buffer, y.buffer);
  assert.equal(x.buffer.byteLength, 12);
  a.fill(0);
  b.fill(0);
  assert.deepEqual([...x, ...y], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], 'copies, not views of the sources');
  y[0] = 99;
  assert.equal(x[7], 8, 'writing one does not touch the other');
  const [e, f] = copyPair(new Uint8Array(0), Uint8Array.of(5));
  assert.deepEqual([e.length, [...f]], [0, [5]]);
});

test('copyAll: copies of every value, views of one buffer, an empty value returned as it is (the shared NO_KEY stays shared), independent of the sources', () => {
  const empty = new Uint8Array(0);
  const a = Uint8Array.of(1, 2);
  const b = Buffer.from([3, 4, 5]);
  const [x, e, y] = copyAll([a, empty, b]);
  assert.equal(e, empty);
  assert.deepEqual(
    [[...x!], [...y!]],
    [
      [1, 2],
      [3, 4, 5],
    ],
  );
  assert.equal(x!.buffer, y!.buffer);
  assert.equal(x!.buffer.byteLength, 5);
  a.fill(0);
  b.fill(0);
  assert.deepEqual([...x!, ...y!], [1, 2, 3, 4, 5], 'copies, not views of the sources');
  assert.deepEqual(copyAll([]), []);
});
