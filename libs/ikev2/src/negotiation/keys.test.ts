import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { deriveChildSaKeys, nobleProvider, nodeProvider } from '@ikegate/crypto';
import { fromHex, toHex } from '@ikegate/testkit';
import { decodeMessage } from '../codec/message.js';
import { PayloadType } from '../codec/constants.js';
import type { NoncePayload } from '../codec/types.js';
import { LocalUsageError } from '../errors.js';
import {
  deriveChildSaKeysForSuite,
  deriveIkeSaKeysForSuite,
  ikeSkProtections,
  suiteKeyLengths,
  suitePrf,
} from './keys.js';
import type { NegotiatedSuite } from './proposals.js';

const suite = (encr: [number, number], prf?: number, integrity?: number): NegotiatedSuite => ({
  encryption: { id: encr[0], keyBits: encr[1] },
  ...(prf !== undefined ? { prf } : {}),
  ...(integrity !== undefined ? { integrity } : {}),
  additionalKeyExchanges: [],
});

describe('key lengths per suite (RFC 5282 §7.1, RFC 7634 §2.1, RFC 4868 §2.1.1)', () => {
  const table: [string, NegotiatedSuite, number, number, number][] = [
    ['AES-GCM-16-256 + PRF-HMAC-SHA2-256', suite([20, 256], 5), 36, 0, 32],
    ['AES-GCM-16-128 + PRF-HMAC-SHA2-384', suite([20, 128], 6), 20, 0, 48],
    ['ChaCha20-Poly1305 + PRF-HMAC-SHA2-512', suite([28, 0], 7), 36, 0, 64],
    ['AES-CBC-128 + HMAC-SHA2-256-128 + PRF-HMAC-SHA2-256', suite([12, 128], 5, 12), 16, 32, 32],
    ['AES-CBC-256 + HMAC-SHA2-512-256 (ESP)', suite([12, 256], undefined, 14), 32, 64, 0],
  ];
  for (const [name, s, encr, integ, prf] of table) {
    test(`${name}: ${encr}/${integ}/${prf}`, () => {
      for (const p of [nodeProvider, nobleProvider])
        assert.deepEqual(suiteKeyLengths(p, s), { encr, integ, prf });
    });
  }
  test('a CBC suite without integrity is a usage error', () => {
    assert.throws(() => suiteKeyLengths(nodeProvider, suite([12, 128], 5)), LocalUsageError);
  });
});

describe('IKE SA keys and SK protection against strongSwan (RFC 7296 §2.14)', () => {
  const v = JSON.parse(
    readFileSync(
      new URL('../../../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
      'utf8',
    ),
  ) as Record<string, string>;
  test('keys from strongSwan SKEYSEED equal its SK_d/SK_ei/SK_er/SK_pi/SK_pr; protections are AEAD with 8/16', () => {
    const req = decodeMessage(fromHex(v.ikeSaInitRequest ?? ''));
    const resp = decodeMessage(fromHex(v.ikeSaInitResponse ?? ''));
    const nonce = (m: typeof req) =>
      (m.payloads.find((p) => p.type === PayloadType.NONCE) as NoncePayload).data;
    const s = suite([20, 256], 5);
    const k = deriveIkeSaKeysForSuite(
      nodeProvider,
      s,
      fromHex(v.skeyseed ?? ''),
      nonce(req),
      nonce(resp),
      resp.header.initiatorSpi,
      resp.header.responderSpi,
    );
    assert.equal(toHex(k.skD), v.skD);
    assert.equal(toHex(k.skEi), v.skEi);
    assert.equal(toHex(k.skEr), v.skEr);
    assert.equal(toHex(k.skPi), v.skPi);
    assert.equal(toHex(k.skPr), v.skPr);
    assert.equal(k.skAi.length, 0);
    const p = ikeSkProtections(nodeProvider, s, k);
    assert.equal(p.initiator.kind, 'aead');
    assert.deepEqual([p.initiator.ivLength, p.initiator.icvLength], [8, 16]);
  });
});

describe('child SA KEYMAT split (RFC 7296 §2.17)', () => {
  test("initiator's outbound is the responder's inbound, encryption before integrity", () => {
    const prf = suitePrf(nodeProvider, suite([20, 256], 5));
    const esp = suite([12, 128], undefined, 12);
    const args = [
      prf,
      fromHex('01'.repeat(32)),
      fromHex('02'.repeat(16)),
      fromHex('03'.repeat(16)),
      undefined,
    ] as const;
    const i = deriveChildSaKeysForSuite(nodeProvider, esp, ...args, true);
    const r = deriveChildSaKeysForSuite(nodeProvider, esp, ...args, false);
    assert.deepEqual(i.outbound, r.inbound);
    assert.deepEqual(i.inbound, r.outbound);
    const direct = deriveChildSaKeys(...args, { encr: 16, integ: 32 });
    assert.equal(toHex(i.outbound.encr), toHex(direct.encrI));
    assert.equal(toHex(i.inbound.integ), toHex(direct.integR));
    assert.equal(i.outbound.encr.length, 16);
    assert.equal(i.outbound.integ.length, 32);
  });
});
