import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { AddressPool, formatIp } from './index.js';

describe('AddressPool', () => {
  it('a /24 hands out .2-.254: not the network, the gateway (.1) or the broadcast', () => {
    const pool = new AddressPool('10.10.0.0/24');
    assert.equal(pool.size, 253);
    assert.equal(formatIp(pool.gateway), '10.10.0.1');
    const seen = new Set<string>();
    for (let i = 0; i < 253; i++) seen.add(formatIp(pool.allocate(`peer${i}`)!));
    assert.equal(seen.size, 253);
    assert.ok(!seen.has('10.10.0.0') && !seen.has('10.10.0.1') && !seen.has('10.10.0.255'));
    assert.equal(pool.allocate('one-too-many'), undefined);
    assert.equal(pool.inUse, 253);
  });

  it('is sticky per peer key until released', () => {
    const pool = new AddressPool('192.168.0.0/30');
    assert.equal(pool.size, 1);
    const a = pool.allocate('alice')!;
    assert.deepEqual(pool.allocate('alice'), a);
    assert.equal(pool.allocate('bob'), undefined);
    pool.release('alice');
    pool.release('alice');
    assert.equal(pool.inUse, 0);
    assert.deepEqual(pool.allocate('bob'), a);
  });

  it('rejects IPv6 and too-small networks', () => {
    assert.throws(() => new AddressPool('10.0.0.0/31'), RangeError);
    assert.throws(() => new AddressPool('2001:db8::/64'), RangeError);
    assert.throws(() => new AddressPool('10.0.0.1/24'), RangeError);
  });

  it('property: never the same address twice, never network/gateway/broadcast', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('allocate' as const), key: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('release' as const), key: fc.integer({ min: 0, max: 20 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 26, max: 30 }), fc.array(op, { maxLength: 100 }), (prefix, ops) => {
        const pool = new AddressPool(`172.16.4.0/${prefix}`);
        const reserved = new Set([
          '172.16.4.0',
          '172.16.4.1',
          formatIp(Uint8Array.of(172, 16, 4, 2 ** (32 - prefix) - 1)),
        ]);
        const held = new Map<number, string>();
        for (const { kind, key } of ops) {
          if (kind === 'release') {
            pool.release(String(key));
            held.delete(key);
            continue;
          }
          const got = pool.allocate(String(key));
          if (got === undefined) {
            assert.equal(held.size, pool.size, 'only undefined when exhausted');
            assert.ok(!held.has(key));
            continue;
          }
          const text = formatIp(got);
          assert.ok(!reserved.has(text), `handed out reserved ${text}`);
          const previous = held.get(key);
          if (previous !== undefined) assert.equal(text, previous, 'sticky');
          else assert.ok(![...held.values()].includes(text), `${text} handed out twice`);
          held.set(key, text);
          assert.equal(pool.inUse, held.size);
        }
      }),
      { numRuns: Math.min(fuzzRuns(), 2000), seed: fuzzSeed() },
    );
  });
});
