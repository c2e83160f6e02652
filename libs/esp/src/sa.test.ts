import assert from 'node:assert/strict';
import { createDecipheriv, createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { type CryptoProvider, EncryptionId, IntegrityId, nobleProvider, nodeProvider } from '@ikegate/crypto';
import { SeededRandom, toHex } from '@ikegate/testkit';
import { NextHeader } from './constants.js';
import { LocalUsageError } from './errors.js';
import { type DecapsulateResult, InboundSa } from './inbound.js';
import { type EncapsulateResult, OutboundSa } from './outbound.js';
import { peekSequence, peekSpi, writeU32 } from './packet.js';
import { espSuite } from './suite.js';
import { ipv4, ipv6, SPI, SUITES, saPair, suiteFor } from './testing/fixtures.js';
import { createTransform } from './transform.js';

const providers: readonly CryptoProvider[] = [nodeProvider, nobleProvider];

function packetOf(r: EncapsulateResult): Uint8Array {
  assert.equal(r.kind, 'packet');
  return r.kind === 'packet' ? r.packet.slice() : new Uint8Array();
}

function innerOf(r: DecapsulateResult): Uint8Array {
  assert.equal(r.kind, 'inner', r.kind === 'drop' ? r.reason : '');
  return r.kind === 'inner' ? r.packet : new Uint8Array();
}

/** An authentic packet carrying an arbitrary plaintext (for trailer and inner-packet checks). */
function forge(provider: CryptoProvider, plaintext: Uint8Array, seq: number, esn = false): Uint8Array {
  const suite = suiteFor(provider, SUITES[1]!);
  const t = createTransform(suite, esn);
  const packet = new Uint8Array(16 + plaintext.length + 16);
  writeU32(packet, 0, SPI);
  writeU32(packet, 4, seq);
  writeU32(packet, 12, seq);
  t.seal(packet, packet.subarray(16), plaintext, packet.subarray(8, 16).slice(), 0);
  return packet;
}

for (const provider of providers) {
  describe(`ESP SA round trips, tunnel mode (RFC 4303 §3.3/§3.4) — ${provider.name}`, () => {
    for (const c of SUITES) {
      for (const esn of [false, true]) {
        test(`${c.name}${esn ? ' with ESN' : ''}: IPv4 and IPv6 inner packets of every small size come back intact`, () => {
          const { out, in: inb } = saPair(suiteFor(provider, c), { esn });
          for (const make of [ipv4, ipv6]) {
            for (let len = make === ipv4 ? 20 : 40; len < 120; len++) {
              const inner = make(len, len);
              const packet = packetOf(out.encapsulate(inner));
              assert.equal(packet.length, out.packetLength(len));
              assert.equal(peekSpi(packet), SPI);
              const r = inb.decapsulate(packet);
              assert.equal(toHex(innerOf(r)), toHex(inner));
              assert.equal(
                r.kind === 'inner' && r.nextHeader,
                make === ipv4 ? NextHeader.IPV4 : NextHeader.IPV6,
              );
            }
          }
        });
      }
    }

    test('a 1400-octet and a 65535-octet inner packet round-trip (buffers grow on demand)', () => {
      const { out, in: inb } = saPair(suiteFor(provider, SUITES[1]!));
      for (const len of [1400, 9000, 65535]) {
        const inner = ipv4(len, 7);
        assert.equal(toHex(innerOf(inb.decapsulate(packetOf(out.encapsulate(inner))))), toHex(inner));
      }
    });

    test('AES-GCM and ChaCha20-Poly1305 IV is the 64-bit sequence number (RFC 4106 §3.1, RFC 7634 §2)', () => {
      for (const c of SUITES.slice(0, 3)) {
        const { out } = saPair(suiteFor(provider, c), { esn: true, lastSequence: 0x1_0000_0000n });
        const packet = packetOf(out.encapsulate(ipv4(40)));
        assert.equal(toHex(packet.subarray(4, 16)), '00000001' + '0000000100000001');
      }
    });

    test('AES-CBC + HMAC: the ICV is HMAC-SHA2-256 truncated to 128 bits over SPI|SN|IV|ciphertext (RFC 4868 §2.1, RFC 4303 §3.3.2.1), cross-checked with node:crypto directly', () => {
      const keys = new SeededRandom('cbc-cross').bytes(16 + 32);
      const suite = espSuite(
        provider,
        { encryption: EncryptionId.AES_CBC, keyBits: 128, integrity: IntegrityId.HMAC_SHA2_256_128 },
        keys,
      );
      for (const esn of [false, true]) {
        const rng = new SeededRandom('cbc-iv');
        const out = new OutboundSa({
          spi: SPI,
          suite,
          esn,
          lastSequence: esn ? 0x2_ffff_fffen : 0xffff_fff0n,
          random: (n) => rng.bytes(n),
        });
        for (let k = 0; k < 3; k++) {
          const inner = ipv4(61 + k);
          const packet = packetOf(out.encapsulate(inner));
          const covered = packet.length - 16;
          const hmac = createHmac('sha256', keys.subarray(16)).update(packet.subarray(0, covered));
          // With ESN, SN-high is appended for the ICV but not sent (§2.2.1): 2, then 3 after the wrap.
          if (esn) hmac.update(Uint8Array.of(0, 0, 0, k === 0 ? 2 : 3));
          assert.equal(toHex(packet.subarray(covered)), toHex(hmac.digest().subarray(0, 16)));
          const d = createDecipheriv('aes-128-cbc', keys.subarray(0, 16), packet.subarray(8, 24));
          d.setAutoPadding(false);
          const plain = Buffer.concat([d.update(packet.subarray(24, covered)), d.final()]);
          const pad = plain[plain.length - 2]!;
          assert.equal(plain.length % 16, 0);
          assert.equal(plain[plain.length - 1], NextHeader.IPV4);
          assert.equal(toHex(plain.subarray(0, inner.length)), toHex(inner));
          assert.deepEqual(
            [...plain.subarray(inner.length, inner.length + pad)],
            Array.from({ length: pad }, (_, i) => i + 1),
          );
        }
      }
    });

    test('AES-CBC IVs are drawn from the injected random source and differ per packet (RFC 3602 §3)', () => {
      const { out } = saPair(suiteFor(provider, SUITES[3]!));
      const ivs = new Set<string>();
      for (let i = 0; i < 200; i++) ivs.add(toHex(packetOf(out.encapsulate(ipv4(40))).subarray(8, 24)));
      assert.equal(ivs.size, 200);
    });

    test("exportKeyMaterial gives back the material each SA was made from, encryption key (salt included) then integrity key (RFC 7296 §2.17), and an SA rebuilt from it opens the first one's packets (what a snapshot needs)", () => {
      for (const c of SUITES) {
        const material = new SeededRandom(`export-${c.name}`).bytes(c.keyLength);
        const { out, in: inbound } = saPair(espSuite(provider, c.ids, material));
        assert.equal(toHex(out.exportKeyMaterial()), toHex(material), c.name);
        assert.equal(toHex(inbound.exportKeyMaterial()), toHex(material), c.name);
        const rebuilt = new InboundSa({
          spi: SPI,
          suite: espSuite(provider, c.ids, out.exportKeyMaterial()),
        });
        const inner = ipv4(60);
        const r = rebuilt.decapsulate(packetOf(out.encapsulate(inner)));
        assert.ok(r.kind === 'inner', `${c.name}: ${r.kind}`);
        assert.equal(toHex(r.packet), toHex(inner));
      }
    });
  });
}

describe('outbound sequence numbers (RFC 4303 §3.3.3)', () => {
  const suite = suiteFor(nodeProvider, SUITES[0]!);

  test('SNs count 1, 2, 3 and a bad inner packet does not consume one', () => {
    const { out } = saPair(suite);
    assert.equal(peekSequence(packetOf(out.encapsulate(ipv4(40)))), 1);
    assert.deepEqual(out.encapsulate(ipv4(40).subarray(0, 39)), { kind: 'drop', reason: 'bad_inner' });
    assert.equal(peekSequence(packetOf(out.encapsulate(ipv4(40)))), 2);
    assert.equal(out.lastSequence, 2n);
  });

  test('without ESN the SN never wraps: after 2^32 - 1 encapsulate asks for a rekey, every time', () => {
    const { out } = saPair(suite, { lastSequence: 0xffff_fffen });
    assert.equal(peekSequence(packetOf(out.encapsulate(ipv4(40)))), 0xffff_ffff);
    assert.deepEqual(out.encapsulate(ipv4(40)), { kind: 'rekey_required' });
    assert.deepEqual(out.encapsulate(ipv4(40)), { kind: 'rekey_required' });
    assert.equal(out.lastSequence, 0xffff_ffffn);
  });

  test('with ESN the low half wraps to 0 and the high half (not sent) goes to 1; the peer follows', () => {
    const { out, in: inb } = saPair(suite, { esn: true, lastSequence: 0xffff_fffen });
    for (const want of [0xffff_ffff, 0, 1]) {
      const packet = packetOf(out.encapsulate(ipv4(40)));
      assert.equal(peekSequence(packet), want);
      assert.equal(inb.decapsulate(packet).kind, 'inner');
    }
    assert.equal(out.lastSequence, 0x1_0000_0001n);
    assert.equal(inb.highestSequence, 0x1_0000_0001n);
  });

  test('skipTo moves the counter forward only (RFC 6311 §4.3 replay counter sync); past the SN space it is exhausted', () => {
    const { out, in: inb } = saPair(suite);
    assert.equal(inb.decapsulate(packetOf(out.encapsulate(ipv4(40)))).kind, 'inner');
    assert.equal(out.skipTo(1000n), true);
    assert.equal(out.skipTo(10n), false, 'never backwards');
    assert.equal(out.lastSequence, 1000n);
    assert.equal(peekSequence(packetOf(out.encapsulate(ipv4(40)))), 1001);
    assert.equal(out.skipTo(1n << 40n), true, 'clamped to 2^32 - 1 without ESN');
    assert.deepEqual(out.encapsulate(ipv4(40)), { kind: 'rekey_required' });
    const esn = saPair(suite, { esn: true }).out;
    assert.equal(esn.skipTo(0x1_0000_0005n), true);
    assert.equal(peekSequence(packetOf(esn.encapsulate(ipv4(40)))), 6, 'the low half on the wire');
    assert.equal(esn.lastSequence, 0x1_0000_0006n);
  });

  test('with ESN the counter stops at 2^64 - 1', () => {
    const { out } = saPair(suite, { esn: true, lastSequence: 0xffff_ffff_ffff_fffen });
    assert.equal(packetOf(out.encapsulate(ipv4(40))).length > 0, true);
    assert.deepEqual(out.encapsulate(ipv4(40)), { kind: 'rekey_required' });
  });
});

describe('outbound inner-packet checks (tunnel mode carries IPv4 = 4 and IPv6 = 41)', () => {
  const { out } = saPair(suiteFor(nodeProvider, SUITES[0]!));
  const bad: [string, Uint8Array][] = [
    ['empty', new Uint8Array(0)],
    ['IPv4 shorter than 20 octets', ipv4(20).subarray(0, 19)],
    ['IPv4 total length larger than the buffer', ipv4(60).subarray(0, 59)],
    [
      'IPv4 total length smaller than the buffer',
      (() => {
        const p = ipv4(60);
        p[3] = 50;
        return p;
      })(),
    ],
    [
      'IPv4 IHL below 5',
      (() => {
        const p = ipv4(60);
        p[0] = 0x44;
        return p;
      })(),
    ],
    ['IPv6 payload length disagreeing with the buffer', ipv6(80).subarray(0, 79)],
    [
      'version 5',
      (() => {
        const p = ipv4(60);
        p[0] = 0x55;
        return p;
      })(),
    ],
  ];
  for (const [what, inner] of bad) {
    test(`${what}: a drop result, not a throw`, () => {
      assert.deepEqual(out.encapsulate(inner), { kind: 'drop', reason: 'bad_inner' });
    });
  }
});

describe('inbound drop reasons and order (RFC 4303 §3.4)', () => {
  const provider = nodeProvider;
  const suite = suiteFor(provider, SUITES[1]!);

  test('short, bad_spi, replay, auth_failed; none of them moves the window', () => {
    const { out, in: inb } = saPair(suite);
    const packet = packetOf(out.encapsulate(ipv4(40)));
    assert.deepEqual(inb.decapsulate(packet.subarray(0, 16 + 2 + 15)), { kind: 'drop', reason: 'short' });
    const otherSpi = packet.slice();
    otherSpi[0]! ^= 1;
    assert.deepEqual(inb.decapsulate(otherSpi), { kind: 'drop', reason: 'bad_spi' });
    const forged = packet.slice();
    forged[20]! ^= 0x80;
    assert.deepEqual(inb.decapsulate(forged), { kind: 'drop', reason: 'auth_failed' });
    assert.equal(inb.highestSequence, 0n);
    assert.equal(inb.decapsulate(packet).kind, 'inner');
    assert.deepEqual(inb.decapsulate(packet), { kind: 'drop', reason: 'replay' });
    assert.equal(inb.highestSequence, 1n);
  });

  test('the replay check comes before integrity: a replayed SN with a forged ICV is a replay, not auth_failed', () => {
    const { out, in: inb } = saPair(suite);
    const packet = packetOf(out.encapsulate(ipv4(40)));
    inb.decapsulate(packet);
    const forged = packet.slice();
    forged[forged.length - 1]! ^= 1;
    assert.deepEqual(inb.decapsulate(forged), { kind: 'drop', reason: 'replay' });
  });

  test('a packet forged with a future SN does not move the window (updated only after integrity)', () => {
    const { in: inb } = saPair(suite);
    const packet = forge(provider, new Uint8Array([0x45, 0, 0, 20, ...new Uint8Array(16), 0, 4]), 1000);
    packet[packet.length - 1]! ^= 1;
    assert.deepEqual(inb.decapsulate(packet), { kind: 'drop', reason: 'auth_failed' });
    assert.equal(inb.highestSequence, 0n);
  });

  test('AES-CBC: a ciphertext that is not a block multiple is bad_length', () => {
    const { out, in: inb } = saPair(suiteFor(provider, SUITES[3]!));
    const packet = packetOf(out.encapsulate(ipv4(40)));
    const longer = new Uint8Array(packet.length + 4);
    longer.set(packet);
    assert.deepEqual(inb.decapsulate(longer), { kind: 'drop', reason: 'bad_length' });
  });

  const inner20 = ipv4(20);
  const cases: [string, number[], DecapsulateResult][] = [
    [
      'Pad Length past the start of the plaintext',
      [...inner20, 30, 4],
      { kind: 'drop', reason: 'bad_padding' },
    ],
    [
      'padding octets not 1, 2, 3 (RFC 4303 §2.4)',
      [...inner20, 1, 3, 2, 4],
      { kind: 'drop', reason: 'bad_padding' },
    ],
    [
      'Next Header 59, a TFC dummy packet (RFC 4303 §2.6)',
      [0xde, 0xad, 1, 2, 2, 59],
      { kind: 'drop', reason: 'dummy' },
    ],
    [
      'Next Header 6 (transport mode is not offered)',
      [...inner20, 1, 2, 2, 6],
      { kind: 'drop', reason: 'bad_next_header' },
    ],
    [
      'Next Header 41 around an IPv4 packet',
      [...inner20, 1, 2, 2, 41],
      { kind: 'drop', reason: 'bad_inner' },
    ],
    ['an empty payload with Next Header 4', [1, 2, 2, 4], { kind: 'drop', reason: 'bad_inner' }],
    [
      'an IPv4 total length beyond the payload',
      [0x45, 0, 0, 40, ...new Uint8Array(16), 1, 2, 2, 4],
      { kind: 'drop', reason: 'bad_inner' },
    ],
  ];
  for (const [what, plaintext, expected] of cases) {
    test(`authentic packet with ${what}: ${expected.kind === 'drop' ? expected.reason : ''}, and its SN is used up`, () => {
      const { in: inb } = saPair(suite);
      const packet = forge(provider, Uint8Array.from(plaintext), 7);
      assert.deepEqual(inb.decapsulate(packet), expected);
      assert.equal(inb.highestSequence, 7n);
      assert.deepEqual(inb.decapsulate(packet), { kind: 'drop', reason: 'replay' });
    });
  }

  test('TFC padding after the inner packet (RFC 4303 §2.7) is cut off by the inner length', () => {
    const { in: inb } = saPair(suite);
    const packet = forge(provider, Uint8Array.from([...inner20, 0, 0, 0, 0, 0, 0, 1, 2, 2, 4]), 3);
    assert.equal(toHex(innerOf(inb.decapsulate(packet))), toHex(inner20));
  });

  test('replay window 1 drops a reordered packet; window 0 accepts a duplicate', () => {
    const strict = saPair(suite, { replayWindow: 1 });
    const a = packetOf(strict.out.encapsulate(ipv4(40)));
    const b = packetOf(strict.out.encapsulate(ipv4(40)));
    assert.equal(strict.in.decapsulate(b).kind, 'inner');
    assert.deepEqual(strict.in.decapsulate(a), { kind: 'drop', reason: 'replay' });
    const open = saPair(suite, { replayWindow: 0 });
    const c = packetOf(open.out.encapsulate(ipv4(40)));
    assert.equal(open.in.decapsulate(c).kind, 'inner');
    assert.equal(open.in.decapsulate(c).kind, 'inner');
  });

  test('ESN mismatch between the peers fails integrity once the high half is non-zero', () => {
    const esnOut = saPair(suite, { esn: true, lastSequence: 0x1_0000_0000n }).out;
    const plain = new InboundSa({ spi: SPI, suite, esn: false });
    assert.deepEqual(plain.decapsulate(packetOf(esnOut.encapsulate(ipv4(40)))), {
      kind: 'drop',
      reason: 'auth_failed',
    });
  });
});

describe('buffer ownership', () => {
  const suite = suiteFor(nodeProvider, SUITES[0]!);

  test("the returned packet is a view of the SA's own buffer, overwritten by the next call", () => {
    const { out } = saPair(suite);
    const first = out.encapsulate(ipv4(40));
    const copy = packetOf(first);
    out.encapsulate(ipv4(40));
    assert.notEqual(toHex(first.kind === 'packet' ? first.packet : copy), toHex(copy));
  });

  test('caller-provided out buffers are used from offset 0; too small is a LocalUsageError', () => {
    const { out, in: inb } = saPair(suite);
    const dst = new Uint8Array(2000);
    const r = out.encapsulate(ipv4(100), dst);
    assert.equal(r.kind === 'packet' && r.packet.buffer, dst.buffer);
    const plain = new Uint8Array(2000);
    const d = inb.decapsulate(r.kind === 'packet' ? r.packet : dst, plain);
    assert.equal(d.kind === 'inner' && d.packet.buffer, plain.buffer);
    assert.throws(() => out.encapsulate(ipv4(100), new Uint8Array(100)), LocalUsageError);
  });

  test('configuration errors are LocalUsageErrors', () => {
    assert.throws(() => new OutboundSa({ spi: 255, suite }), LocalUsageError);
    assert.throws(() => new InboundSa({ spi: 2 ** 32, suite }), LocalUsageError);
    assert.throws(
      () => new OutboundSa({ spi: SPI, suite: suiteFor(nodeProvider, SUITES[3]!) }),
      LocalUsageError,
    );
    assert.throws(() => new OutboundSa({ spi: SPI, suite, lastSequence: 1n << 32n }), LocalUsageError);
    assert.throws(() => new InboundSa({ spi: SPI, suite, replayWindow: 1 << 20 }), LocalUsageError);
    assert.throws(
      () => espSuite(nodeProvider, { encryption: EncryptionId.AES_GCM_16, keyBits: 128 }, new Uint8Array(16)),
      LocalUsageError,
    );
    assert.throws(
      () =>
        espSuite(
          nodeProvider,
          { encryption: EncryptionId.AES_GCM_16, keyBits: 128, integrity: 12 },
          new Uint8Array(20),
        ),
      LocalUsageError,
    );
    assert.throws(
      () => espSuite(nodeProvider, { encryption: EncryptionId.AES_CBC, keyBits: 128 }, new Uint8Array(16)),
      LocalUsageError,
    );
  });
});
