import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { nobleProvider, nodeProvider, type PrfAlgorithm, PrfId, signatureScheme } from '@ikegate/crypto';
import { fromHex, fuzzRuns, fuzzSeed, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { IdType, NotifyError, PayloadType } from '../codec/constants.js';
import { decodeMessage } from '../codec/message.js';
import type { NoncePayload } from '../codec/types.js';
import { RemoteProtocolError } from '../errors.js';
import { idMatchesCertificate } from './identity.js';
import { pskAuthData, verifyPskAuth } from './psk.js';
import { idPayloadBody, signedOctets } from './signed-octets.js';
import {
  chooseSignatureScheme,
  parseSignatureAuthData,
  signatureAuthData,
  verifySignatureAuth,
} from './signature.js';

const v = JSON.parse(
  readFileSync(
    new URL('../../../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
    'utf8',
  ),
) as Record<string, string>;
const testdata = (f: string) =>
  readFileSync(new URL(`../../../crypto/src/testdata/${f}`, import.meta.url), 'utf8');
const enc = (s: string) => new TextEncoder().encode(s);

describe('AUTH signed octets and PSK, against a real strongSwan exchange (RFC 7296 §2.15)', () => {
  const req = fromHex(v.ikeSaInitRequest ?? '');
  const resp = fromHex(v.ikeSaInitResponse ?? '');
  const nonce = (raw: Uint8Array) =>
    (decodeMessage(raw).payloads.find((p) => p.type === PayloadType.NONCE) as NoncePayload).data;
  for (const provider of [nodeProvider, nobleProvider]) {
    const prf = provider.prf(PrfId.HMAC_SHA2_256)!;
    test(`${provider.name}: initiator and responder signed octets equal strongSwan's`, () => {
      const i = signedOctets(
        prf,
        req,
        nonce(resp),
        fromHex(v.skPi ?? ''),
        idPayloadBody(IdType.ID_FQDN, enc('a.example')),
      );
      const r = signedOctets(
        prf,
        resp,
        nonce(req),
        fromHex(v.skPr ?? ''),
        idPayloadBody(IdType.ID_FQDN, enc('b.example')),
      );
      assert.equal(toHex(i), v.initiatorSignedOctets);
      assert.equal(toHex(r), v.responderSignedOctets);
    });

    test(`${provider.name}: PSK AUTH equals strongSwan's and verifies; a wrong PSK does not`, () => {
      const octets = fromHex(v.initiatorSignedOctets ?? '');
      assert.equal(toHex(pskAuthData(prf, enc(v.psk ?? ''), octets)), v.initiatorAuth);
      assert.ok(verifyPskAuth(prf, enc(v.psk ?? ''), octets, fromHex(v.initiatorAuth ?? '')));
      assert.ok(!verifyPskAuth(prf, enc('wrong'), octets, fromHex(v.initiatorAuth ?? '')));
    });
  }
});

describe('PSK key pad cache: prf(PSK, "Key Pad for IKEv2") once per PSK and PRF (RFC 7296 §2.15)', () => {
  const octets = fromHex(v.initiatorSignedOctets ?? '');
  /** AUTH computed without any cache, straight from §2.15. */
  const uncached = (prf: PrfAlgorithm, psk: Uint8Array, data: Uint8Array) =>
    prf.compute(prf.compute(psk, enc('Key Pad for IKEv2')), data);

  test('cached and uncached paths give identical AUTH octets, first call and every later one', () => {
    const psk = enc(v.psk ?? '');
    const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
    for (let i = 0; i < 3; i++) {
      const data = i === 0 ? octets : enc(`other signed octets ${i}`);
      assert.equal(toHex(pskAuthData(prf, psk, data)), toHex(uncached(prf, psk, data)), `call ${i}`);
    }
    assert.equal(toHex(pskAuthData(prf, psk, octets)), v.initiatorAuth);
  });

  test('one PSK under several PRFs (HMAC-SHA2-256/384/512, both providers) keeps one value per PRF', () => {
    const psk = enc('a shared key used with three PRFs');
    for (const provider of [nodeProvider, nobleProvider])
      for (const id of [PrfId.HMAC_SHA2_256, PrfId.HMAC_SHA2_384, PrfId.HMAC_SHA2_512, PrfId.HMAC_SHA2_256]) {
        const prf = provider.prf(id)!;
        assert.equal(
          toHex(pskAuthData(prf, psk, octets)),
          toHex(uncached(prf, psk, octets)),
          `${provider.name} ${id}`,
        );
      }
  });

  test('a PSK array rewritten in place is not answered from the old value', () => {
    const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
    const psk = enc('first key octets');
    const before = toHex(pskAuthData(prf, psk, octets));
    psk.set(enc('other'));
    const after = toHex(pskAuthData(prf, psk, octets));
    assert.notEqual(after, before);
    assert.equal(after, toHex(uncached(prf, psk, octets)));
    assert.ok(verifyPskAuth(prf, psk, octets, fromHex(after)));
    assert.ok(!verifyPskAuth(prf, psk, octets, fromHex(before)));
  });

  test('AUTH octets the caller gets do not alias the cached value (modifying them changes no later AUTH)', () => {
    const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
    const psk = enc(v.psk ?? '');
    pskAuthData(prf, psk, octets).fill(0);
    assert.equal(toHex(pskAuthData(prf, psk, octets)), v.initiatorAuth);
  });

  test('equal PSK octets in different arrays give equal AUTH (the cache is per array, the value per octets)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 200 }),
        (key, data) => {
          const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
          const a = pskAuthData(prf, key, data);
          const b = pskAuthData(prf, key.slice(), data);
          assert.equal(toHex(a), toHex(b));
          assert.equal(toHex(a), toHex(uncached(prf, key, data)));
        },
      ),
      { numRuns: Math.min(fuzzRuns(), 200), seed: fuzzSeed() },
    );
  });
});

describe('RFC 7427 digital signature AUTH', () => {
  const octets = fromHex(v.responderSignedOctets ?? '');
  const keys = {
    ecdsa: createPrivateKey(testdata('ee-ecdsa.key')),
    rsa: createPrivateKey(testdata('ee-rsa.key')),
    ed25519: createPrivateKey(testdata('ed25519.key')),
  };
  const cases = [
    ['ecdsa', 'ecdsa-with-sha256'],
    ['ecdsa', 'ecdsa-with-sha384'],
    ['rsa', 'sha256WithRSAEncryption'],
    ['rsa', 'rsassa-pss-sha256'],
    ['ed25519', 'ed25519'],
  ] as const;
  for (const [k, name] of cases) {
    test(`${name}: AUTH data is length | AlgorithmIdentifier | signature and verifies (§3)`, () => {
      const scheme = signatureScheme(name);
      const data = signatureAuthData(scheme, keys[k], octets);
      assert.equal(data[0], scheme.algorithmIdentifier.length);
      assert.equal(toHex(data.subarray(1, 1 + data[0]!)), toHex(scheme.algorithmIdentifier));
      const pub = createPublicKey(keys[k]);
      assert.equal(verifySignatureAuth(pub, data, octets).name, name);
      const tampered = octets.slice();
      tampered[10]! ^= 1;
      assert.throws(
        () => verifySignatureAuth(pub, data, tampered),
        (e: unknown) => e instanceof RemoteProtocolError && e.notify === NotifyError.AUTHENTICATION_FAILED,
      );
    });
  }

  test('a signature under another key fails with AUTHENTICATION_FAILED', () => {
    const data = signatureAuthData(signatureScheme('ecdsa-with-sha256'), keys.ecdsa, octets);
    const other = createPublicKey(testdata('other-ca.key'));
    assert.throws(() => verifySignatureAuth(other, data, octets), RemoteProtocolError);
  });

  test('the scheme follows our key and the hashes the peer announced (§4)', () => {
    assert.equal(chooseSignatureScheme(keys.ecdsa, [2, 3, 4])?.name, 'ecdsa-with-sha256');
    assert.equal(chooseSignatureScheme(keys.rsa, [4])?.name, 'sha512WithRSAEncryption');
    assert.equal(chooseSignatureScheme(keys.ed25519, [2, 5])?.name, 'ed25519');
    assert.equal(chooseSignatureScheme(keys.ecdsa, [1]), undefined);
  });

  test('fuzz: parsing any AUTH data gives a scheme or AUTHENTICATION_FAILED, nothing else', () => {
    const good = signatureAuthData(signatureScheme('ecdsa-with-sha256'), keys.ecdsa, octets);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 120 }),
          fc
            .array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 })
            .map((flips) => {
              const m = good.slice();
              for (const [at, x] of flips) m[at % m.length] = x;
              return m;
            }),
        ),
        (data) => {
          try {
            parseSignatureAuthData(data);
          } catch (e) {
            assert.ok(e instanceof RemoteProtocolError && e.notify === NotifyError.AUTHENTICATION_FAILED);
          }
        },
      ),
      { numRuns: fuzzRuns(), seed: fuzzSeed() },
    );
  });
});

describe('peer ID against its certificate (RFC 7296 §3.5, RFC 4945 §3.1)', () => {
  const gw = new X509Certificate(testdata('ee-ecdsa.pem'));
  const carol = new X509Certificate(testdata('ee-rsa.pem'));
  test('ID_FQDN matches a dNSName, case-insensitively; another name does not', () => {
    assert.ok(idMatchesCertificate(IdType.ID_FQDN, enc('GW.example.org'), gw));
    assert.ok(!idMatchesCertificate(IdType.ID_FQDN, enc('evil.example.org'), gw));
  });
  test('ID_RFC822_ADDR matches an rfc822Name', () => {
    assert.ok(idMatchesCertificate(IdType.ID_RFC822_ADDR, enc('carol@example.org'), carol));
    assert.ok(!idMatchesCertificate(IdType.ID_RFC822_ADDR, enc('mallory@example.org'), carol));
  });
  test('ID_IPV4_ADDR matches an iPAddress', () => {
    assert.ok(idMatchesCertificate(IdType.ID_IPV4_ADDR, Uint8Array.of(192, 0, 2, 1), gw));
    assert.ok(!idMatchesCertificate(IdType.ID_IPV4_ADDR, Uint8Array.of(192, 0, 2, 2), gw));
  });
});
