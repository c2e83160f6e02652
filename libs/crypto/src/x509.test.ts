import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { toHex } from '@ikegate/testkit';
import {
  certificateDer,
  loadCertificate,
  loadCertificates,
  subjectAltNames,
  subjectOf,
  subjectPublicKeyInfoSha1,
  verifyChain,
} from './x509.js';

const fixture = (name: string) => readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');
const ca = loadCertificate(fixture('ca-ecdsa.pem'))!;
const otherCa = loadCertificate(fixture('other-ca.pem'))!;
const eeEcdsa = loadCertificate(fixture('ee-ecdsa.pem'))!;
const eeRsa = loadCertificate(fixture('ee-rsa.pem'))!;
/** A time inside every fixture's validity, taken from the fixtures themselves (no wall clock). */
const now = new Date(Date.parse(eeEcdsa.validFrom) + 3600_000);

describe('X.509 helpers', () => {
  it('loads PEM and DER, and returns undefined for garbage', () => {
    assert.ok(ca);
    const der = certificateDer(eeRsa);
    assert.equal(loadCertificate(der)?.fingerprint256, eeRsa.fingerprint256);
    assert.equal(loadCertificate(new Uint8Array([0x30, 0x03, 0x02, 0x01, 0x00])), undefined);
    assert.equal(loadCertificate('not a certificate'), undefined);
    assert.equal(loadCertificates(fixture('ca-ecdsa.pem') + fixture('ee-rsa.pem')).length, 2);
  });

  it('verifies ECDSA and RSA end entities to the trust anchor at an injected time', () => {
    for (const ee of [eeEcdsa, eeRsa]) {
      const r = verifyChain(ee, [], [ca], now);
      assert.equal(r.kind, 'valid');
      if (r.kind === 'valid')
        assert.deepEqual(
          r.chain.map((c) => c.fingerprint256),
          [ee.fingerprint256, ca.fingerprint256],
        );
    }
  });

  it('rejects an end entity after its notAfter and before its notBefore', () => {
    const late = new Date(Date.parse(eeEcdsa.validTo) + 86_400_000);
    const early = new Date(Date.parse(eeEcdsa.validFrom) - 86_400_000);
    assert.deepEqual(pick(verifyChain(eeEcdsa, [], [ca], late)), 'expired');
    assert.deepEqual(pick(verifyChain(eeEcdsa, [], [ca], early)), 'not-yet-valid');
  });

  it('rejects a chain to an anchor with the same name but another key', () => {
    // OpenSSL's issuer check also compares authorityKeyIdentifier, so this fails before the signature.
    assert.ok(['no-issuer', 'bad-signature'].includes(pick(verifyChain(eeEcdsa, [], [otherCa], now))));
  });

  it('rejects a certificate whose signature does not verify under its issuer', () => {
    const der = certificateDer(eeRsa).slice();
    der[der.length - 1]! ^= 0x01; // last octet of the signature value
    const forged = loadCertificate(der);
    assert.ok(forged);
    assert.equal(pick(verifyChain(forged, [], [ca], now)), 'bad-signature');
  });

  it('rejects a certificate whose issuer is unknown', () => {
    assert.equal(pick(verifyChain(eeEcdsa, [], [], now)), 'no-issuer');
  });

  it('does not accept an end-entity certificate as an issuer (basicConstraints CA:FALSE)', () => {
    // eeRsa is not an issuer of anything; using it as an "intermediate" finds no issuer by name.
    assert.equal(pick(verifyChain(eeEcdsa, [eeRsa], [], now)), 'no-issuer');
  });

  it('reads subject and subjectAltName entries', () => {
    assert.match(subjectOf(eeEcdsa), /CN=gw\.example\.org/);
    assert.deepEqual(subjectAltNames(eeEcdsa), {
      dns: ['gw.example.org'],
      ip: ['192.0.2.1'],
      email: [],
      uri: [],
    });
    assert.deepEqual(subjectAltNames(eeRsa).email, ['carol@example.org']);
    assert.deepEqual(subjectAltNames(ca), { dns: [], ip: [], email: [], uri: [] });
  });

  it('SHA-1 of SubjectPublicKeyInfo matches an independent hash of the exported SPKI (RFC 7296 §3.7 CERTREQ)', () => {
    const spki = ca.publicKey.export({ type: 'spki', format: 'der' });
    assert.equal(toHex(subjectPublicKeyInfoSha1(ca)), createHash('sha1').update(spki).digest('hex'));
    assert.equal(subjectPublicKeyInfoSha1(ca).length, 20);
  });
});

function pick(r: ReturnType<typeof verifyChain>): string {
  return r.kind === 'valid' ? 'valid' : r.reason;
}
