import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { LruList, type LruNode } from './lru.js';

interface Item extends LruNode {
  readonly id: number;
}

describe("LRU list (the endpoint's order of hot SAs, issue #14)", () => {
  it('keeps the order of a reference list under random touches and removals', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.constantFrom('touch', 'remove', 'pop'), fc.integer({ min: 0, max: 9 })), {
          maxLength: 200,
        }),
        (ops) => {
          const items: Item[] = Array.from({ length: 10 }, (_, id) => ({
            id,
            lruPrev: undefined,
            lruNext: undefined,
          }));
          const list = new LruList<Item>();
          let model: number[] = [];
          for (const [op, i] of ops) {
            const it = items[i]!;
            if (op === 'touch') {
              list.touch(it);
              model = [...model.filter((x) => x !== i), i];
            } else if (op === 'remove') {
              list.remove(it);
              model = model.filter((x) => x !== i);
            } else {
              const o = list.oldest();
              assert.equal(o?.id, model[0]);
              if (o) list.remove(o);
              model = model.slice(1);
            }
            assert.equal(list.size, model.length);
            for (const x of items) assert.equal(list.has(x), model.includes(x.id));
          }
          const order: number[] = [];
          for (let o = list.oldest(); o; o = list.oldest()) {
            order.push(o.id);
            list.remove(o);
          }
          assert.deepEqual(order, model);
        },
      ),
      { numRuns: 300 },
    );
  });
});
