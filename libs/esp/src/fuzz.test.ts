/**
 * decapsulate on hostile input (STYLE.md rules 7 and 12): random bytes and mutated valid packets
 * always give a tagged result, never a throw, and a dropped packet leaves the SA unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { nodeProvider } from '@ikegate/crypto';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { type DecapsulateResult, ESP_DROP_REASONS } from './inbound.js';
import { ipv4, ipv6, SPI, SUITES, saPair, suiteFor } from './testing/fixtures.js';

const REASONS = new Set<string>(ESP_DROP_REASONS);

function assertTagged(r: DecapsulateResult): void {
  if (r.kind === 'drop') assert.ok(REASONS.has(r.reason), r.reason);
  else assert.equal(r.kind, 'inner');
}

const spiPrefix = Uint8Array.of(SPI >>> 24, (SPI >>> 16) & 0xff, (SPI >>> 8) & 0xff, SPI & 0xff);

for (const c of [SUITES[1]!, SUITES[2]!, SUITES[3]!]) {
  describe(`decapsulate fuzz, ${c.name}`, () => {
    const suite = suiteFor(nodeProvider, c);

    test('random bytes (half of them with our SPI): a drop with a known reason, window unchanged', () => {
      const { in: inb } = saPair(suite, { esn: true, lastSequence: 0x1_0000_0000n });
      const before = inb.highestSequence;
      fc.assert(
        fc.property(fc.boolean(), fc.uint8Array({ maxLength: 200 }), (ours, bytes) => {
          const packet =
            ours && bytes.length >= 4 ? Uint8Array.from([...spiPrefix, ...bytes.subarray(4)]) : bytes;
          const r = inb.decapsulate(packet);
          assertTagged(r);
          assert.equal(r.kind, 'drop');
          assert.equal(inb.highestSequence, before);
        }),
        { numRuns: fuzzRuns(), seed: fuzzSeed() },
      );
    });

    test('mutated valid packets: tagged result; any drop leaves the window where it was', () => {
      const { out, in: inb } = saPair(suite, { esn: true, lastSequence: 0xffff_ff00n, replayWindow: 128 });
      const packets = Array.from({ length: 16 }, (_, i) => {
        const r = out.encapsulate(i % 2 === 0 ? ipv4(20 + i * 13) : ipv6(40 + i * 7));
        assert.equal(r.kind, 'packet');
        return r.kind === 'packet' ? r.packet.slice() : new Uint8Array();
      });
      const mutation = fc.oneof(
        fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
        fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
        fc.record({
          kind: fc.constant('extend' as const),
          extra: fc.uint8Array({ minLength: 1, maxLength: 32 }),
        }),
        fc.record({
          kind: fc.constant('overwrite' as const),
          at: fc.nat(),
          value: fc.integer({ min: 0, max: 255 }),
        }),
      );
      fc.assert(
        fc.property(
          fc.nat({ max: packets.length - 1 }),
          fc.array(mutation, { minLength: 1, maxLength: 3 }),
          (i, ms) => {
            let p = packets[i]!.slice();
            for (const m of ms) {
              if (m.kind === 'flip') p[m.at % p.length]! ^= 1 << m.bit;
              else if (m.kind === 'truncate') p = p.subarray(0, m.at % p.length);
              else if (m.kind === 'extend') p = Uint8Array.from([...p, ...m.extra]);
              else p[m.at % p.length] = m.value;
            }
            const same = p.length === packets[i]!.length && p.every((b, k) => b === packets[i]![k]);
            const before = inb.highestSequence;
            const r = inb.decapsulate(p);
            assertTagged(r);
            if (!same) {
              assert.equal(r.kind, 'drop');
              assert.equal(inb.highestSequence, before);
            }
          },
        ),
        { numRuns: fuzzRuns(), seed: fuzzSeed() },
      );
    });
  });
}
