import assert from 'node:assert/strict';
import { test } from 'node:test';
import { seededUnit } from './random.js';

test('seededUnit: the same seed gives the same numbers, each in [0, 1); another seed gives others (a scenario replays from its seed)', () => {
  const take = (seed: number) => Array.from({ length: 1000 }, seededUnit(seed));
  const a = take(27);
  assert.deepEqual(a, take(27));
  assert.notDeepEqual(a, take(28));
  assert.ok(a.every((x) => x >= 0 && x < 1));
  assert.ok(new Set(a).size > 990, 'not stuck');
  assert.deepEqual(take(0).slice(0, 3), take(1).slice(0, 3), 'seed 0 (no state for xorshift) runs as 1');
});
