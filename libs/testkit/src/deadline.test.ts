import assert from 'node:assert/strict';
import { test } from 'node:test';
import { outcomeWithin } from './deadline.js';

test('outcomeWithin: a resolved promise is answered, a rejected one gives its message, one that never settles is still waiting at the deadline', async () => {
  assert.equal(await outcomeWithin(Promise.resolve(1), 1000), 'answered');
  assert.equal(await outcomeWithin(Promise.reject(new Error('refused')), 1000), 'refused');
  const started = Date.now();
  assert.equal(await outcomeWithin(new Promise(() => undefined), 100), 'still waiting');
  assert.ok(Date.now() - started >= 90);
});
