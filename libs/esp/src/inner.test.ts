import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { innerPacketLength, nextHeaderForVersion } from './inner.js';
import { ipv4, ipv6 } from './testing/fixtures.js';

describe('inner packet checks (RFC 791 §3.1, RFC 8200 §3)', () => {
  test('IPv4: the Total Length field, when it fits the buffer; TFC padding after it is allowed', () => {
    assert.equal(innerPacketLength(ipv4(60), 60), 60);
    const padded = new Uint8Array(80);
    padded.set(ipv4(60));
    assert.equal(innerPacketLength(padded, 80), 60);
    assert.equal(innerPacketLength(ipv4(60), 59), -1);
  });

  test('IPv4: IHL below 5 or above Total Length is broken', () => {
    const p = ipv4(24);
    p[0] = 0x44;
    assert.equal(innerPacketLength(p, 24), -1);
    p[0] = 0x47; // 28-octet header in a 24-octet packet
    assert.equal(innerPacketLength(p, 24), -1);
  });

  test('IPv6: 40 + Payload Length; Payload Length 0 only for a bare header (no jumbograms)', () => {
    assert.equal(innerPacketLength(ipv6(100), 100), 100);
    assert.equal(innerPacketLength(ipv6(40), 40), 40);
    assert.equal(innerPacketLength(ipv6(40), 48), -1);
    assert.equal(innerPacketLength(ipv6(100), 99), -1);
  });

  test('other versions and empty buffers are refused; Next Header follows the version nibble', () => {
    assert.equal(innerPacketLength(new Uint8Array(0), 0), -1);
    assert.equal(innerPacketLength(Uint8Array.of(0x50, 0, 0, 20, ...new Uint8Array(16)), 20), -1);
    assert.equal(nextHeaderForVersion(0x45), 4);
    assert.equal(nextHeaderForVersion(0x60), 41);
    assert.equal(nextHeaderForVersion(0x50), 0);
  });

  test('fuzz: any bytes give -1 or a length within the buffer, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), (b) => {
        const n = innerPacketLength(b, b.length);
        assert.ok(n === -1 || (n >= 20 && n <= b.length));
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});
