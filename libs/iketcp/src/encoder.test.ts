import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, toHex } from '@ikegate/testkit';
import { IKETCP_PREFIX } from './constants.js';
import { streamActionForEsp, streamActionForIke } from './decisions.js';
import { encodeEspFrame, encodeEspFrameInto, encodeIkeFrame, encodeIkeFrameInto } from './encoder.js';
import { LocalUsageError } from './errors.js';

describe('RFC 9329 encoders (§3, §4)', () => {
  test('the prefix is the ASCII octets "IKETCP" (§4)', () => {
    assert.equal(toHex(IKETCP_PREFIX), '494b45544350');
  });

  test('an IKE frame is Length (counting itself) | 4 zero octets | message (§3.1)', () => {
    assert.equal(toHex(encodeIkeFrame(fromHex('aabbcc'))), '000900000000aabbcc');
  });

  test('an ESP frame is Length (counting itself) | packet (§3.2)', () => {
    assert.equal(toHex(encodeEspFrame(fromHex('0000100000000001ee'))), '000b0000100000000001ee');
  });

  test('the Into forms write at an offset and return the octets written', () => {
    const out = new Uint8Array(32).fill(0xee);
    const n = encodeIkeFrameInto(fromHex('01'), out, 3);
    assert.equal(n, 7);
    assert.equal(toHex(out.subarray(0, 11)), 'eeeeee000700000000 01ee'.replace(' ', ''));
    assert.equal(encodeEspFrameInto(fromHex('0000000100000001'), out, 10), 10);
  });

  test('a message that cannot fit the 16-bit Length is refused, not truncated', () => {
    assert.throws(() => encodeIkeFrame(new Uint8Array(65530)), LocalUsageError);
    assert.throws(() => encodeEspFrame(new Uint8Array(65534).fill(1)), LocalUsageError);
    assert.doesNotThrow(() => encodeEspFrame(new Uint8Array(65533).fill(1)));
  });

  test('an ESP packet with SPI 0 (it would read as a Non-ESP Marker) or shorter than SPI|SN is refused (RFC 9329 §3.2, RFC 4303 §2)', () => {
    assert.throws(() => encodeEspFrame(new Uint8Array(16)), { code: 'IKEGATE_ERR_IKETCP_BAD_ESP_PACKET' });
    assert.throws(() => encodeEspFrame(Uint8Array.of(1, 2, 3, 4)), {
      code: 'IKEGATE_ERR_IKETCP_BAD_ESP_PACKET',
    });
  });

  test('a buffer too small for the frame is a usage error', () => {
    assert.throws(() => encodeIkeFrameInto(new Uint8Array(40), new Uint8Array(10)), LocalUsageError);
  });
});

describe('stream decisions above the decoder (PROTOCOL.md)', () => {
  test('an unknown ESP SPI keeps the connection; an ICV failure on a known SPI closes it', () => {
    assert.equal(streamActionForEsp('unknown_spi'), 'keep');
    assert.equal(streamActionForEsp('auth_failed'), 'close');
    assert.equal(streamActionForEsp('dropped'), 'keep');
    assert.equal(streamActionForEsp('delivered'), 'keep');
  });

  test('INVALID_SYNTAX inside IKE tears down the IKE SA, not the connection', () => {
    assert.equal(streamActionForIke('invalid_syntax'), 'keep');
    assert.equal(streamActionForIke('dropped'), 'keep');
  });
});
