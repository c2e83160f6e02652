import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fromHex } from '@ikegate/testkit';
import { RemoteProtocolError } from '../errors.js';
import { decodePayloadChain, encodePayloads } from './chain.js';
import { IdType, NotifyError, PayloadType, ProtocolId } from './constants.js';
import { decodeMessage, encodeMessage } from './message.js';
import { decodeInnerChain } from './protect.js';
import type { Payload } from './types.js';
import { verifyPayloads } from './verify.js';

function invalidSyntax(e: unknown): boolean {
  return e instanceof RemoteProtocolError && e.notify === NotifyError.INVALID_SYNTAX;
}

const nonce: Payload = { type: PayloadType.NONCE, critical: false, data: new Uint8Array(32) };

describe('verifyPayloads: allowed values become INVALID_SYNTAX (RFC 7296 §3.10.1)', () => {
  test('well-formed payloads pass', () => {
    verifyPayloads([
      nonce,
      { type: PayloadType.IDi, critical: false, idType: IdType.ID_IPV4_ADDR, data: fromHex('c0000201') },
      { type: PayloadType.KE, critical: false, group: 31, data: new Uint8Array(32) },
      {
        type: PayloadType.NOTIFY,
        critical: false,
        protocolId: ProtocolId.ESP,
        notifyType: 16393,
        spi: fromHex('01020304'),
        data: new Uint8Array(0),
      },
    ]);
  });

  test('a nonce of 15 octets is INVALID_SYNTAX (§3.9)', () => {
    assert.throws(
      () => verifyPayloads([{ type: PayloadType.NONCE, critical: false, data: new Uint8Array(15) }]),
      invalidSyntax,
    );
  });

  test('an ID_IPV4_ADDR identification is exactly 4 octets, ID_IPV6_ADDR 16 (§3.5)', () => {
    assert.throws(
      () =>
        verifyPayloads([
          { type: PayloadType.IDr, critical: false, idType: IdType.ID_IPV4_ADDR, data: new Uint8Array(5) },
        ]),
      invalidSyntax,
    );
    assert.throws(
      () =>
        verifyPayloads([
          { type: PayloadType.IDi, critical: false, idType: IdType.ID_IPV6_ADDR, data: new Uint8Array(4) },
        ]),
      invalidSyntax,
    );
  });

  test('a KE payload for group 0 or without data is INVALID_SYNTAX (§3.4)', () => {
    assert.throws(
      () => verifyPayloads([{ type: PayloadType.KE, critical: false, group: 0, data: new Uint8Array(32) }]),
      invalidSyntax,
    );
    assert.throws(
      () => verifyPayloads([{ type: PayloadType.KE, critical: false, group: 19, data: new Uint8Array(0) }]),
      invalidSyntax,
    );
  });

  test('a Notify about an ESP SA needs a 4-octet SPI; one about the IKE SA has none (§3.10)', () => {
    const n = (protocolId: number, spi: Uint8Array): Payload => ({
      type: PayloadType.NOTIFY,
      critical: false,
      protocolId,
      notifyType: NotifyError.INVALID_SELECTORS,
      spi,
      data: new Uint8Array(0),
    });
    assert.throws(() => verifyPayloads([n(ProtocolId.ESP, new Uint8Array(3))]), invalidSyntax);
    assert.throws(() => verifyPayloads([n(ProtocolId.IKE, new Uint8Array(8))]), invalidSyntax);
  });

  test('an X.509 CERTREQ is a whole number of 20-octet CA hashes (§3.7)', () => {
    assert.throws(
      () =>
        verifyPayloads([
          { type: PayloadType.CERTREQ, critical: false, encoding: 4, data: new Uint8Array(30) },
        ]),
      invalidSyntax,
    );
    verifyPayloads([{ type: PayloadType.CERTREQ, critical: false, encoding: 4, data: new Uint8Array(40) }]);
  });
});

describe('layout rules checked while decoding', () => {
  test('an SK payload inside decrypted SK content is INVALID_SYNTAX (RFC 7296 §3.14)', () => {
    const inner = encodePayloads([
      nonce,
      { type: PayloadType.SK, critical: false, firstInnerPayload: PayloadType.NONE, body: new Uint8Array(8) },
    ]);
    assert.equal(decodePayloadChain(inner.firstPayload, inner.bytes).length, 2);
    assert.throws(() => decodeInnerChain(inner.firstPayload, inner.bytes), invalidSyntax);
  });

  test('a Delete for an unknown protocol, or an IKE Delete with SPIs, is INVALID_SYNTAX (§3.11)', () => {
    assert.throws(
      () => decodePayloadChain(PayloadType.DELETE, fromHex('00000008' + '07000000')),
      invalidSyntax,
    );
    assert.throws(
      () => decodePayloadChain(PayloadType.DELETE, fromHex('0000000c' + '01040001' + '01020304')),
      invalidSyntax,
    );
    const ok = decodePayloadChain(PayloadType.DELETE, fromHex('00000010' + '03040002' + '0102030405060708'));
    assert.equal(ok[0]?.type, PayloadType.DELETE);
  });

  test('an EAP payload whose EAP Length disagrees with the payload is INVALID_SYNTAX (§3.16, RFC 3748 §4)', () => {
    assert.throws(
      () => decodePayloadChain(PayloadType.EAP, fromHex('00000009' + '0201000601')),
      invalidSyntax,
    );
    assert.equal(decodePayloadChain(PayloadType.EAP, fromHex('00000009' + '0201000501')).length, 1);
  });
});

describe('protected payloads re-encode exactly as received', () => {
  test('an SKF payload keeps Fragment Number, Total Fragments and its Next Payload (RFC 7383 §2.5)', () => {
    const h = {
      initiatorSpi: fromHex('0102030405060708'),
      responderSpi: fromHex('1112131415161718'),
      exchangeType: 35,
      flags: 0x08,
      messageId: 1,
    };
    const skf: Payload = {
      type: PayloadType.SKF,
      critical: false,
      firstInnerPayload: PayloadType.IDi,
      fragmentNumber: 1,
      totalFragments: 3,
      body: new Uint8Array(40).fill(7),
    };
    const raw = encodeMessage(h, [skf]);
    const msg = decodeMessage(raw);
    assert.deepEqual(msg.payloads, [skf]);
    assert.deepEqual(encodeMessage(h, msg.payloads), raw);
  });
});
