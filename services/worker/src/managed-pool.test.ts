import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ManagedPool } from './managed-pool.js';

const net = (s: string) => Uint8Array.from(s.split('.').map(Number));
const text = (a: Uint8Array | undefined) => (a ? Array.from(a).join('.') : 'none');
const idx = (a: Uint8Array, base: string) =>
  Buffer.from(a).readUInt32BE(0) - Buffer.from(net(base)).readUInt32BE(0);

test('managed pool, sharded: an SA gets an address of its own shard part, so owners of different shards never collide', () => {
  const pool = new ManagedPool('rw', net('10.200.0.0'), 16, [], 1024);
  const a = pool.allocate('a', 5)!;
  const b = pool.allocate('b', 5)!;
  const c = pool.allocate('c', 6)!;
  assert.equal(idx(a, '10.200.0.0') % 1024, 5);
  assert.equal(idx(b, '10.200.0.0') % 1024, 5);
  assert.equal(idx(c, '10.200.0.0') % 1024, 6);
  assert.notDeepEqual(a, b);
  assert.deepEqual(pool.allocate('a', 5), a, 'sticky per key');
});

test('managed pool: never the network, gateway or broadcast; a claimed address is not handed out again; sizes', () => {
  for (const shards of [undefined, 4]) {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3 }), { maxLength: 300 }), (order) => {
        const pool = new ManagedPool('p', net('192.168.7.0'), 24, [], shards);
        const other = new ManagedPool('p', net('192.168.7.0'), 24, [], shards);
        const moved = other.allocate('moved', 1)!;
        pool.claim('moved', moved);
        const seen = new Set([text(moved)]);
        order.forEach((s, i) => {
          const a = pool.allocate(`k${i}`, s);
          if (!a) return;
          assert.ok(a[3]! >= 2 && a[3]! <= 254, text(a));
          assert.ok(!seen.has(text(a)), `twice: ${text(a)}`);
          seen.add(text(a));
        });
        assert.equal(pool.inUse, seen.size);
        assert.ok(pool.inUse <= pool.size);
      }),
      { numRuns: 100 },
    );
  }
});

test('managed pool: a resize keeps every holder inside the new network, and the freed space is used again', () => {
  const pool = new ManagedPool('rw', net('10.88.0.0'), 30, []);
  const only = pool.allocate('erin')!;
  assert.equal(text(only), '10.88.0.2');
  assert.equal(pool.allocate('other'), undefined, 'a /30 has one host');
  pool.resize(net('10.88.0.0'), 29, []);
  assert.equal(text(pool.allocate('erin')), '10.88.0.2', 'the holder keeps its address');
  const more = [pool.allocate('b'), pool.allocate('c'), pool.allocate('d')].map(text);
  assert.ok(!more.includes('10.88.0.2'));
  assert.equal(pool.cidr, '10.88.0.0/29');
  pool.release('c');
  pool.resize(net('10.88.0.0'), 30, []);
  assert.deepEqual(
    pool
      .holders()
      .map((h) => [h.key, text(h.address)])
      .sort(),
    [
      ['b', '10.88.0.3'],
      ['d', '10.88.0.5'],
      ['erin', '10.88.0.2'],
    ],
    'holders outside the smaller network keep their address until released (the API refuses such a change first)',
  );
  assert.equal(pool.allocate('new'), undefined, 'and nothing outside the network is handed out');
  assert.equal(pool.contains(net('10.88.0.5')), false);
});

test('managed pool: a retired pool hands out nothing new; releases and sticky lookups still work', () => {
  const pool = new ManagedPool('rw', net('10.1.0.0'), 24, [net('10.1.0.1')]);
  const a = pool.allocate('a')!;
  pool.retire();
  assert.equal(pool.allocate('b'), undefined);
  assert.deepEqual(pool.allocate('a'), a);
  pool.release('a');
  assert.equal(pool.inUse, 0);
  pool.resize(net('10.1.0.0'), 24, []);
  assert.equal(pool.retired, false, 'a pool put again under the same name is live again');
});

test('managed pool, unsharded: allocation agrees with a naive model (lowest free after releases, LIFO reuse)', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 })), { maxLength: 200 }),
      (ops) => {
        const pool = new ManagedPool('p', net('10.9.0.0'), 27, []);
        const held = new Map<string, string>();
        for (const [alloc, k] of ops) {
          const key = `k${k}`;
          if (alloc) {
            const a = pool.allocate(key);
            if (held.has(key)) assert.equal(text(a), held.get(key));
            else if (held.size >= pool.size) assert.equal(a, undefined);
            else {
              assert.ok(a);
              assert.ok(![...held.values()].includes(text(a)));
              held.set(key, text(a));
            }
          } else {
            pool.release(key);
            held.delete(key);
          }
          assert.equal(pool.inUse, held.size);
        }
      },
    ),
    { numRuns: 300 },
  );
});
