import assert from 'node:assert/strict';
import { test } from 'node:test';
import { childOf, type ChildRecord, NO_CHILDREN, type SaRecord, withChild, withoutChild } from './records.js';

/** Only the field the list functions read: the child's inbound SPI (and its identity). */
const child = (inboundSpi: number) => ({ inboundSpi }) as ChildRecord;

test("an SA's child list: a child with a known inbound SPI takes its place (as Map.set), a new one goes last, the last one removed leaves the shared empty list; lists are replaced, never changed", () => {
  const a = child(1);
  const b = child(2);
  const one = withChild(NO_CHILDREN, a);
  const two = withChild(one, b);
  assert.deepEqual(two, [a, b]);
  assert.deepEqual(one, [a], 'the earlier list is unchanged');
  const a2 = child(1);
  const replaced = withChild(two, a2);
  assert.equal(replaced[0], a2);
  assert.equal(replaced[1], b);
  assert.equal(replaced.length, 2);
  assert.equal(childOf({ children: replaced } as SaRecord, 1), a2);
  assert.equal(childOf({ children: replaced } as SaRecord, 3), undefined);
  assert.deepEqual(withoutChild(replaced, a2), [b]);
  assert.deepEqual(withoutChild(replaced, a), replaced, 'a child no longer listed removes nothing');
  assert.equal(withoutChild([b], b), NO_CHILDREN);
  assert.ok(Object.isFrozen(NO_CHILDREN));
  assert.equal(NO_CHILDREN.length, 0);
});
