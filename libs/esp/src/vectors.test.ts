/**
 * Known-answer tests: complete ESP packets from the RFCs and drafts, run against every provider.
 *
 * Sources:
 * - RFC 7634 Appendix A ("ESP Example"): ChaCha20-Poly1305, tunnel mode, IPv4 inner packet.
 * - draft-mcgrew-gcm-test-01 §4 ("Test Cases for the use of GCM and GMAC in IPsec ESP"): AES-GCM-ESP
 *   packets with 32-bit and 64-bit (ESN) sequence numbers, 128/192/256-bit keys. In the draft "key"
 *   excludes the salt, which is the first 4 octets of "nonce"; the explicit IV is its last 8.
 *   The GMAC case (ENCR_NULL_AUTH_AES_GMAC) is not listed: ikegate does not offer it. Every
 *   plaintext there ends in Next Header 1, so these run through the ESP transform and trailer
 *   code (exact bytes both ways) and through InboundSa, which authenticates them and then refuses
 *   Next Header 1 as tunnel mode must.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type CryptoProvider, EncryptionId, nobleProvider, nodeProvider } from '@ikegate/crypto';
import { fromHex, toHex } from '@ikegate/testkit';
import { ESP_HEADER_LENGTH, NextHeader } from './constants.js';
import { InboundSa } from './inbound.js';
import { OutboundSa } from './outbound.js';
import { writeU32 } from './packet.js';
import { espSuite } from './suite.js';
import { checkTrailer, writePlaintext } from './trailer.js';
import { createTransform } from './transform.js';

const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];

// RFC 7634 Appendix A.
const RFC7634 = {
  keyMaterial: '808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f a0a1a2a3',
  spi: 0x01020304,
  sequence: 5n,
  iv: '1011121314151617',
  inner: `45000054a6f200004001e778c6336405c000020508005b7a3a080000553bec10
          0007362708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223
          2425262728292a2b2c2d2e2f3031323334353637`,
  packet: `01020304000000051011121314151617
           24039428b97f417e3c13753a4f05087b67c352e6a7fab1b982d466ef407ae5c6
           14ee8099d52844eb61aa95dfab4c02f72aa71e7c4c4f64c9befe2facc638e8f3
           cbec163fac469b502773f6fb94e664da9165b82829f641e0
           76aaa8266b7fb0f7b11b369907e1ad43`,
};

interface GcmCase {
  /** Page of draft-mcgrew-gcm-test-01 the case is printed on. */
  readonly page: number;
  readonly key: string;
  readonly spi: number;
  /** 4-octet seq: no ESN; 8-octet: ESN (the packet carries the low half). */
  readonly seq: string;
  readonly nonce: string;
  readonly plaintext: string;
  readonly packet: string;
}

// draft-mcgrew-gcm-test-01 §4, every AES-GCM-ESP case (pages 7-21).
const GCM_CASES: readonly GcmCase[] = [
  {
    page: 7,
    key: '4c80cdefbb5d10da906ac73c3613a634',
    spi: 0x00004321,
    seq: '8765432100000000',
    nonce: '2e443b684956ed7e3b244cfe',
    plaintext: `45000048699a000080114db7c0a80102c0a801010a9bf15638d3010000010000
                00000000045f736970045f756470037369700963796265726369747902646b00
                0021000101020201`,
    packet: `00004321000000004956ed7e3b244cfe fecf537e729d5b07dc30df528dd22b76
             8d1b98736696a6fd348509fa13ceac34cfa2436f14a3f3cf65925bf1f4a13c5d
             15b21e1884f5ff6247aeabb786b93bce61bc17d768fd9732459018148f6cbe72 2fd04796562dfdb4`,
  },
  {
    page: 8,
    key: 'feffe9928665731c6d6a8f9467308308',
    spi: 0x0000a5f8,
    seq: '0000000a',
    nonce: 'cafebabefacedbaddecaf888',
    plaintext: `4500003e698f000080114dccc0a80102c0a801010a980035002a2343b2d00100
                0001000000000000037369700963796265726369747902646b00000100010001`,
    packet: `0000a5f80000000afacedbaddecaf888 deb22cd9b07c72c16e3a65beeb8df304
             a5a5897d33ae530f1ba76d5d114d2a5c3de81827c10e9a4f51330d0eec416642
             cfbb85a5b47e48a4ec3b9ba95d918bd183b70d3aa8bc6ee4c309e9d85a41ad4a`,
  },
  {
    page: 9,
    key: 'abbccddef00112233445566778899aababbccddef00112233445566778899aab',
    spi: 0x4a2cbfe3,
    seq: '00000002',
    nonce: '112233440102030405060708',
    plaintext: `4500003069a6400080062690c0a801029389155e0a9e008b2dc57ee000000000
                7002400020bf0000020405b40101040201020201`,
    packet: `4a2cbfe3000000020102030405060708 ff425c9b724599df7a3bcd510194e00d
             6a78107f1b0b1cbf06efae9d65a5d763748a637985771d347f0545659f14e99d
             ef842d8eb335f4eecfdbf831824b4c4915956c96`,
  },
  {
    page: 10,
    key: '00000000000000000000000000000000',
    spi: 0x00000000,
    seq: '00000001',
    nonce: '000000000000000000000000',
    plaintext: `4500003c99c500008001cb7a40679318010101010800075c0200440061626364
                65666768696a6b6c6d6e6f707172737475767761626364656667686901020201`,
    packet: `00000000000000010000000000000000 4688daf2f973a392732909c331d56d60
             f694abaa414b5e7ff5fdcdfff5e9a284456476492719ffb64de7d9dca1e1d894
             bc3bd57873ed4d181d19d4d5c8c18af3f821d496eeb096e98ad2b69e4799c71d`,
  },
  {
    page: 11,
    key: '3de09874b388e6491988d0c3607eae1f',
    spi: 0x42f67e3f,
    seq: '1010101010101010',
    nonce: '57690e434e280000a2fca1a3',
    plaintext: `4500003c99c300008001cb7c40679318010101010800085c0200430061626364
                65666768696a6b6c6d6e6f707172737475767761626364656667686901020201`,
    packet: `42f67e3f101010104e280000a2fca1a3 fba2caa4853cf9f0f22cb10d86dd83b0
             fec75691cf1a04b00d1138ec9c35791765acbd8701ad79845bf9fe3fba487bc9
             1755e6662b4c8d0d1f5e22739530320ae0d731cc978ecafaeae88f00e80d6e48`,
  },
  {
    page: 12,
    key: '3de09874b388e6491988d0c3607eae1f',
    spi: 0x42f67e3f,
    seq: '1010101010101010',
    nonce: '57690e434e280000a2fca1a3',
    plaintext: '4500001c42a200008001441f406793b6e00000020a00f5ff01020201',
    packet: `42f67e3f101010104e280000a2fca1a3 fba2ca845e5df9f0f22c3e6e86dd831e
             1fc65792cd1af9130e1379ed369f071f35e034be95f112e4e7d05d35`,
  },
  {
    page: 12,
    key: 'feffe9928665731c6d6a8f9467308308feffe9928665731c',
    spi: 0x0000a5f8,
    seq: '0000000a',
    nonce: 'cafebabefacedbaddecaf888',
    plaintext: '45000028a4ad4000400678800a01038f0a010612802306b8cb712602dd6bb03e501016d075680001',
    packet: `0000a5f80000000afacedbaddecaf888 a5b1f8066029aea40e598b8122de0242
             0938b3ab33f828e687b8858b5bfbdbd0315b27452144cc7795457b9652037f53 18027b5b4cd7a636`,
  },
  {
    page: 13,
    key: 'abbccddef00112233445566778899aab',
    spi: 0x00000100,
    seq: '0000000000000001',
    nonce: 'decaf888cafedebaceface74',
    plaintext: `4500004933ba00007f119106c3fb1d10c2b1d326c02831ce0035dd7b800302d5
                00004e20001e8c18d75b81dc91baa0476b91b924b280389d92c963bac046ec95
                9b6266c04722b14923010101`,
    packet: `0000010000000001cafedebaceface74 18a6fd42f72cbf4ab2a2ea901f73d814
             e3e7f243d95412e1c349c1d2fbec168f9190feebaf2cb01984e65863965d7472
             b79da345e0e780191f0d2f0e0f496c226f2127b27db35724e7845d68651f57e6 5f354f75ff17015769623436`,
  },
  {
    page: 14,
    key: 'abbccddef00112233445566778899aababbccddef00112233445566778899aab',
    spi: 0x17405e67,
    seq: '156f3126dd0db99b',
    nonce: '73616c74616e640169766563',
    plaintext: '45080028732c00004006e9f90a0106120a01038f06b88023dd6bafbecb71260250101f646d540001',
    packet: `17405e67dd0db99b616e640169766563 f2d69ecdbd5a0d5b8d5ef38bad4da58d
             1f278fde98ef67549d524a3018d9a57ff4d3a31ce673119e451626c2415771e3 b7eebca614c89b35`,
  },
  {
    page: 15,
    key: '3de09874b388e6491988d0c3607eae1f',
    spi: 0x42f67e3f,
    seq: '1010101010101010',
    nonce: '57690e434e280000a2fca1a3',
    plaintext: `45000049333e00007f119182c3fb1d10c2b1d326c02831ce0035cb458003025b
                000001e0001e8c18d65759d52284a0352c71475c8880391c764d6e5ee0496b32
                5ae270c03899493915010101`,
    packet: `42f67e3f101010104e280000a2fca1a3 fba2cad12fc1f9f00d3cebf305410db8
             3d7784b607323d220f24b0a97d54182800cadb0f68d99ef0e0c0c89ae9bea888
             4e52d65bc1afd0740f742444747b5b39ab533163aad4550ee5160975cdb608c5 769189609763b8e18caa81e2`,
  },
  {
    page: 16,
    key: 'abbccddef00112233445566778899aababbccddef00112233445566778899aab',
    spi: 0x17405e67,
    seq: '156f3126dd0db99b',
    nonce: '73616c74616e640169766563',
    plaintext: `636973636f0172756c65730174686501 6e6574776501646566696e6501746865
                746563686e6f6c6f67696573017468617477696c6c01646566696e65746f6d6f
                72726f7701020201`,
    packet: `17405e67dd0db99b616e640169766563 d4b7ed86a1777f2ea13d6973d324c69e
             7b43f826fb56831226508bebd2dceb18d0a6df10e5487df074113e14c641024e
             3e6773d91a62ee429b043a10e3efe6b012a49363412364f8c0cac587f249e56b 11e24f30e44ccc76`,
  },
  {
    page: 17,
    key: '7d773d00c144c525ac619d18c84a3f47',
    spi: 0x335467ae,
    seq: 'ffffffff',
    nonce: 'd966426743457e9182443bc6',
    plaintext: '01020201',
    packet: '335467aeffffffff43457e9182443bc6 437f866bcb3f699fe9b0822bac961c4504bef270',
  },
  {
    page: 17,
    key: 'abbccddef00112233445566778899aab',
    spi: 0x00000100,
    seq: '0000000000000001',
    nonce: 'decaf888cafedebaceface74',
    plaintext: '746f016265016f72016e6f7401746f0162650001',
    packet: `0000010000000001cafedebaceface74 29c9fc69a197d038ccdd14e2ddfcaa05
             43332164412503524303ed3c6c5f283843af8c3e`,
  },
  {
    page: 18,
    key: '6c6567616c697a656d6172696a75616e61616e64646f69746265666f72656961',
    spi: 0x796b6963,
    seq: 'ffffffffffffffff',
    nonce: '7475726e333021696765746d',
    plaintext: `45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364
                65666768696a6b6c6d6e6f707172737401020201`,
    packet: `796b6963ffffffff333021696765746d f97ab2aa356d8edce17644ac8c78e25d
             d24dedbb29ebf1b64a274b39b49c3a864cd3d78ca4ae68a32b42458fb57dbe82
             1dcc63b9d0937ba2945f669368661a329fb4c053`,
  },
  {
    page: 20,
    key: '3de09874b388e6491988d0c3607eae1f',
    spi: 0x3f7ef642,
    seq: '1010101010101010',
    nonce: '57690e434e280000a2fca1a3',
    plaintext: `45000030da3a00008001df3bc0a80005c0a800010800c6cd0200070061626364
                65666768696a6b6c6d6e6f707172737401020201`,
    packet: `3f7ef642101010104e280000a2fca1a3 fba2caa8c6c5f9f0f22ca54a061210ad
             3f6e5791cf1aca210d117cec9c35791765acbd8701ad79845bf9fe3fba487bc9
             6321930684eecadb56912546e7a95c9740d7cb05`,
  },
  {
    page: 21,
    key: '4c80cdefbb5d10da906ac73c3613a634',
    spi: 0x00004321,
    seq: '8765432100000007',
    nonce: '22433c644855ec7d3a234bfd',
    plaintext: '0800c6cd020007006162636465666768696a6b6c6d6e6f707172737401020201',
    packet: `00004321000000074855ec7d3a234bfd 74752e8aeb5d873cd7c0f4acc36c4bff
             84b7d7b98f0ca8b6acda6894bc619069ef9cbc28fe1b56a7c4e0d58c86cd2bc0`,
  },
];

function gcmParts(c: GcmCase) {
  const key = fromHex(c.key);
  const nonce = fromHex(c.nonce);
  const seq = BigInt(`0x${c.seq}`);
  return {
    keyMaterial: new Uint8Array([...key, ...nonce.subarray(0, 4)]),
    keyBits: key.length * 8,
    iv: nonce.subarray(4),
    esn: c.seq.length === 16,
    hi: Number(seq >> 32n),
    lo: Number(seq & 0xffff_ffffn),
    seq,
    plaintext: fromHex(c.plaintext),
    packet: fromHex(c.packet),
  };
}

for (const provider of providers) {
  describe(`RFC 7634 Appendix A ESP example, ChaCha20-Poly1305 (${provider.name})`, () => {
    const suite = espSuite(
      provider,
      { encryption: EncryptionId.CHACHA20_POLY1305, keyBits: 256 },
      fromHex(RFC7634.keyMaterial),
    );

    test('encapsulate produces the exact RFC 7634 Appendix A packet (IV 1011..17, SN 5, padding 01 02)', () => {
      const sa = new OutboundSa({
        spi: RFC7634.spi,
        suite,
        lastSequence: RFC7634.sequence - 1n,
        ivSource: (_hi, _lo, iv) => iv.set(fromHex(RFC7634.iv)),
      });
      const r = sa.encapsulate(fromHex(RFC7634.inner));
      assert.equal(r.kind, 'packet');
      assert.equal(toHex(r.kind === 'packet' ? r.packet : new Uint8Array()), toHex(fromHex(RFC7634.packet)));
      assert.equal(sa.lastSequence, 5n);
    });

    test('decapsulate returns the RFC 7634 Appendix A inner IPv4 packet with Next Header 4', () => {
      const sa = new InboundSa({ spi: RFC7634.spi, suite });
      const r = sa.decapsulate(fromHex(RFC7634.packet));
      assert.equal(r.kind, 'inner');
      if (r.kind !== 'inner') return;
      assert.equal(r.nextHeader, NextHeader.IPV4);
      assert.equal(toHex(r.packet), toHex(fromHex(RFC7634.inner)));
      assert.equal(sa.highestSequence, 5n);
    });

    test('a flipped bit anywhere in the RFC 7634 packet fails integrity (RFC 4303 §3.4.4)', () => {
      const packet = fromHex(RFC7634.packet);
      for (let i = ESP_HEADER_LENGTH - 4; i < packet.length; i++) {
        const sa = new InboundSa({ spi: RFC7634.spi, suite });
        const bad = packet.slice();
        bad[i]! ^= 0x01;
        const r = sa.decapsulate(bad);
        assert.equal(r.kind, 'drop', `octet ${i}`);
        assert.equal(sa.highestSequence, 0n, `octet ${i} moved the window`);
      }
    });
  });

  describe(`draft-mcgrew-gcm-test-01 §4 AES-GCM-ESP packets (${provider.name})`, () => {
    GCM_CASES.forEach((c, index) => {
      const p = gcmParts(c);
      const label = `case ${index + 1} (page ${c.page}, AES-${p.keyBits}, ${p.esn ? 'ESN' : '32-bit SN'})`;
      const ids = { encryption: EncryptionId.AES_GCM_16, keyBits: p.keyBits };
      if (provider.aead(ids.encryption, ids.keyBits) === undefined) {
        test(`${label}: skipped, provider has no AES-GCM-${p.keyBits}`, { skip: true }, () => {});
        return;
      }
      const suite = espSuite(provider, ids, p.keyMaterial);

      test(`${label}: padding 1,2,.. to 4 octets (RFC 4106 §3.2) rebuilds the draft's plaintext`, () => {
        const payloadLength = checkTrailer(p.plaintext, p.plaintext.length);
        assert.ok(payloadLength >= 0);
        const dst = new Uint8Array(p.plaintext.length + 8);
        const n = writePlaintext(
          dst,
          p.plaintext.subarray(0, payloadLength),
          p.plaintext[p.plaintext.length - 1]!,
          4,
        );
        assert.equal(toHex(dst.subarray(0, n)), toHex(p.plaintext));
      });

      test(`${label}: sealing gives the exact packet, AAD ${p.esn ? 'SPI|SN-high|SN-low' : 'SPI|SN'}`, () => {
        const t = createTransform(suite, p.esn);
        const packet = new Uint8Array(p.packet.length);
        writeU32(packet, 0, c.spi);
        writeU32(packet, 4, p.lo);
        packet.set(p.iv, 8);
        const n = t.seal(packet, packet.subarray(16), p.plaintext, p.iv, p.hi);
        assert.equal(n, p.packet.length);
        assert.equal(toHex(packet), toHex(p.packet));
      });

      test(`${label}: opening the draft's packet gives its plaintext; a wrong SN-high fails`, () => {
        const t = createTransform(suite, p.esn);
        const out = new Uint8Array(p.packet.length);
        assert.equal(t.open(p.packet, p.hi, out), p.plaintext.length);
        assert.equal(toHex(out.subarray(0, p.plaintext.length)), toHex(p.plaintext));
        if (p.esn) assert.equal(t.open(p.packet, (p.hi + 1) >>> 0, out), -1);
      });

      if (c.spi >= 256) {
        test(`${label}: InboundSa infers SN-high, authenticates, then refuses Next Header 1 in tunnel mode`, () => {
          const sa = new InboundSa({ spi: c.spi, suite, esn: p.esn, highestSequence: p.seq - 1n });
          assert.deepEqual(sa.decapsulate(p.packet), { kind: 'drop', reason: 'bad_next_header' });
          assert.equal(sa.highestSequence, p.seq, 'integrity passed, so the window moved');
          assert.deepEqual(sa.decapsulate(p.packet), { kind: 'drop', reason: 'replay' });
        });
      }
    });
  });
}
