import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed, SeededRandom } from '@ikegate/testkit';
import fc from 'fast-check';
import {
  espSpiShard,
  ikeSpiShard,
  MIN_ESP_SPI,
  makeEspSpi,
  makeIkeSpi,
  ShardSpiAllocator,
  shardCount,
} from './spi.js';

const runs = Math.min(fuzzRuns(), 20_000);

describe('SPI shard encoding (ARCHITECTURE.md routing rule)', () => {
  test('an IKE SPI made for a shard decodes to that shard, for every layout (RFC 7296 §3.1 SPI is 8 octets)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.nat(),
        fc.uint8Array({ minLength: 8, maxLength: 8 }),
        (bits, s, r) => {
          const layout = { shardBits: bits };
          const shard = s % shardCount(layout);
          const spi = makeIkeSpi(shard, () => r.slice(), layout);
          assert.equal(spi.length, 8);
          assert.equal(ikeSpiShard(spi, layout), shard);
          // the low bits come from the random source untouched
          assert.deepEqual(spi.subarray(2), r.subarray(2));
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('an ESP SPI made for a shard decodes to that shard and is never reserved (RFC 4303 §2.1)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 16 }),
        fc.nat(),
        fc.uint8Array({ minLength: 4, maxLength: 4 }),
        (bits, s, r) => {
          const layout = { shardBits: bits };
          const shard = s % shardCount(layout);
          let calls = 0;
          const random = (n: number) => (calls++ === 0 ? r.slice(0, n) : new SeededRandom(calls).bytes(n));
          const spi = makeEspSpi(shard, random, layout);
          assert.ok(spi >= MIN_ESP_SPI && spi <= 0xffffffff);
          assert.equal(espSpiShard(spi, layout), shard);
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('IKE SPIs are never all-zero even when the random source returns zeros for shard 0 (RFC 7296 §3.1)', () => {
    let calls = 0;
    const random = (n: number) => (calls++ < 3 ? new Uint8Array(n) : new SeededRandom(1).bytes(n));
    const spi = makeIkeSpi(0, random, { shardBits: 10 });
    assert.ok(spi.some((b) => b !== 0));
  });

  test('the allocator never hands out an SPI that is in use, and reports a full shard instead of looping', () => {
    const layout = { shardBits: 10 };
    const rng = new SeededRandom('alloc');
    const alloc = new ShardSpiAllocator(layout, (n) => rng.bytes(n));
    const used = new Set<number>();
    for (let i = 0; i < 5000; i++) {
      const spi = alloc.espSpi(7, (x) => used.has(x));
      assert.ok(!used.has(spi));
      assert.equal(espSpiShard(spi, layout), 7);
      used.add(spi);
    }
    assert.throws(
      () => alloc.espSpi(7, () => true),
      (e: unknown) => (e as { code?: string }).code === 'IKEGATE_ERR_CLUSTER_SHARD_FULL',
    );
  });

  test('a shard outside the layout is a usage error, not a silent wrap', () => {
    assert.throws(() => makeEspSpi(1024, (n) => new Uint8Array(n), { shardBits: 10 }), /outside/);
    assert.throws(() => makeIkeSpi(-1, (n) => new Uint8Array(n), { shardBits: 10 }), /outside/);
  });
});
