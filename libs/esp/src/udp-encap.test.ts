import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { LocalUsageError } from './errors.js';
import { classifyUdpPayload, encodeNatKeepalive, encodeNonEspMarker } from './udp-encap.js';

const ikeHeader = new Uint8Array(28).fill(0x11);

describe('UDP encapsulation on port 4500 (RFC 3948)', () => {
  test('a single 0xFF octet is a NAT-keepalive (§2.3)', () => {
    assert.deepEqual(classifyUdpPayload(encodeNatKeepalive()), { kind: 'keepalive' });
  });

  test('a single octet other than 0xFF, and 2 or 3 octets, are dropped as short', () => {
    assert.deepEqual(classifyUdpPayload(Uint8Array.of(0)), { kind: 'drop', reason: 'short' });
    assert.deepEqual(classifyUdpPayload(new Uint8Array(0)), { kind: 'drop', reason: 'short' });
    assert.deepEqual(classifyUdpPayload(Uint8Array.of(0xff, 0xff)), { kind: 'drop', reason: 'short' });
    assert.deepEqual(classifyUdpPayload(Uint8Array.of(0, 0, 0)), { kind: 'drop', reason: 'short' });
  });

  test('a non-ESP marker then an IKE message is IKE (§2.2); the message is a view after the marker', () => {
    const payload = encodeNonEspMarker(ikeHeader);
    assert.equal(payload.length, 32);
    const r = classifyUdpPayload(payload);
    assert.equal(r.kind, 'ike');
    assert.deepEqual(r.kind === 'ike' && [...r.message], [...ikeHeader]);
    assert.equal(r.kind === 'ike' && r.message.buffer, payload.buffer);
  });

  test('a non-ESP marker followed by less than an IKE header is dropped as short_ike', () => {
    assert.deepEqual(classifyUdpPayload(new Uint8Array(4 + 27)), { kind: 'drop', reason: 'short_ike' });
    assert.deepEqual(classifyUdpPayload(new Uint8Array(4)), { kind: 'drop', reason: 'short_ike' });
  });

  test('a non-zero SPI is ESP (§2.1); shorter than SPI|SN is short; SPI 1..255 is reserved (RFC 4303 §2.1)', () => {
    const esp = Uint8Array.of(0x12, 0x34, 0x56, 0x78, 0, 0, 0, 1, 9, 9);
    assert.deepEqual(classifyUdpPayload(esp), { kind: 'esp', packet: esp, spi: 0x1234_5678 });
    assert.deepEqual(classifyUdpPayload(esp.subarray(0, 7)), { kind: 'drop', reason: 'short' });
    assert.deepEqual(classifyUdpPayload(Uint8Array.of(0, 0, 0, 255, 0, 0, 0, 1)), {
      kind: 'drop',
      reason: 'reserved_spi',
    });
  });

  test('encodeNonEspMarker writes into a caller buffer and refuses one too small', () => {
    const out = new Uint8Array(64).fill(0xee);
    const r = encodeNonEspMarker(ikeHeader, out);
    assert.equal(r.buffer, out.buffer);
    assert.deepEqual([...r.subarray(0, 4)], [0, 0, 0, 0]);
    assert.throws(() => encodeNonEspMarker(ikeHeader, new Uint8Array(31)), LocalUsageError);
    assert.throws(() => encodeNonEspMarker(new Uint8Array(0)), LocalUsageError);
  });

  test('fuzz: any UDP payload gives a tagged result, never a throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (payload) => {
        const r = classifyUdpPayload(payload);
        assert.ok(['keepalive', 'ike', 'esp', 'drop'].includes(r.kind));
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});
