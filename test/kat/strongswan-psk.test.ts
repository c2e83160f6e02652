/**
 * Known answers from a real peer: one IKE_SA_INIT + IKE_AUTH exchange between two strongSwan
 * 5.9.8 daemons, captured on the wire, with the responder's own key material and AUTH inputs from
 * its ike=4 log (test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json, see "source" there).
 * ikegate must decode strongSwan's messages, derive the same SKEYSEED and SK_* keys (RFC 7296
 * §2.14), decrypt its SK payloads (RFC 5282), and, through the AUTH code the IKE_AUTH task calls,
 * build the same signed octets from those messages and compute and verify the same PSK AUTH (§2.15).
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
  IdType,
  idPayloadBody,
  type IdPayload,
  type IkeMessage,
  initiatorSignedOctets,
  type Payload,
  PayloadType,
  pskAuthData,
  responderSignedOctets,
  verifyPskAuth,
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

/** find() for IDi/IDr: IdPayload's `type` is IDi | IDr, so Extract<Payload, { type: IDi }> is never. */
function findId(list: readonly Payload[], type: typeof PayloadType.IDi | typeof PayloadType.IDr): IdPayload {
  const p = list.find((x): x is IdPayload => x.type === type);
  assert.ok(p, `payload ${type} missing`);
  return p;
}

for (const provider of [nodeProvider, nobleProvider]) {
  describe(`strongSwan 5.9.8 PSK exchange on the ${provider.name} provider`, () => {
    const req = decodeMessage(hex('ikeSaInitRequest'));
    const resp = decodeMessage(hex('ikeSaInitResponse'));
    const ni = find(req, PayloadType.NONCE).data;
    const nr = find(resp, PayloadType.NONCE).data;
    const prf = provider.prf(PrfId.HMAC_SHA2_256)!;
    const aead = provider.aead(20, 256)!;

    /** SK_* as we derive them from strongSwan's IKE_SA_INIT (checked against its log below). */
    const deriveKeys = () =>
      deriveIkeSaKeys(
        prf,
        deriveSkeyseed(prf, ni, nr, hex('sharedSecret')),
        ni,
        nr,
        resp.header.initiatorSpi,
        resp.header.responderSpi,
        { skD: 32, skA: 0, skE: 36, skP: 32 },
      );

    /** The inner payloads of strongSwan's IKE_AUTH message `msgKey`, decrypted with SK_e `skE`. */
    const decryptIkeAuth = (msgKey: string, skE: Uint8Array) => {
      const raw = hex(msgKey);
      const msg = decodeMessage(raw);
      assert.equal(msg.header.exchangeType, ExchangeType.IKE_AUTH);
      return decryptMessage(raw, msg, { kind: 'aead', key: aead.create(skE), ivLength: 8, icvLength: 16 });
    };

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
      for (const [msgKey, keyKey, authKey] of [
        ['ikeAuthRequest', 'skEi', 'initiatorAuth'],
        ['ikeAuthResponse', 'skEr', 'responderAuth'],
      ] as const) {
        const inner = decryptIkeAuth(msgKey, hex(keyKey));
        const auth = find(inner, PayloadType.AUTH);
        assert.equal(auth.method, AuthMethod.SHARED_KEY_MIC);
        assert.equal(toHex(auth.data), v[authKey]);
      }
    });

    test("our AUTH code builds strongSwan's signed octets from its messages, computes its PSK AUTH and verifies it; a flipped bit fails (RFC 7296 §2.15)", () => {
      const keys = deriveKeys();
      const psk = new TextEncoder().encode(v.psk);
      const initiatorInner = decryptIkeAuth('ikeAuthRequest', keys.skEi);
      const responderInner = decryptIkeAuth('ikeAuthResponse', keys.skEr);
      const idi = findId(initiatorInner, PayloadType.IDi);
      const idr = findId(responderInner, PayloadType.IDr);
      assert.equal(idi.idType, IdType.ID_FQDN);
      assert.equal(new TextDecoder().decode(idi.data), v.initiatorId);
      assert.equal(idr.idType, IdType.ID_FQDN);
      assert.equal(new TextDecoder().decode(idr.data), v.responderId);

      for (const side of [
        {
          name: 'initiator',
          // RealMessage1 | NonceRData | prf(SK_pi, IDi body)
          octets: initiatorSignedOctets(
            prf,
            hex('ikeSaInitRequest'),
            nr,
            keys.skPi,
            idPayloadBody(idi.idType, idi.data),
          ),
          expectedOctets: v.initiatorSignedOctets,
          received: find(initiatorInner, PayloadType.AUTH).data,
          expectedAuth: v.initiatorAuth,
        },
        {
          name: 'responder',
          // RealMessage2 | NonceIData | prf(SK_pr, IDr body)
          octets: responderSignedOctets(
            prf,
            hex('ikeSaInitResponse'),
            ni,
            keys.skPr,
            idPayloadBody(idr.idType, idr.data),
          ),
          expectedOctets: v.responderSignedOctets,
          received: find(responderInner, PayloadType.AUTH).data,
          expectedAuth: v.responderAuth,
        },
      ]) {
        assert.equal(toHex(side.octets), side.expectedOctets, `${side.name} signed octets`);
        assert.equal(toHex(pskAuthData(prf, psk, side.octets)), side.expectedAuth, `${side.name} AUTH`);
        assert.equal(toHex(side.received), side.expectedAuth, `${side.name} AUTH on the wire`);
        assert.equal(verifyPskAuth(prf, psk, side.octets, side.received), true, `${side.name} verifies`);
        for (const bit of [0, 8 * side.received.length - 1]) {
          const flipped = side.received.slice();
          flipped[bit >> 3]! ^= 0x80 >> (bit & 7);
          assert.equal(
            verifyPskAuth(prf, psk, side.octets, flipped),
            false,
            `${side.name} AUTH, bit ${bit} flipped`,
          );
        }
        assert.equal(
          verifyPskAuth(prf, new TextEncoder().encode(`${v.psk}x`), side.octets, side.received),
          false,
          `${side.name} AUTH under another PSK`,
        );
      }
    });
  });
}
