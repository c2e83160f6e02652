/**
 * Full IKE SA setups per second: IKE_SA_INIT + IKE_AUTH with PSK, X25519, AES-256-GCM-16,
 * PRF-HMAC-SHA2-256 and one child SA, initiator and responder both in memory (no IO).
 * Reference, same run: the crypto floor one setup needs — two X25519 keygen+derive pairs, the
 * PRF / prf+ calls (2x SKEYSEED and IKE keys, 4 AUTH values of 3 PRF calls each, 2x child KEYMAT)
 * and the AEAD seals/opens of the two protected IKE_AUTH messages. Target: half the floor.
 */
import { randomBytes } from 'node:crypto';
import {
  deriveChildSaKeys,
  deriveIkeSaKeys,
  deriveSkeyseed,
  EncryptionId,
  KeyExchangeId,
  nodeProvider,
  PrfId,
} from '@ikegate/crypto';
import type { IkeSaState } from '@ikegate/ikev2';
import { type BenchFigure, compare } from './harness.js';
import { establishPair as establish } from './lib/ike-pair.js';

const provider = nodeProvider;
const random = (n: number) => new Uint8Array(randomBytes(n));

/** One complete setup; returns 1, or throws if it did not establish. */
function setup(): number {
  establish();
  return 1;
}

const hexKey = (b: Uint8Array | undefined) => Buffer.from(b ?? new Uint8Array(0)).toString('hex');

/**
 * Flatness and footprint: 10,000 established SA pairs are kept in maps keyed by SPI, as a worker
 * keeps them; then setups/s is measured again while every new pair is retained too. Heap per SA is
 * measured with forced GCs when node runs with --expose-gc (npm run bench does).
 */
function atScale(count: number): { perSecond: number; heapPerSa: number; jsonPerSa: number } {
  const gc = (globalThis as { gc?: () => void }).gc;
  const held = new Map<string, IkeSaState>();
  gc?.();
  const before = process.memoryUsage().heapUsed;
  let json = 0;
  for (let n = 0; n < count; n++) {
    const { i, r } = establish();
    held.set(`i${n}`, i);
    held.set(`r${n}`, r);
    if (n < 100) json += JSON.stringify(r, (_k, v) => (v instanceof Uint8Array ? hexKey(v) : v)).length;
  }
  gc?.();
  const heapPerSa = (process.memoryUsage().heapUsed - before) / (2 * count);
  let n = count;
  const perSecond = compare(
    () => {
      const { i, r } = establish();
      held.set(`i${n}`, i);
      held.set(`r${n++}`, r);
      return 1;
    },
    () => 1,
    2,
    500,
  ).subject;
  return { perSecond, heapPerSa, jsonPerSa: json / 100 };
}

function cryptoFloor(): () => number {
  const x25519 = provider.keyExchange(KeyExchangeId.CURVE25519)!;
  const prf = provider.prf(PrfId.HMAC_SHA2_256)!;
  const aead = provider.aead(EncryptionId.AES_GCM_16, 256)!;
  const ni = random(32);
  const nr = random(32);
  const spi = random(8);
  const key = aead.create(random(36));
  const iv = random(8);
  const aad = random(32);
  const authPlain = random(300);
  const sealed = key.seal(iv, aad, authPlain);
  const msg = random(400);
  return () => {
    // Initiator keygen + derive, responder keygen + derive.
    const a = x25519.initiate(random);
    const b = x25519.respond(a.publicData, random);
    a.complete(b.publicData);
    for (let side = 0; side < 2; side++) {
      const seed = deriveSkeyseed(prf, ni, nr, b.sharedSecret);
      const keys = deriveIkeSaKeys(prf, seed, ni, nr, spi, spi, { skA: 0, skE: 36 });
      deriveChildSaKeys(prf, keys.skD, ni, nr, undefined, { encr: 36, integ: 0 });
      // Our AUTH and the check of the peer's: prf(prf(PSK, pad), msg | nonce | prf(SK_p, ID')).
      for (let j = 0; j < 2; j++)
        prf.compute(prf.compute(keys.skPi, msg), msg, ni, prf.compute(keys.skPi, ni));
      key.seal(iv, aad, authPlain);
      key.open(iv, aad, sealed);
    }
    return 1;
  };
}

export async function bench(): Promise<BenchFigure[]> {
  setup();
  const { subject, reference } = compare(setup, cryptoFloor(), 3, 500);
  const scale = atScale(10_000);
  return [
    {
      name: 'IKE SA setup INIT+AUTH PSK X25519 AES-256-GCM +1 child',
      value: subject,
      unit: 'setups/s',
      reference: { name: 'crypto floor of one setup', value: reference },
      target: 0.5,
    },
    {
      name: 'same, with 10,000 established SA pairs held in memory',
      value: scale.perSecond,
      unit: 'setups/s',
      reference: { name: 'setups/s with none held, same run', value: subject },
    },
    {
      name: 'heap per established IKE SA state (one side, incl. its child SA)',
      value: scale.heapPerSa,
      unit: 'bytes',
    },
    {
      name: 'JSON size of one responder IKE SA state (what a store would hold)',
      value: scale.jsonPerSa,
      unit: 'bytes',
    },
  ];
}
