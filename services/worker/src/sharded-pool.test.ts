import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ShardedPool } from './sharded-pool.js';

const net = Uint8Array.from([10, 200, 0, 0]);

test('sharded pool: an SA gets an address from its own shard part, so owners of different shards never collide', () => {
  const pool = new ShardedPool('rw', net, 16, 1024);
  const a = pool.allocate('a', 5)!;
  const b = pool.allocate('b', 5)!;
  const c = pool.allocate('c', 6)!;
  const idx = (x: Uint8Array) => Buffer.from(x).readUInt32BE(0) - Buffer.from(net).readUInt32BE(0);
  assert.equal(idx(a) % 1024, 5);
  assert.equal(idx(b) % 1024, 5);
  assert.equal(idx(c) % 1024, 6);
  assert.notDeepEqual(a, b);
  assert.deepEqual(pool.allocate('a', 5), a, 'sticky per key');
});

test('sharded pool: never the network, gateway or broadcast address; a claimed address is not handed out again', () => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 80 }), (shards) => {
      const pool = new ShardedPool('p', Uint8Array.from([192, 168, 7, 0]), 24, 4);
      const seen = new Set<string>();
      const other = new ShardedPool('p', Uint8Array.from([192, 168, 7, 0]), 24, 4);
      const moved = other.allocate('moved', 1)!;
      pool.claim('moved', moved);
      seen.add(moved.join('.'));
      shards.forEach((s, i) => {
        const a = pool.allocate(`k${i}`, s);
        if (!a) return;
        assert.ok(a[3]! >= 2 && a[3]! <= 254, a.join('.'));
        assert.ok(!seen.has(a.join('.')), `twice: ${a.join('.')}`);
        seen.add(a.join('.'));
      });
    }),
    { numRuns: 200 },
  );
});
