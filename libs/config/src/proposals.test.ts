/**
 * Proposal strings to transform IDs. Expected numbers are the IANA "IKEv2 Parameters" registry
 * values (RFC 7296 §3.3.2; RFC 4868 for HMAC-SHA2; RFC 9370 for ADDKE; ML-KEM 35-37).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, parseEspProposal, parseIkeProposal } from './index.js';

describe('parseIkeProposal', () => {
  const table: [text: string, expected: object][] = [
    [
      'aes256gcm16-prfsha256-x25519 (ENCR_AES_GCM_16=20, PRF_HMAC_SHA2_256=5, Curve25519=31)',
      { encryption: [{ id: 20, keyBits: 256 }], prf: [5], integrity: [], keyExchange: [31] },
    ],
    [
      'aes128gcm16-prfsha384-ecp384 (ECP-384=20, PRF_HMAC_SHA2_384=6)',
      { encryption: [{ id: 20, keyBits: 128 }], prf: [6], integrity: [], keyExchange: [20] },
    ],
    [
      'aes192gcm16-prfsha512-ecp521 (ECP-521=21, PRF_HMAC_SHA2_512=7)',
      { encryption: [{ id: 20, keyBits: 192 }], prf: [7], integrity: [], keyExchange: [21] },
    ],
    [
      'aes256-sha256-modp2048 (ENCR_AES_CBC=12, AUTH_HMAC_SHA2_256_128=12, PRF derived=5, MODP-2048=14)',
      { encryption: [{ id: 12, keyBits: 256 }], prf: [5], integrity: [12], keyExchange: [14] },
    ],
    [
      'aes128-sha384-sha512-prfsha512-ecp256-modp3072-modp4096 (AUTH 13/14, ECP-256=19, MODP 15/16)',
      { encryption: [{ id: 12, keyBits: 128 }], prf: [7], integrity: [13, 14], keyExchange: [19, 15, 16] },
    ],
    [
      'chacha20poly1305-prfsha256-curve25519 (ENCR_CHACHA20_POLY1305=28)',
      { encryption: [{ id: 28, keyBits: 256 }], prf: [5], integrity: [], keyExchange: [31] },
    ],
    [
      'aes256gcm16-prfsha256-x25519-ke1_mlkem768 (ADDKE1 ML-KEM-768=36, RFC 9370)',
      {
        encryption: [{ id: 20, keyBits: 256 }],
        prf: [5],
        integrity: [],
        keyExchange: [31],
        additionalKeyExchanges: [[36]],
      },
    ],
    [
      'aes256gcm16-prfsha256-mlkem512-mlkem1024 (ML-KEM-512=35, ML-KEM-1024=37)',
      { encryption: [{ id: 20, keyBits: 256 }], prf: [5], integrity: [], keyExchange: [35, 37] },
    ],
  ];
  for (const [name, expected] of table) {
    it(name, () => assert.deepEqual(parseIkeProposal(name.split(' ')[0]!), expected));
  }

  const errors: [text: string, message: RegExp][] = [
    ['aes256gcm16-prfsha256-x9999', /unknown algorithm "x9999"/],
    ['aes256gcm16-prfsha256-x448', /x448/],
    ['aes256gcm16-x25519', /PRF/],
    ['aes256gcm16-prfsha256', /key exchange/],
    ['aes256-prfsha256-x25519', /integrity/],
    ['aes256gcm16-sha256-prfsha256-x25519', /no integrity/],
    ['aes256gcm16-aes256-sha256-x25519', /mix/],
    ['aes256gcm16--x25519', /empty token/],
    ['aes256gcm16-prfsha256-x25519-ke2_mlkem768', /ke1_/],
    ['aes256gcm16-prfsha256-x25519-ke1_foo', /unknown key exchange "foo"/],
    ['', /empty/],
  ];
  for (const [text, message] of errors) {
    it(`rejects "${text}"`, () => {
      assert.throws(
        () => parseIkeProposal(text),
        (e: unknown) => e instanceof ConfigError && message.test(e.issues[0]!.message),
      );
    });
  }
});

describe('parseEspProposal', () => {
  it('aes256gcm16 / aes128gcm16 → ENCR_AES_GCM_16 (20) with key length 256 / 128', () => {
    assert.deepEqual(parseEspProposal('aes256gcm16'), {
      encryption: [{ id: 20, keyBits: 256 }],
      integrity: [],
      esn: [false],
    });
    assert.deepEqual(parseEspProposal('aes128gcm16'), {
      encryption: [{ id: 20, keyBits: 128 }],
      integrity: [],
      esn: [false],
    });
  });
  it('aes256-sha512 → ENCR_AES_CBC (12) + AUTH_HMAC_SHA2_512_256 (14)', () => {
    assert.deepEqual(parseEspProposal('aes256-sha512'), {
      encryption: [{ id: 12, keyBits: 256 }],
      integrity: [14],
      esn: [false],
    });
  });
  it('chacha20poly1305-noesn → ENCR_CHACHA20_POLY1305 (28)', () => {
    assert.deepEqual(parseEspProposal('chacha20poly1305-noesn'), {
      encryption: [{ id: 28, keyBits: 256 }],
      integrity: [],
      esn: [false],
    });
  });
  it('aes256gcm16-x25519 → PFS with X25519 (31) for CREATE_CHILD_SA rekeys (RFC 7296 §1.3.1)', () => {
    assert.deepEqual(parseEspProposal('aes256gcm16-x25519'), {
      encryption: [{ id: 20, keyBits: 256 }],
      integrity: [],
      keyExchange: [31],
      esn: [false],
    });
  });
  it('rejects a PRF, an additional key exchange, and unknown tokens', () => {
    assert.throws(() => parseEspProposal('aes256gcm16-prfsha256'), /PRF/);
    assert.throws(() => parseEspProposal('aes256gcm16-x25519-ke1_mlkem768'), /additional key exchanges/);
    assert.throws(() => parseEspProposal('aes256gcm16-bogus'), /"bogus"/);
  });
});
