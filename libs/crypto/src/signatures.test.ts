import assert from 'node:assert/strict';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { toHex } from '@ikegate/testkit';
import { LocalUsageError } from './errors.js';
import {
  SIGNATURE_SCHEMES,
  type SignatureSchemeName,
  schemeFromAlgorithmIdentifier,
  sign,
  signatureScheme,
  verify,
} from './signatures.js';

const fixture = (name: string) => readFileSync(new URL(`./testdata/${name}`, import.meta.url), 'utf8');

/** RFC 7427 Appendix A (and RFC 8420 §2 for Ed25519), hex as printed; A.4.3 in its errata form. */
const APPENDIX_A: Record<SignatureSchemeName, string> = {
  sha256WithRSAEncryption: '300d06092a864886f70d01010b0500',
  sha384WithRSAEncryption: '300d06092a864886f70d01010c0500',
  sha512WithRSAEncryption: '300d06092a864886f70d01010d0500',
  'ecdsa-with-sha256': '300a06082a8648ce3d040302',
  'ecdsa-with-sha384': '300a06082a8648ce3d040303',
  'ecdsa-with-sha512': '300a06082a8648ce3d040304',
  'rsassa-pss-sha256':
    '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108' +
    '300d06096086480165030402010500a203020120',
  ed25519: '300506032b6570',
};

const keys: Record<string, { priv: KeyObject; pub: KeyObject }> = {
  ec: { priv: createPrivateKey(fixture('ee-ecdsa.key')), pub: createPublicKey(fixture('ee-ecdsa.key')) },
  rsa: { priv: createPrivateKey(fixture('ee-rsa.key')), pub: createPublicKey(fixture('ee-rsa.key')) },
  ed25519: { priv: createPrivateKey(fixture('ed25519.key')), pub: createPublicKey(fixture('ed25519.pub')) },
};

const data = new Uint8Array(Buffer.from('RFC 7296 §2.15 signed octets: message | Nr | prf(SK_pi, IDi)'));

describe('RFC 7427 signatures', () => {
  it('AlgorithmIdentifier bytes equal RFC 7427 Appendix A and RFC 8420', () => {
    for (const s of SIGNATURE_SCHEMES) assert.equal(toHex(s.algorithmIdentifier), APPENDIX_A[s.name], s.name);
    assert.equal(SIGNATURE_SCHEMES.length, Object.keys(APPENDIX_A).length);
  });

  it('schemeFromAlgorithmIdentifier finds each scheme, accepts A.4.3 as printed, and rejects unknown bytes', () => {
    for (const s of SIGNATURE_SCHEMES)
      assert.equal(schemeFromAlgorithmIdentifier(s.algorithmIdentifier)?.name, s.name);
    const printed = Buffer.from(
      '304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a864886f70d010108' +
        '300d06096086480165030402010500a203020120a303020101',
      'hex',
    );
    assert.equal(schemeFromAlgorithmIdentifier(printed)?.name, 'rsassa-pss-sha256');
    assert.equal(schemeFromAlgorithmIdentifier(Buffer.from('300a06082a8648ce3d040301', 'hex')), undefined);
    assert.equal(schemeFromAlgorithmIdentifier(new Uint8Array(0)), undefined);
  });

  for (const s of SIGNATURE_SCHEMES) {
    it(`${s.name}: a signature verifies, and fails on tampered data or signature`, () => {
      const k = keys[s.keyTypes[0]!]!;
      const sig = sign(s, k.priv, data);
      assert.equal(verify(s, k.pub, data, sig), true);
      const other = data.slice();
      other[0]! ^= 1;
      assert.equal(verify(s, k.pub, other, sig), false);
      const badSig = sig.slice();
      badSig[badSig.length - 1]! ^= 1;
      assert.equal(verify(s, k.pub, data, badSig), false);
      assert.equal(
        verify(s, k.pub, data, new Uint8Array(3)),
        false,
        'malformed signature is false, not a throw',
      );
    });
  }

  it('ECDSA signatures are DER Ecdsa-Sig-Value (RFC 7427 §3), not r | s', () => {
    const sig = sign(signatureScheme('ecdsa-with-sha256'), keys.ec!.priv, data);
    assert.equal(sig[0], 0x30);
    assert.equal(sig[1], sig.length - 2);
  });

  it('a key that does not fit the scheme: sign throws LocalUsageError, verify returns false', () => {
    const s = signatureScheme('ecdsa-with-sha256');
    assert.throws(
      () => sign(s, keys.rsa!.priv, data),
      (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_CRYPTO_BAD_SIGNATURE_INPUT',
    );
    const rsaSig = sign(signatureScheme('sha256WithRSAEncryption'), keys.rsa!.priv, data);
    assert.equal(verify(s, keys.rsa!.pub, data, rsaSig), false);
    assert.equal(verify(signatureScheme('rsassa-pss-sha256'), keys.rsa!.pub, data, rsaSig), false);
  });
});
