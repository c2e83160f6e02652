import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { EncryptionId, IntegrityId, nobleProvider, nodeProvider } from '@ikegate/crypto';
import { fromHex, fuzzRuns, fuzzSeed, SeededRandom, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { RemoteProtocolError } from '../errors.js';
import { innerPayload } from './arbitraries.test-util.js';
import { decodePayloadChain, encodePayloads } from './chain.js';
import { ExchangeType, HeaderFlag, NotifyError, PayloadType } from './constants.js';
import { encodeProtectedFragments, FragmentReassembler } from './fragments.js';
import { decodeMessage, encodeMessage } from './message.js';
import { decodeMessageIdSync, encodeMessageIdSync } from './notify-data.js';
import { verifySa } from './payloads/sa-payload.js';
import { verifyNonce } from './payloads/nonce-payload.js';
import { verifyTs } from './payloads/ts-payload.js';
import { decryptMessage, encodeProtectedMessage, type SkProtection } from './protect.js';
import type { IkeMessage, Payload } from './types.js';

const vectors = JSON.parse(
  readFileSync(
    new URL('../../../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
    'utf8',
  ),
) as Record<string, string>;

/** Deep-comparable form: Uint8Array views become hex. */
function norm(x: unknown): unknown {
  if (x instanceof Uint8Array) return toHex(x);
  if (Array.isArray(x)) return x.map(norm);
  if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, norm(v)]));
  return x;
}

const header = {
  initiatorSpi: fromHex('0102030405060708'),
  responderSpi: fromHex('1112131415161718'),
  exchangeType: ExchangeType.IKE_AUTH,
  flags: HeaderFlag.INITIATOR,
  messageId: 1,
};

function protections(): { name: string; p: SkProtection }[] {
  const out: { name: string; p: SkProtection }[] = [];
  for (const provider of [nodeProvider, nobleProvider]) {
    const gcm = provider.aead(EncryptionId.AES_GCM_16, 256)!;
    out.push({
      name: `${provider.name} AES-GCM-16-256`,
      p: { kind: 'aead', key: gcm.create(new SeededRandom('k').bytes(36)), ivLength: 8, icvLength: 16 },
    });
    const cbc = provider.cipher(EncryptionId.AES_CBC, 256)!;
    const integ = provider.integrity(IntegrityId.HMAC_SHA2_256_128)!;
    out.push({
      name: `${provider.name} AES-CBC-256 + HMAC-SHA2-256-128`,
      p: {
        kind: 'cbc',
        key: cbc.create(new SeededRandom('c').bytes(32)),
        blockSize: 16,
        ivLength: 16,
        integrity: integ.create(new SeededRandom('i').bytes(32)),
        icvLength: 16,
      },
    });
  }
  return out;
}

function isRemote(e: unknown): boolean {
  return e instanceof RemoteProtocolError;
}

describe('IKEv2 codec on real strongSwan messages (RFC 7296 §3)', () => {
  for (const key of ['ikeSaInitRequest', 'ikeSaInitResponse', 'ikeAuthRequest', 'ikeAuthResponse']) {
    test(`${key}: decode then encode gives back strongSwan's exact octets`, () => {
      const raw = fromHex(vectors[key] ?? '');
      const msg = decodeMessage(raw);
      // a protected message re-encodes too: the SK body (IV | ciphertext | ICV) is kept verbatim
      assert.equal(toHex(encodeMessage({ ...msg.header }, msg.payloads)), vectors[key]);
    });
  }
});

describe('payload chains (RFC 7296 §3.2)', () => {
  test('any valid payload chain survives encode then decode unchanged', () => {
    fc.assert(
      fc.property(fc.array(innerPayload, { maxLength: 8 }), (payloads) => {
        const { firstPayload, bytes } = encodePayloads(payloads);
        assert.deepEqual(norm(decodePayloadChain(firstPayload, bytes)), norm(payloads));
      }),
      { numRuns: Math.max(2000, fuzzRuns() / 10), seed: fuzzSeed() },
    );
  });

  test('an unknown payload with the Critical bit set is refused with UNSUPPORTED_CRITICAL_PAYLOAD naming its type (§2.5)', () => {
    const chain = Uint8Array.from([0, 0x80, 0, 5, 0xaa]);
    assert.throws(
      () => decodePayloadChain(200, chain),
      (e: unknown) =>
        e instanceof RemoteProtocolError &&
        e.notify === NotifyError.UNSUPPORTED_CRITICAL_PAYLOAD &&
        e.notifyData[0] === 200,
    );
  });

  test('an unknown payload without the Critical bit is kept and skipped (§2.5)', () => {
    const p = decodePayloadChain(200, Uint8Array.from([0, 0, 0, 5, 0xaa]));
    assert.equal(p.length, 1);
    assert.ok('unknown' in p[0]!);
  });

  test('a payload length running past the message, or octets after the last payload, are INVALID_SYNTAX', () => {
    for (const [first, chain] of [
      [PayloadType.NONCE, [0, 0, 0, 40, 1, 2]],
      [PayloadType.NONCE, [0, 0, 0, 3]],
      [PayloadType.VENDOR_ID, [0, 0, 0, 4, 9]],
    ] as const) {
      assert.throws(
        () => decodePayloadChain(first, Uint8Array.from(chain)),
        (e: unknown) => e instanceof RemoteProtocolError && e.notify === NotifyError.INVALID_SYNTAX,
      );
    }
  });

  test('a hostile chain cannot make the decoder build more than 64 payloads', () => {
    const one = [PayloadType.VENDOR_ID, 0, 0, 4];
    const chain = Uint8Array.from(Array.from({ length: 100 }, () => one).flat());
    assert.throws(() => decodePayloadChain(PayloadType.VENDOR_ID, chain), isRemote);
  });
});

describe('allowed values (verify, RFC 7296 §3.3, §3.9, §3.13)', () => {
  test('proposal numbers must start at 1 and rise by one', () => {
    const sa = (n: number[]) =>
      ({
        type: PayloadType.SA,
        critical: false,
        proposals: n.map((number) => ({
          number,
          protocolId: 1,
          spi: new Uint8Array(0),
          transforms: [{ type: 1, id: 20, attributes: [] }],
        })),
      }) as const;
    assert.equal(verifySa(sa([1, 2, 3])), undefined);
    assert.match(verifySa(sa([2])) ?? '', /expected 1/);
    assert.match(verifySa(sa([1, 3])) ?? '', /expected 2/);
  });

  test('a nonce is 16 to 256 octets', () => {
    const n = (len: number) =>
      ({ type: PayloadType.NONCE, critical: false, data: new Uint8Array(len) }) as const;
    assert.equal(verifyNonce(n(16)), undefined);
    assert.equal(verifyNonce(n(256)), undefined);
    assert.ok(verifyNonce(n(15)));
    assert.ok(verifyNonce(n(257)));
  });

  test('a selector whose start address is above its end is refused', () => {
    const ts = {
      type: PayloadType.TSi,
      critical: false,
      selectors: [
        {
          tsType: 7,
          ipProtocol: 0,
          startPort: 0,
          endPort: 65535,
          startAddress: fromHex('0a000002'),
          endAddress: fromHex('0a000001'),
        },
      ],
    } as const;
    assert.ok(verifyTs(ts));
  });

  test('RFC 6311 §4.2 IKEV2_MESSAGE_ID_SYNC data round-trips and is exactly 12 octets', () => {
    const v = { nonce: 0xdeadbeef, expectedSendRequestId: 7, expectedRecvRequestId: 9 };
    assert.deepEqual(decodeMessageIdSync(encodeMessageIdSync(v)), v);
    assert.throws(() => decodeMessageIdSync(new Uint8Array(11)), isRemote);
  });
});

describe('SK protection (RFC 7296 §3.14, RFC 5282)', () => {
  const inner: Payload[] = [
    { type: PayloadType.IDi, critical: false, idType: 2, data: new TextEncoder().encode('a.example') },
    { type: PayloadType.AUTH, critical: false, method: 2, data: new Uint8Array(32).fill(3) },
  ];
  for (const { name, p } of protections()) {
    test(`${name}: protect then decrypt returns the inner payloads`, () => {
      const rng = new SeededRandom(name);
      const raw = encodeProtectedMessage(header, inner, p, (n) => rng.bytes(n));
      const msg = decodeMessage(raw);
      assert.equal(msg.payloads.length, 1);
      assert.deepEqual(norm(decryptMessage(raw, msg, p)), norm(inner));
    });

    test(`${name}: any flipped bit makes the message fail integrity, to be dropped silently (§2.21.1)`, () => {
      const rng = new SeededRandom(`${name}-flip`);
      const raw = encodeProtectedMessage(header, inner, p, (n) => rng.bytes(n));
      fc.assert(
        fc.property(fc.integer({ min: 0, max: raw.length * 8 - 1 }), (bit) => {
          const m = raw.slice();
          m[bit >> 3]! ^= 1 << (bit & 7);
          let msg: IkeMessage;
          try {
            msg = decodeMessage(m);
          } catch (e) {
            assert.ok(isRemote(e));
            return;
          }
          assert.throws(
            () => decryptMessage(m, msg, p),
            (e: unknown) =>
              e instanceof RemoteProtocolError &&
              (e.code === 'IKEGATE_ERR_IKEV2_INTEGRITY' || e.notify !== undefined),
          );
        }),
        { numRuns: Math.min(2000, raw.length * 8), seed: fuzzSeed() },
      );
    });
  }
});

describe('fragmentation (RFC 7383)', () => {
  const big: Payload[] = [
    { type: PayloadType.CERT, critical: false, encoding: 4, data: new SeededRandom('cert').bytes(3000) },
    { type: PayloadType.AUTH, critical: false, method: 14, data: new SeededRandom('sig').bytes(256) },
  ];
  for (const { name, p } of protections()) {
    test(`${name}: fragments of at most 576 octets reassemble in any order, duplicates ignored (§2.5, §2.6)`, () => {
      const rng = new SeededRandom(`${name}-frag`);
      const frags = encodeProtectedFragments(header, big, p, (n) => rng.bytes(n), 576);
      assert.ok(frags.length > 5);
      assert.ok(frags.every((f) => f.length <= 576));
      fc.assert(
        fc.property(
          fc.shuffledSubarray(frags, { minLength: frags.length, maxLength: frags.length }),
          fc.nat(frags.length - 2),
          (order, dup) => {
            const r = new FragmentReassembler();
            const seq = [...order.slice(0, -1), order[dup]!, order[order.length - 1]!];
            const results = seq.map((raw) => r.add(raw, decodeMessage(raw), p));
            const last = results[results.length - 1]!;
            assert.equal(last.kind, 'complete');
            assert.deepEqual(norm(last.kind === 'complete' ? last.payloads : []), norm(big));
            assert.equal(r.bufferedBytes, 0);
          },
        ),
        { numRuns: 20, seed: fuzzSeed() },
      );
    });
  }

  test('a forged fragment is dropped before it is kept, and memory stays bounded (§2.6)', () => {
    const { p } = protections()[0]!;
    const rng = new SeededRandom('forge');
    const frags = encodeProtectedFragments(header, big, p, (n) => rng.bytes(n), 576);
    const r = new FragmentReassembler({ maxBytes: 1000 });
    const forged = frags[0]!.slice();
    forged[forged.length - 1]! ^= 1;
    assert.deepEqual(r.add(forged, decodeMessage(forged), p), { kind: 'dropped', reason: 'integrity' });
    let dropped = false;
    for (const f of frags) {
      const res = r.add(f, decodeMessage(f), p);
      if (res.kind === 'dropped') dropped = res.reason === 'too_large';
      assert.ok(r.bufferedBytes <= 1000);
    }
    assert.ok(dropped);
  });

  test('a higher Total Fragments restarts collection; a lower one is dropped (§2.6)', () => {
    const { p } = protections()[0]!;
    const rng = new SeededRandom('totals');
    const small = encodeProtectedFragments(header, big, p, (n) => rng.bytes(n), 1200);
    const large = encodeProtectedFragments(header, big, p, (n) => rng.bytes(n), 576);
    const r = new FragmentReassembler();
    r.add(small[0]!, decodeMessage(small[0]!), p);
    assert.equal(r.add(large[0]!, decodeMessage(large[0]!), p).kind, 'incomplete');
    assert.deepEqual(r.add(small[1]!, decodeMessage(small[1]!), p), {
      kind: 'dropped',
      reason: 'stale_total',
    });
  });
});

describe('fuzz: decoders return a value or RemoteProtocolError, nothing else (STYLE.md rule 12)', () => {
  const runs = fuzzRuns();
  const seeds = ['ikeSaInitRequest', 'ikeSaInitResponse', 'ikeAuthRequest', 'ikeAuthResponse'].map((k) =>
    fromHex(vectors[k] ?? ''),
  );

  function decodeAny(bytes: Uint8Array): void {
    try {
      decodeMessage(bytes);
    } catch (e) {
      if (!isRemote(e)) throw e;
    }
  }

  test('decodeMessage on random octets', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), decodeAny), { numRuns: runs, seed: fuzzSeed() });
  });

  test('decodeMessage on mutated real strongSwan messages (length fields kept consistent and not)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...seeds),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.boolean(),
        (seed, flips, fixLength) => {
          const m = seed.slice();
          for (const [at, v] of flips) m[at % m.length] = v;
          if (fixLength) new DataView(m.buffer).setUint32(24, m.length);
          decodeAny(m);
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('decodePayloadChain on random octets with any first payload type', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 200 }), (first, bytes) => {
        try {
          decodePayloadChain(first, bytes);
        } catch (e) {
          if (!isRemote(e)) throw e;
        }
      }),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('decodePayloadChain on mutated valid chains', () => {
    fc.assert(
      fc.property(
        fc.array(innerPayload, { minLength: 1, maxLength: 5 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        (payloads, flips) => {
          const { firstPayload, bytes } = encodePayloads(payloads);
          for (const [at, v] of flips) if (bytes.length > 0) bytes[at % bytes.length] = v;
          try {
            decodePayloadChain(firstPayload, bytes);
          } catch (e) {
            if (!isRemote(e)) throw e;
          }
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('decryptMessage and reassembly on mutated protected messages', () => {
    const { p } = protections()[0]!;
    const rng = new SeededRandom('fuzz-sk');
    const raw = encodeProtectedMessage(
      header,
      [{ type: PayloadType.NONCE, critical: false, data: new Uint8Array(32) }],
      p,
      (n) => rng.bytes(n),
    );
    const frag = encodeProtectedFragments(
      header,
      [{ type: PayloadType.NONCE, critical: false, data: new Uint8Array(200) }],
      p,
      (n) => rng.bytes(n),
      128,
    );
    const r = new FragmentReassembler({ maxBytes: 4096 });
    fc.assert(
      fc.property(
        fc.constantFrom(raw, ...frag),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 }),
        (seed, flips) => {
          const m = seed.slice();
          for (const [at, v] of flips) m[at % m.length] = v;
          try {
            const msg = decodeMessage(m);
            if (msg.payloads.at(-1)?.type === PayloadType.SKF) r.add(m, msg, p);
            else decryptMessage(m, msg, p);
          } catch (e) {
            if (!isRemote(e)) throw e;
          }
          assert.ok(r.bufferedBytes <= 4096);
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });
});
