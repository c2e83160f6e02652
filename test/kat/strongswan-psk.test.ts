/**
 * Known answers from a real peer: one IKE_SA_INIT + IKE_AUTH exchange between two strongSwan
 * 5.9.8 daemons, captured on the wire, with the responder's own key material and AUTH inputs from
 * its ike=4 log (test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json, see "source" there).
 * ikegate must decode strongSwan's messages, derive the same SKEYSEED and SK_* keys (RFC 7296
 * §2.14), build the same signed octets and PSK AUTH (§2.15), and decrypt its SK payloads (RFC 5282).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import {
  deriveIkeSaKeys,
  deriveSkeyseed,
  KeyExchangeId,
  nobleProvider,
  nodeProvider,
  PrfId,
} from '@ikegate/crypto';
import {
  AuthMethod,
  decodeMessage,
  decryptMessage,
  ExchangeType,
  type IkeMessage,
  type Payload,
  PayloadType,
} from '@ikegate/ikev2';
import { fromHex, toHex } from '@ikegate/testkit';

const v = JSON.parse(
  readFileSync(new URL('../vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url), 'utf8'),
) as Record<string, string>;
const hex = (k: string) => fromHex(v[k] ?? '');

function find<T extends Payload['type']>(msg: IkeMessage | readonly Payload[], type: T) {
  const list = 'payloads' in msg ? msg.payloads : msg;
  const p = list.find((x) => x.type === type);
  assert.ok(p, `payload ${type} missing`);
  return p as Extract<Payload, { type: T }>;
}

for (const provider of [nodeProvider, nobleProvider]) {
  describe(`strongSwan 5.9.8 PSK exchange on the ${provider.name} provider`, () => {
    const req = decodeMessage(hex('ikeSaInitRequest'));
    const resp = decodeMessage(hex('ikeSaInitResponse'));
    const ni = find(req, PayloadType.NONCE).data;
    const nr = find(resp, PayloadType.NONCE).data;
    const prf = provider.prf(PrfId.HMAC_SHA2_256)!;

    test("decodes strongSwan's IKE_SA_INIT: one proposal AES-GCM-16-256/PRF-SHA256/X25519, KE group 31 (RFC 7296 §3.3, §3.4)", () => {
      assert.equal(req.header.exchangeType, ExchangeType.IKE_SA_INIT);
      const sa = find(req, PayloadType.SA);
      assert.equal(sa.proposals.length, 1);
      const ids = sa.proposals[0]!.transforms.map((t) => `${t.type}:${t.id}`);
      assert.deepEqual(ids, ['1:20', '2:5', '4:31']);
      const ke = find(req, PayloadType.KE);
      assert.equal(ke.group, KeyExchangeId.CURVE25519);
      assert.equal(ke.data.length, 32);
    });

    test('derives the SKEYSEED and SK_d/SK_e/SK_p strongSwan derived (RFC 7296 §2.14)', () => {
      const skeyseed = deriveSkeyseed(prf, ni, nr, hex('sharedSecret'));
      assert.equal(toHex(skeyseed), v.skeyseed);
      const keys = deriveIkeSaKeys(
        prf,
        skeyseed,
        ni,
        nr,
        resp.header.initiatorSpi,
        resp.header.responderSpi,
        {
          skD: 32,
          skA: 0,
          skE: 36,
          skP: 32,
        },
      );
      assert.equal(toHex(keys.skD), v.skD);
      assert.equal(toHex(keys.skEi), v.skEi);
      assert.equal(toHex(keys.skEr), v.skEr);
      assert.equal(toHex(keys.skPi), v.skPi);
      assert.equal(toHex(keys.skPr), v.skPr);
    });

    test("decrypts strongSwan's IKE_AUTH request and response and finds its PSK AUTH (RFC 5282, RFC 7296 §2.15)", () => {
      const aead = provider.aead(20, 256)!;
      for (const [msgKey, keyKey, authKey] of [
        ['ikeAuthRequest', 'skEi', 'initiatorAuth'],
        ['ikeAuthResponse', 'skEr', 'responderAuth'],
      ] as const) {
        const raw = hex(msgKey);
        const msg = decodeMessage(raw);
        assert.equal(msg.header.exchangeType, ExchangeType.IKE_AUTH);
        const inner = decryptMessage(raw, msg, {
          kind: 'aead',
          key: aead.create(hex(keyKey)),
          ivLength: 8,
          icvLength: 16,
        });
        const auth = find(inner, PayloadType.AUTH);
        assert.equal(auth.method, AuthMethod.SHARED_KEY_MIC);
        assert.equal(toHex(auth.data), v[authKey]);
      }
    });

    test("computes strongSwan's PSK AUTH from its signed octets (RFC 7296 §2.15)", () => {
      const pad = prf.compute(new TextEncoder().encode(v.psk), new TextEncoder().encode('Key Pad for IKEv2'));
      assert.equal(toHex(pad), v.pskKeyPad);
      assert.equal(toHex(prf.compute(pad, hex('initiatorSignedOctets'))), v.initiatorAuth);
      assert.equal(toHex(prf.compute(pad, hex('responderSignedOctets'))), v.responderAuth);
    });
  });
}
