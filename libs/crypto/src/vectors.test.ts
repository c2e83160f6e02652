/**
 * Known-answer tests: the same tables run against every provider. Vector files and their origin
 * are described in vectors/README.md; small tables copied from RFC text are inline with their section.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ml_kem512, ml_kem768, ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { fromHex, toHex } from '@ikegate/testkit';
import { RemoteProtocolError } from './errors.js';
import { prfPlus } from './kdf.js';
import { nobleProvider } from './noble-provider.js';
import { nodeProvider } from './node-provider.js';
import type { CryptoProvider, RandomBytes } from './provider.js';

interface Kat {
  prf: { source: string; id: number; key: string; data: string; out: string }[];
  integrity: { source: string; id: number; key: string; data: string; icv: string }[];
  aead: {
    source: string;
    id: number;
    keyBits: number;
    keyMaterial: string;
    iv: string;
    aad: string;
    plaintext: string;
    ciphertextAndIcv: string;
  }[];
  cbc: { source: string; keyBits: number; key: string; iv: string; plaintext: string; ciphertext: string }[];
  prfPlus: { source: string; id: number; key: string; seed: string; out: string }[];
  keyExchange: KeVector[];
}

interface KeVector {
  source: string;
  id: number;
  initiatorPrivate: string;
  responderPrivate: string;
  initiatorPublic: string;
  responderPublic: string;
  shared: string;
}

const kat = JSON.parse(readFileSync(new URL('./vectors/kat.json', import.meta.url), 'utf8')) as Kat;

const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];

const ascii = (s: string) => new Uint8Array(Buffer.from(s, 'ascii'));

/** RFC 4231 §4.3 test case 2 (key "Jefe"): absent from RFC 4868's table, so listed here. */
const RFC4231_TC2 = [
  { id: 5, out: '5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843' },
  {
    id: 6,
    out: 'af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649',
  },
  {
    id: 7,
    out:
      '164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fd' +
      'caeab1a34d4a6b4b636e070a38bce737',
  },
];

/** RFC 5903 §8.1, §8.2, §8.3: i, g^i = x|y, r, g^r = x|y, g^ir x coordinate. */
const RFC5903: KeVector[] = [
  {
    source: 'RFC 5903 §8.1',
    id: 19,
    initiatorPrivate: 'C88F01F510D9AC3F70A292DAA2316DE544E9AAB8AFE84049C62A9C57862D1433',
    initiatorPublic:
      'DAD0B65394221CF9B051E1FECA5787D098DFE637FC90B9EF945D0C3772581180' +
      '5271A0461CDB8252D61F1C456FA3E59AB1F45B33ACCF5F58389E0577B8990BB3',
    responderPrivate: 'C6EF9C5D78AE012A011164ACB397CE2088685D8F06BF9BE0B283AB46476BEE53',
    responderPublic:
      'D12DFB5289C8D4F81208B70270398C342296970A0BCCB74C736FC7554494BF63' +
      '56FBF3CA366CC23E8157854C13C58D6AAC23F046ADA30F8353E74F33039872AB',
    shared: 'D6840F6B42F6EDAFD13116E0E12565202FEF8E9ECE7DCE03812464D04B9442DE',
  },
  {
    source: 'RFC 5903 §8.2',
    id: 20,
    initiatorPrivate:
      '099F3C7034D4A2C699884D73A375A67F7624EF7C6B3C0F160647B67414DCE655E35B538041E649EE3FAEF896783AB194',
    initiatorPublic:
      '667842D7D180AC2CDE6F74F37551F55755C7645C20EF73E31634FE72B4C55EE6DE3AC808ACB4BDB4C88732AEE95F41AA' +
      '9482ED1FC0EEB9CAFC4984625CCFC23F65032149E0E144ADA024181535A0F38EEB9FCFF3C2C947DAE69B4C634573A81C',
    responderPrivate:
      '41CB0779B4BDB85D47846725FBEC3C9430FAB46CC8DC5060855CC9BDA0AA2942E0308312916B8ED2960E4BD55A7448FC',
    responderPublic:
      'E558DBEF53EECDE3D3FCCFC1AEA08A89A987475D12FD950D83CFA41732BC509D0D1AC43A0336DEF96FDA41D0774A3571' +
      'DCFBEC7AACF3196472169E838430367F66EEBE3C6E70C416DD5F0C68759DD1FFF83FA40142209DFF5EAAD96DB9E6386C',
    shared:
      '11187331C279962D93D604243FD592CB9D0A926F422E47187521287E7156C5C4D603135569B9E9D09CF5D4A270F59746',
  },
  {
    source: 'RFC 5903 §8.3',
    id: 21,
    initiatorPrivate:
      '0037ADE9319A89F4DABDB3EF411AACCCA5123C61ACAB57B5393DCE47608172A095AA85A30FE1C2952C6771D937BA9777' +
      'F5957B2639BAB072462F68C27A57382D4A52',
    initiatorPublic:
      '0015417E84DBF28C0AD3C278713349DC7DF153C897A1891BD98BAB4357C9ECBEE1E3BF42E00B8E380AEAE57C2D107564' +
      '941885942AF5A7F4601723C4195D176CED3E' +
      '017CAE20B6641D2EEB695786D8C946146239D099E18E1D5A514C739D7CB4A10AD8A788015AC405D7799DC75E7B7D5B6C' +
      'F2261A6A7F1507438BF01BEB6CA3926F9582',
    responderPrivate:
      '0145BA99A847AF43793FDD0E872E7CDFA16BE30FDC780F97BCCC3F078380201E9C677D600B343757A3BDBF2A3163E4C2' +
      'F869CCA7458AA4A4EFFC311F5CB151685EB9',
    responderPublic:
      '00D0B3975AC4B799F5BEA16D5E13E9AF971D5E9B984C9F39728B5E5739735A219B97C356436ADC6E95BB0352F6BE64A6' +
      'C2912D4EF2D0433CED2B6171640012D9460F' +
      '015C68226383956E3BD066E797B623C27CE0EAC2F551A10C2C724D9852077B87220B6536C5C408A1D2AEBB8E86D678AE' +
      '49CB57091F4732296579AB44FCD17F0FC56A',
    shared:
      '01144C7D79AE6956BC8EDB8E7C787C4521CB086FA64407F97894E5E6B2D79B04D1427E73CA4BAA240A34786859810C06' +
      'B3C715A3A8CC3151F2BEE417996D19F3DDEA',
  },
];

/** A RandomBytes that hands out the given octets once, then fails: the KAT fixes the private value. */
function fixed(...chunks: Uint8Array[]): RandomBytes {
  const queue = [...chunks];
  return (n) => {
    const next = queue.shift();
    if (next === undefined || next.length !== n) throw new Error(`test RandomBytes: unexpected draw of ${n}`);
    return next;
  };
}

for (const p of providers) {
  describe(`${p.name} provider known answers`, () => {
    it('HMAC PRFs match RFC 4868 §2.7.1 / RFC 4231 and RFC 2202', () => {
      for (const v of kat.prf) {
        const prf = p.prf(v.id)!;
        assert.equal(toHex(prf.compute(fromHex(v.key), fromHex(v.data))), v.out, v.source);
        // prf(key, a | b) with the data split must be the same (the contract's logical concatenation).
        const data = fromHex(v.data);
        const cut = data.length >> 1;
        assert.equal(toHex(prf.compute(fromHex(v.key), data.subarray(0, cut), data.subarray(cut))), v.out);
      }
      for (const v of RFC4231_TC2) {
        const out = p.prf(v.id)!.compute(ascii('Jefe'), ascii('what do ya want for nothing?'));
        assert.equal(toHex(out), v.out, `RFC 4231 §4.3 PRF ${v.id}`);
      }
    });

    it('truncated HMAC integrity matches RFC 4868 §2.7.2 and RFC 2202/RFC 2404', () => {
      for (const v of kat.integrity) {
        const alg = p.integrity(v.id)!;
        const key = alg.create(fromHex(v.key));
        const data = fromHex(v.data);
        assert.equal(toHex(key.compute(data)), v.icv, v.source);
        assert.equal(key.verify(fromHex(v.icv), data), true);
        const bad = fromHex(v.icv);
        bad[0]! ^= 1;
        assert.equal(key.verify(bad, data), false);
        assert.equal(key.verify(fromHex(v.icv).subarray(1), data), false, 'short ICV is rejected');
      }
    });

    it('AEAD seal/open match the McGrew-Viega GCM test cases, RFC 8439 §2.8.2 and RFC 7634', () => {
      for (const v of kat.aead) {
        const key = p.aead(v.id, v.keyBits)!.create(fromHex(v.keyMaterial));
        const iv = fromHex(v.iv);
        const aad = fromHex(v.aad);
        const sealed = key.seal(iv, aad, fromHex(v.plaintext));
        assert.equal(toHex(sealed), v.ciphertextAndIcv, v.source);
        const opened = key.open(iv, aad, fromHex(v.ciphertextAndIcv));
        assert.ok(opened, v.source);
        assert.equal(toHex(opened), v.plaintext);
        // Into a caller's buffer, larger than needed.
        const out = new Uint8Array(sealed.length + 7);
        assert.equal(toHex(key.seal(iv, aad, fromHex(v.plaintext), out)), v.ciphertextAndIcv);
        const tampered = fromHex(v.ciphertextAndIcv);
        tampered[tampered.length - 1]! ^= 0x80;
        assert.equal(key.open(iv, aad, tampered), null, 'tampered ICV');
        const otherAad = new Uint8Array(aad.length + 1);
        assert.equal(key.open(iv, otherAad, fromHex(v.ciphertextAndIcv)), null, 'different AAD');
      }
    });

    it('AES-CBC matches RFC 3602 §4 and NIST SP 800-38A F.2', () => {
      for (const v of kat.cbc) {
        const key = p.cipher(12, v.keyBits)!.create(fromHex(v.key));
        assert.equal(toHex(key.encrypt(fromHex(v.iv), fromHex(v.plaintext))), v.ciphertext, v.source);
        assert.equal(toHex(key.decrypt(fromHex(v.iv), fromHex(v.ciphertext))), v.plaintext, v.source);
      }
    });

    it('exportKeyMaterial gives back the material of every integrity, AEAD (key | salt) and CBC key, as a copy the key does not depend on', () => {
      const cases: [string, { exportKeyMaterial(): Uint8Array }, () => string][] = [];
      for (const v of kat.integrity) {
        const key = p.integrity(v.id)!.create(fromHex(v.key));
        cases.push([v.key, key, () => toHex(key.compute(fromHex(v.data)))]);
      }
      for (const v of kat.aead) {
        const key = p.aead(v.id, v.keyBits)!.create(fromHex(v.keyMaterial));
        cases.push([
          v.keyMaterial,
          key,
          () => toHex(key.seal(fromHex(v.iv), fromHex(v.aad), fromHex(v.plaintext))),
        ]);
      }
      for (const v of kat.cbc) {
        const key = p.cipher(12, v.keyBits)!.create(fromHex(v.key));
        cases.push([v.key, key, () => toHex(key.encrypt(fromHex(v.iv), fromHex(v.plaintext)))]);
      }
      for (const [material, key, use] of cases) {
        const before = use();
        const exported = key.exportKeyMaterial();
        assert.equal(toHex(exported), material.toLowerCase());
        exported.fill(0);
        assert.equal(toHex(key.exportKeyMaterial()), material.toLowerCase(), 'a copy each time');
        assert.equal(use(), before, 'the key works as before');
      }
    });

    it('prf+ matches the NIST CAVP SP 800-135 IKEv2 DKM vectors', () => {
      for (const v of kat.prfPlus) {
        const out = prfPlus(p.prf(v.id)!, fromHex(v.key), fromHex(v.seed), v.out.length / 2);
        assert.equal(toHex(out), v.out, v.source);
      }
    });

    it('ECP and Curve25519 key exchanges match RFC 5903 §8, RFC 5114 A.6-A.8, RFC 7748 §6.1 and RFC 8031', () => {
      for (const v of [...RFC5903, ...kat.keyExchange]) {
        const ke = p.keyExchange(v.id)!;
        const init = ke.initiate(fixed(fromHex(v.initiatorPrivate)));
        assert.equal(toHex(init.publicData), v.initiatorPublic.toLowerCase(), `${v.source} g^i`);
        const resp = ke.respond(fromHex(v.initiatorPublic), fixed(fromHex(v.responderPrivate)));
        assert.equal(toHex(resp.publicData), v.responderPublic.toLowerCase(), `${v.source} g^r`);
        assert.equal(toHex(resp.sharedSecret), v.shared.toLowerCase(), `${v.source} responder g^ir`);
        assert.equal(toHex(init.complete(fromHex(v.responderPublic))), v.shared.toLowerCase(), v.source);
      }
    });

    it('ECP rejects a point that is not on the curve (RFC 5903 §7) with RemoteProtocolError', () => {
      for (const v of RFC5903) {
        const bad = fromHex(v.responderPublic);
        bad[bad.length - 1]! ^= 1; // flips y: (x, y') is not on the curve
        const init = p.keyExchange(v.id)!.initiate(fixed(fromHex(v.initiatorPrivate)));
        assert.throws(
          () => init.complete(bad),
          (e: unknown) => e instanceof RemoteProtocolError && e.code === 'IKEGATE_ERR_CRYPTO_BAD_KE_DATA',
        );
      }
    });

    it('Curve25519 rejects a low-order point whose shared secret is all zero (RFC 8031 §2.3)', () => {
      const ke = p.keyExchange(31)!;
      // u = 0 and u = 1 are points of small order (RFC 7748 §6.1's all-zero check).
      for (const u of [new Uint8Array(32), fromHex(`01${'00'.repeat(31)}`)]) {
        assert.throws(
          () => ke.respond(u, fixed(fromHex(RFC5903[0]!.initiatorPrivate))),
          (e: unknown) => e instanceof RemoteProtocolError && e.code === 'IKEGATE_ERR_CRYPTO_BAD_KE_DATA',
        );
      }
    });
  });
}

interface MlKemVectors {
  keyGen: { parameterSet: string; tcId: number; d: string; z: string; ek: string; dk: string }[];
  encapsulation: { parameterSet: string; tcId: number; ek: string; m: string; c: string; k: string }[];
  decapsulation: { parameterSet: string; tcId: number; reason: string; dk: string; c: string; k: string }[];
  encapsulationKeyCheck: { parameterSet: string; tcId: number; testPassed: boolean; ek: string }[];
}

/** FIPS 180-4 examples (NIST CSRC "Examples with Intermediate Values"): the digest of "abc". */
const HASH_ABC = {
  sha1: 'a9993e364706816aba3e25717850c26c9cd0d89d',
  sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
  sha384:
    'cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed' + '8086072ba1e7cc2358baeca134c825a7',
  sha512:
    'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a' +
    '2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
} as const;

describe('hash: FIPS 180-4 known answers (NAT detection, RFC 7296 §2.23; request digests)', () => {
  const abc = new TextEncoder().encode('abc');
  for (const provider of providers) {
    for (const [name, digest] of Object.entries(HASH_ABC) as [keyof typeof HASH_ABC, string][]) {
      it(`${provider.name} ${name}("abc") in one part, in three parts, after an empty part, and as a view inside a larger buffer`, () => {
        assert.equal(toHex(provider.hash(name, abc)), digest);
        assert.equal(
          toHex(provider.hash(name, abc.subarray(0, 1), abc.subarray(1, 2), abc.subarray(2))),
          digest,
        );
        assert.equal(toHex(provider.hash(name, new Uint8Array(0), abc)), digest);
        const inside = Uint8Array.of(0x78, 0x61, 0x62, 0x63, 0x78).subarray(1, 4);
        assert.equal(toHex(provider.hash(name, inside)), digest, 'one part at a non-zero offset');
      });
    }
    it(`${provider.name} sha1 of nothing is the FIPS 180-4 empty-message digest`, () => {
      assert.equal(toHex(provider.hash('sha1')), 'da39a3ee5e6b4b0d3255bfef95601890afd80709');
    });
  }
});

const mlkem = JSON.parse(
  readFileSync(new URL('./vectors/ml-kem-acvp.json', import.meta.url), 'utf8'),
) as MlKemVectors;
const ML_KEM_IDS: Record<string, number> = { 'ML-KEM-512': 35, 'ML-KEM-768': 36, 'ML-KEM-1024': 37 };
const NOBLE_KEMS = { 'ML-KEM-512': ml_kem512, 'ML-KEM-768': ml_kem768, 'ML-KEM-1024': ml_kem1024 } as const;

describe('ML-KEM (FIPS 203) known answers, NIST ACVP vsId 42', () => {
  it('node provider does not offer ML-KEM on node 20 and says so with undefined', () => {
    for (const id of [35, 36, 37]) assert.equal(nodeProvider.keyExchange(id), undefined);
  });

  it('initiator KE data is the ACVP keyGen encapsulation key for seed d | z', () => {
    for (const v of mlkem.keyGen) {
      const ke = nobleProvider.keyExchange(ML_KEM_IDS[v.parameterSet]!)!;
      const init = ke.initiate(fixed(fromHex(v.d + v.z)));
      assert.equal(toHex(init.publicData), v.ek.toLowerCase(), `${v.parameterSet} tcId ${v.tcId}`);
      // The decapsulation key is internal to the initiation; noble's own keygen must match ACVP dk.
      const kem = NOBLE_KEMS[v.parameterSet as keyof typeof NOBLE_KEMS];
      assert.equal(toHex(kem.keygen(fromHex(v.d + v.z)).secretKey), v.dk.toLowerCase());
    }
  });

  it('responder KE data and shared secret are the ACVP encapsulation c and k for message m', () => {
    for (const v of mlkem.encapsulation) {
      const ke = nobleProvider.keyExchange(ML_KEM_IDS[v.parameterSet]!)!;
      const r = ke.respond(fromHex(v.ek), fixed(fromHex(v.m)));
      assert.equal(toHex(r.publicData), v.c.toLowerCase(), `${v.parameterSet} tcId ${v.tcId}`);
      assert.equal(toHex(r.sharedSecret), v.k.toLowerCase());
    }
  });

  it('decapsulation gives the ACVP k, including implicit rejection of a modified ciphertext', () => {
    for (const v of mlkem.decapsulation) {
      const kem = NOBLE_KEMS[v.parameterSet as keyof typeof NOBLE_KEMS];
      assert.equal(toHex(kem.decapsulate(fromHex(v.c), fromHex(v.dk))), v.k.toLowerCase(), v.reason);
    }
  });

  it('an encapsulation key failing the FIPS 203 §7.2 modulus check is RemoteProtocolError', () => {
    for (const v of mlkem.encapsulationKeyCheck) {
      const ke = nobleProvider.keyExchange(ML_KEM_IDS[v.parameterSet]!)!;
      const run = () => ke.respond(fromHex(v.ek), fixed(new Uint8Array(32)));
      if (v.testPassed) run();
      else
        assert.throws(
          run,
          (e: unknown) => e instanceof RemoteProtocolError && e.code === 'IKEGATE_ERR_CRYPTO_BAD_KE_DATA',
        );
    }
  });

  it('initiator and responder agree on the shared secret for every parameter set', () => {
    for (const id of [35, 36, 37]) {
      const ke = nobleProvider.keyExchange(id)!;
      const init = ke.initiate(fixed(new Uint8Array(64).fill(id)));
      const r = ke.respond(init.publicData, fixed(new Uint8Array(32).fill(7)));
      assert.equal(r.publicData.length, ke.responderDataLength);
      assert.equal(init.publicData.length, ke.initiatorDataLength);
      assert.deepEqual(init.complete(r.publicData), r.sharedSecret);
    }
  });
});
