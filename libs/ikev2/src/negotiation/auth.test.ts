import assert from 'node:assert/strict';
import { createHmac, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { certificateDer, nodeProvider, PrfId, signatureScheme } from '@ikegate/crypto';
import { fromHex, toHex } from '@ikegate/testkit';
import { CertEncoding, IdType, PayloadType } from '../codec/constants.js';
import { decodeMessage } from '../codec/message.js';
import type { CertPayload, NoncePayload } from '../codec/types.js';
import {
  certificateSubjectDer,
  idPayloadBody,
  initiatorSignedOctets,
  intAuthStep,
  intAuthSuffix,
  peerIdMatchesCertificate,
  pskAuthData,
  responderSignedOctets,
  signatureAuthData,
  verifyPeerCertificate,
  verifyPskAuth,
  verifySignatureAuth,
} from './auth.js';

const v = JSON.parse(
  readFileSync(
    new URL('../../../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
    'utf8',
  ),
) as Record<string, string>;
const testdata = (f: string) =>
  readFileSync(new URL(`../../../crypto/src/testdata/${f}`, import.meta.url), 'utf8');
const enc = (s: string) => new TextEncoder().encode(s);
const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
const hmac = (key: Uint8Array, ...data: Uint8Array[]) => {
  const h = createHmac('sha256', key);
  for (const d of data) h.update(d);
  return new Uint8Array(h.digest());
};

describe('signed octets and PSK AUTH (RFC 7296 §2.15)', () => {
  const req = fromHex(v.ikeSaInitRequest ?? '');
  const resp = fromHex(v.ikeSaInitResponse ?? '');
  const nonce = (raw: Uint8Array) =>
    (decodeMessage(raw).payloads.find((p) => p.type === PayloadType.NONCE) as NoncePayload).data;
  test("both roles' signed octets equal strongSwan 5.9.8's (captured exchange)", () => {
    const i = initiatorSignedOctets(
      prf,
      req,
      nonce(resp),
      fromHex(v.skPi ?? ''),
      idPayloadBody(IdType.ID_FQDN, enc('a.example')),
    );
    const r = responderSignedOctets(
      prf,
      resp,
      nonce(req),
      fromHex(v.skPr ?? ''),
      idPayloadBody(IdType.ID_FQDN, enc('b.example')),
    );
    assert.equal(toHex(i), v.initiatorSignedOctets);
    assert.equal(toHex(r), v.responderSignedOctets);
  });
  test("PSK AUTH equals strongSwan's AUTH and an HMAC-SHA-256 computed directly through node:crypto", () => {
    const octets = fromHex(v.responderSignedOctets ?? '');
    const direct = hmac(hmac(enc(v.psk ?? ''), enc('Key Pad for IKEv2')), octets);
    const ours = pskAuthData(prf, enc(v.psk ?? ''), octets);
    assert.equal(toHex(ours), toHex(direct));
    assert.equal(toHex(ours), v.responderAuth);
    assert.ok(verifyPskAuth(prf, enc(v.psk ?? ''), octets, ours));
    assert.ok(!verifyPskAuth(prf, enc(v.psk ?? ''), octets, ours.subarray(1)));
  });
});

describe('IntAuth for IKE_INTERMEDIATE (RFC 9242 §3.3.2)', () => {
  test('lengths rewritten without IV/padding/ICV, chained, and appended as IntAuth_i | IntAuth_r | MID', () => {
    const skPi = fromHex('11'.repeat(32));
    const skPr = fromHex('22'.repeat(32));
    // IKE header (28) + SK generic header (4) as on the wire: total 28+4+8(IV)+6(inner)+16(ICV) = 62
    const prefix = fromHex(`${'aa'.repeat(16)}2b20240800000001` + `0000003e` + `2900002a`);
    const inner = fromHex('000000060102');
    const expectedA = fromHex(`${'aa'.repeat(16)}2b20240800000001` + `00000026` + `2900000a`);
    const i1 = intAuthStep(prf, skPi, undefined, prefix, inner);
    assert.equal(toHex(i1), toHex(hmac(skPi, expectedA, inner)));
    const i2 = intAuthStep(prf, skPi, i1, prefix, inner);
    assert.equal(toHex(i2), toHex(hmac(skPi, i1, expectedA, inner)));
    assert.equal(toHex(prefix.subarray(24)), '0000003e2900002a', 'input not modified');
    const r1 = intAuthStep(prf, skPr, undefined, prefix, inner);
    const suffix = intAuthSuffix(i2, r1, 2);
    assert.equal(toHex(suffix), `${toHex(i2)}${toHex(r1)}00000002`);
    const octets = initiatorSignedOctets(
      prf,
      fromHex('01'),
      fromHex('02'),
      skPi,
      idPayloadBody(2, enc('a')),
      suffix,
    );
    assert.equal(toHex(octets.subarray(octets.length - suffix.length)), toHex(suffix));
  });
});

describe('certificates and signatures (RFC 7296 §3.5/§3.6, RFC 7427, RFC 4945)', () => {
  const ca = new X509Certificate(testdata('ca-ecdsa.pem'));
  const otherCa = new X509Certificate(testdata('other-ca.pem'));
  const gw = new X509Certificate(testdata('ee-ecdsa.pem'));
  const now = new Date(Date.parse(ca.validFrom) + 86_400_000);
  const certPayload = (c: X509Certificate): CertPayload => ({
    type: PayloadType.CERT,
    critical: false,
    encoding: CertEncoding.X509_CERT_SIGNATURE,
    data: certificateDer(c),
  });
  test('the subject DER is found and matches ID_DER_ASN1_DN exactly', () => {
    const printable = (s: string) => [0x13, s.length, ...enc(s)];
    const utf8 = (s: string) => [0x0c, s.length, ...enc(s)];
    const rdn = (oid: number, value: number[]) => {
      const atv = [0x06, 0x03, 0x55, 0x04, oid, ...value];
      const seq = [0x30, atv.length, ...atv];
      return [0x31, seq.length, ...seq];
    };
    const body = [
      ...rdn(6, printable('CH')),
      ...rdn(10, utf8('ikegate test')),
      ...rdn(3, utf8('gw.example.org')),
    ];
    const dn = Uint8Array.from([0x30, body.length, ...body]);
    assert.equal(toHex(certificateSubjectDer(new Uint8Array(gw.raw))!), toHex(dn));
    assert.ok(peerIdMatchesCertificate(IdType.ID_DER_ASN1_DN, dn, gw));
    assert.ok(!peerIdMatchesCertificate(IdType.ID_DER_ASN1_DN, dn.subarray(1), gw));
    assert.ok(peerIdMatchesCertificate(IdType.ID_FQDN, enc('gw.example.org'), gw));
    assert.equal(certificateSubjectDer(fromHex('3003020100')), undefined);
  });
  test('a certificate chaining to our anchor and naming the ID is valid; its key verifies a RFC 7427 AUTH', () => {
    const r = verifyPeerCertificate([certPayload(gw)], IdType.ID_FQDN, enc('gw.example.org'), [ca], now);
    assert.equal(r.kind, 'valid');
    if (r.kind !== 'valid') return;
    const octets = fromHex(v.responderSignedOctets ?? '');
    const data = signatureAuthData(
      signatureScheme('ecdsa-with-sha256'),
      createPrivateKey(testdata('ee-ecdsa.key')),
      octets,
    );
    assert.equal(verifySignatureAuth(r.publicKey, data, octets).name, 'ecdsa-with-sha256');
    assert.ok(createPublicKey(testdata('ee-ecdsa.pem')).equals(r.publicKey));
  });
  test('wrong ID, unknown anchor, expiry and missing/garbage certificates are invalid', () => {
    const check = (ps: CertPayload[], id = 'gw.example.org', anchors = [ca], at = now) =>
      verifyPeerCertificate(ps, IdType.ID_FQDN, enc(id), anchors, at);
    const reason = (r: ReturnType<typeof check>) => (r.kind === 'invalid' ? r.reason : 'valid');
    assert.equal(reason(check([certPayload(gw)], 'evil.example.org')), 'id-mismatch');
    assert.equal(reason(check([certPayload(gw)], undefined, [otherCa])), 'no-issuer');
    assert.equal(
      reason(check([certPayload(gw)], undefined, [ca], new Date(Date.parse(gw.validTo) + 1000))),
      'expired',
    );
    assert.equal(reason(check([])), 'no-certificate');
    assert.equal(reason(check([{ ...certPayload(gw), data: fromHex('3000') }])), 'unparseable');
    assert.equal(
      reason(check([{ ...certPayload(gw), encoding: CertEncoding.HASH_URL_X509_CERT }])),
      'unsupported-encoding',
    );
  });
});
