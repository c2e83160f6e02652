import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex, fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { RemoteProtocolError } from '../errors.js';
import { NotifyStatus, ProtocolId } from './constants.js';
import {
  decodeAdditionalKeyExchange,
  decodeCookie,
  decodeInvalidKe,
  decodeMessageIdSync,
  decodeNatDetection,
  decodeRekeySa,
  decodeReplayCounterSync,
  decodeSignatureHashAlgorithms,
  decodeWindowSize,
  encodeInvalidKe,
  encodeReplayCounterSync,
  encodeSignatureHashAlgorithms,
  encodeWindowSize,
} from './notify-data.js';

function isRemote(e: unknown): boolean {
  return e instanceof RemoteProtocolError && e.notify !== undefined;
}

describe('structured Notification Data (RFC 7296 §3.10.1 and companions)', () => {
  test('NAT_DETECTION_*_IP data is exactly a 20-octet SHA-1 digest (RFC 7296 §2.23)', () => {
    assert.equal(decodeNatDetection(new Uint8Array(20)).length, 20);
    assert.throws(() => decodeNatDetection(new Uint8Array(19)), isRemote);
    assert.throws(() => decodeNatDetection(new Uint8Array(21)), isRemote);
  });

  test('a COOKIE is 1 to 64 octets (RFC 7296 §2.6)', () => {
    assert.equal(decodeCookie(new Uint8Array(1)).length, 1);
    assert.equal(decodeCookie(new Uint8Array(64)).length, 64);
    assert.throws(() => decodeCookie(new Uint8Array(0)), isRemote);
    assert.throws(() => decodeCookie(new Uint8Array(65)), isRemote);
  });

  test('INVALID_KE_PAYLOAD carries the accepted group in 2 octets (RFC 7296 §1.3)', () => {
    assert.deepEqual(encodeInvalidKe(19), fromHex('0013'));
    assert.equal(decodeInvalidKe(fromHex('001f')), 31);
    assert.throws(() => decodeInvalidKe(fromHex('00')), isRemote);
  });

  test('SIGNATURE_HASH_ALGORITHMS is a list of 16-bit identifiers (RFC 7427 §4)', () => {
    assert.deepEqual(encodeSignatureHashAlgorithms([2, 3, 4]), fromHex('000200030004'));
    assert.deepEqual(decodeSignatureHashAlgorithms(fromHex('000200030004')), [2, 3, 4]);
    assert.throws(() => decodeSignatureHashAlgorithms(fromHex('00020003ff')), isRemote);
  });

  test('SET_WINDOW_SIZE is 4 octets (RFC 7296 §3.10.1)', () => {
    assert.equal(decodeWindowSize(encodeWindowSize(0x01020304)), 0x01020304);
    assert.throws(() => decodeWindowSize(new Uint8Array(3)), isRemote);
  });

  test('REKEY_SA names an ESP/AH SA by a 4-octet SPI and carries no data (RFC 7296 §3.10.1)', () => {
    const spi = fromHex('c0ffee01');
    assert.deepEqual(decodeRekeySa({ protocolId: ProtocolId.ESP, spi, data: new Uint8Array(0) }), {
      protocolId: ProtocolId.ESP,
      spi,
    });
    assert.throws(
      () => decodeRekeySa({ protocolId: ProtocolId.IKE, spi, data: new Uint8Array(0) }),
      isRemote,
    );
    assert.throws(
      () => decodeRekeySa({ protocolId: ProtocolId.ESP, spi: spi.subarray(0, 3), data: new Uint8Array(0) }),
      isRemote,
    );
    assert.throws(() => decodeRekeySa({ protocolId: ProtocolId.AH, spi, data: new Uint8Array(1) }), isRemote);
  });

  test('IPSEC_REPLAY_COUNTER_SYNC is Nonce(4) | counter of 4 or, with ESN, 8 octets (RFC 6311 §4.3)', () => {
    const narrow = { nonce: 0x11223344, incomingReplayCounter: 0xfffffff0n };
    assert.deepEqual(encodeReplayCounterSync(narrow, false), fromHex('11223344fffffff0'));
    assert.deepEqual(decodeReplayCounterSync(fromHex('11223344fffffff0')), narrow);
    const wide = { nonce: 1, incomingReplayCounter: 0x0000000100000002n };
    assert.deepEqual(encodeReplayCounterSync(wide, true), fromHex('000000010000000100000002'));
    assert.deepEqual(decodeReplayCounterSync(fromHex('000000010000000100000002')), wide);
    assert.throws(() => encodeReplayCounterSync(wide, false), /does not fit/);
    assert.throws(() => decodeReplayCounterSync(new Uint8Array(10)), isRemote);
  });

  test('ADDITIONAL_KEY_EXCHANGE link data is passed through opaque (RFC 9370 §3.2.4)', () => {
    const link = fromHex('0102030405');
    assert.equal(decodeAdditionalKeyExchange(link), link);
    assert.equal(NotifyStatus.ADDITIONAL_KEY_EXCHANGE, 16441);
  });

  test('fuzz: every Notification Data decoder returns a value or RemoteProtocolError (STYLE.md rule 12)', () => {
    const decoders: ((d: Uint8Array) => unknown)[] = [
      decodeNatDetection,
      decodeCookie,
      decodeInvalidKe,
      decodeSignatureHashAlgorithms,
      decodeWindowSize,
      decodeMessageIdSync,
      decodeReplayCounterSync,
      decodeAdditionalKeyExchange,
      (d) =>
        decodeRekeySa({
          protocolId: d[0] ?? 0,
          spi: d.subarray(1, 1 + ((d[1] ?? 0) & 7)),
          data: d.subarray(9),
        }),
    ];
    fc.assert(
      fc.property(fc.nat(decoders.length - 1), fc.uint8Array({ maxLength: 80 }), (i, data) => {
        try {
          decoders[i]!(data);
        } catch (e) {
          if (!(e instanceof RemoteProtocolError)) throw e;
        }
      }),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});
