import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed, SeededRandom } from '@ikegate/testkit';
import fc from 'fast-check';
import { initialRequestShard, routeEspPacket, routeIkeMessage } from './routing.js';
import { makeEspSpi, makeIkeSpi, shardCount } from './spi.js';

const layout = { shardBits: 10 };
const key = new SeededRandom('cluster-key').bytes(32);

function ikeHeader(spiI: Uint8Array, spiR: Uint8Array, flags: number): Uint8Array {
  const m = new Uint8Array(28);
  m.set(spiI, 0);
  m.set(spiR, 8);
  m[17] = 0x20;
  m[18] = 34;
  m[19] = flags;
  m[27] = 28;
  return m;
}

describe('edge routing rule (ARCHITECTURE.md; RFC 7296 §3.1 I flag)', () => {
  const rng = new SeededRandom('routing');
  const random = (n: number) => rng.bytes(n);

  test('a request from the original initiator routes by the responder SPI, which is ours', () => {
    const ours = makeIkeSpi(513, random, layout);
    const theirs = random(8);
    assert.deepEqual(routeIkeMessage(ikeHeader(theirs, ours, 0x08), '192.0.2.7', key, layout), {
      kind: 'shard',
      shard: 513,
      by: 'responder-spi',
    });
  });

  test('a message with the I flag clear routes by the initiator SPI, because we initiated', () => {
    const ours = makeIkeSpi(42, random, layout);
    assert.deepEqual(routeIkeMessage(ikeHeader(ours, random(8), 0x20), '192.0.2.7', key, layout), {
      kind: 'shard',
      shard: 42,
      by: 'initiator-spi',
    });
    // a COOKIE or INVALID_KE response to our IKE_SA_INIT has a zero responder SPI and still routes to us
    assert.deepEqual(routeIkeMessage(ikeHeader(ours, new Uint8Array(8), 0x20), '192.0.2.7', key, layout), {
      kind: 'shard',
      shard: 42,
      by: 'initiator-spi',
    });
  });

  test('an IKE_SA_INIT request hashes SPIi and peer IP, so retransmissions from a new port or TCP connection land on the same shard', () => {
    const spiI = random(8);
    const a = routeIkeMessage(ikeHeader(spiI, new Uint8Array(8), 0x08), '198.51.100.9', key, layout);
    const b = routeIkeMessage(ikeHeader(spiI, new Uint8Array(8), 0x08), '::ffff:198.51.100.9', key, layout);
    assert.equal(a.kind, 'shard');
    assert.deepEqual(a, b);
    assert.equal(a.kind === 'shard' && a.by, 'initial-hash');
  });

  test('initial-request hashing spreads over all shards (no shard gets more than 3x its share of 100k SPIs)', () => {
    const counts = new Uint32Array(shardCount(layout));
    for (let i = 0; i < 100_000; i++) counts[initialRequestShard(random(8), '203.0.113.5', key, layout)]!++;
    const share = 100_000 / counts.length;
    assert.ok(Math.max(...counts) < 3 * share, `max ${Math.max(...counts)} vs share ${share}`);
    assert.ok(Math.min(...counts) > 0);
  });

  test('the hash depends on the cluster key, so a peer cannot precompute a shard', () => {
    const spiI = random(8);
    const shards = new Set<number>();
    for (let k = 0; k < 16; k++) shards.add(initialRequestShard(spiI, '203.0.113.5', random(32), layout));
    assert.ok(shards.size > 1);
  });

  test('ESP routes by its SPI; SPI 0 and short packets are dropped with a reason (RFC 4303 §2.1)', () => {
    const spi = makeEspSpi(900, random, layout);
    const pkt = new Uint8Array(16);
    new DataView(pkt.buffer).setUint32(0, spi);
    assert.deepEqual(routeEspPacket(pkt, layout), { kind: 'shard', shard: 900, by: 'responder-spi' });
    assert.deepEqual(routeEspPacket(new Uint8Array(16), layout), { kind: 'drop', reason: 'zero-spi' });
    assert.deepEqual(routeEspPacket(pkt.subarray(0, 7), layout), { kind: 'drop', reason: 'short' });
  });

  test('any byte string routes to a shard in range or to a drop with a reason, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ maxLength: 40 }), (bytes, addr) => {
        for (const d of [routeIkeMessage(bytes, addr, key, layout), routeEspPacket(bytes, layout)]) {
          if (d.kind === 'shard') assert.ok(d.shard >= 0 && d.shard < shardCount(layout));
          else assert.ok(d.reason === 'short' || d.reason === 'zero-spi');
        }
      }),
      { numRuns: Math.min(fuzzRuns(), 20_000), seed: fuzzSeed() },
    );
  });
});
