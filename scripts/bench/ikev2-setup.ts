/**
 * Full IKE SA setups per second: IKE_SA_INIT + IKE_AUTH with PSK, X25519, AES-256-GCM-16,
 * PRF-HMAC-SHA2-256 and one child SA, initiator and responder both in memory (no IO).
 *
 * The crypto floor: the primitive operations one setup cannot avoid, measured alone in the same
 * run with the same provider (node:crypto). Per side (what the RESPONDER does for one IKE SA + one
 * CHILD SA; the initiator does the same again):
 *   - X25519: one key generation and one shared-secret derivation (2 scalar multiplications);
 *   - HMAC-SHA2-256 (the PRF), 16 calls:
 *       1  SKEYSEED = prf(Ni | Nr, g^ir)                                   (RFC 7296 §2.14)
 *       6  prf+ blocks for SK_d, SK_ei, SK_er (36 octets each), SK_pi, SK_pr: 168 octets / 32
 *       6  AUTH: the peer's checked and ours built, each prf(prf(PSK, "Key Pad for IKEv2"),
 *          octets) with prf(SK_p, ID') inside: 3 calls each                  (§2.15)
 *       3  child KEYMAT prf+ for two 36-octet AES-GCM keys (+salt): 72 octets / 32   (§2.17)
 *   - AES-256-GCM: one open (the IKE_AUTH request) and one seal (the IKE_AUTH response), ~300 B.
 * Not counted: random bytes (nonce, SPIs, private key), message encoding/decoding, policy. The
 * key generations draw from a RandomPool, as the endpoints (and a worker) do.
 *
 * Figures: the pair (both sides) against the floor of both sides; the responder alone — its CPU
 * time inside receive() per setup, against its one-side floor in CPU time (issue #14: >= 0.75);
 * and flatness/footprint with 10,000 pairs held.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  deriveChildSaKeys,
  deriveIkeSaKeys,
  deriveSkeyseed,
  EncryptionId,
  KeyExchangeId,
  nodeProvider,
  PrfId,
  RandomPool,
} from '@ikegate/crypto';
import { compactState, type IkeSaState } from '@ikegate/ikev2';
import { decodeSnapshot, encodeSnapshot } from '@ikegate/worker';
import { type BenchFigure, compare, cpuMicrosPerOp, cpuRegionOverheadUs } from './harness.js';
import { ctxR, establishPair as establish, type ResponderTiming } from './lib/ike-pair.js';

const provider = nodeProvider;
const random = (n: number) => new Uint8Array(randomBytes(n));
/** The key generations' randomness in the floors: a RandomPool, as the endpoints and a worker use. */
const pooled = new RandomPool().random;

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

/**
 * Heap per responder SA state held live, and as a takeover holds it: written with the worker's
 * snapshot codec, read back, and compacted as IkeEndpoint.adopt does (issue #14). Both measured
 * in this run with forced GCs (npm run bench runs node with --expose-gc).
 */
function adoptedFootprint(count: number): { live: number; adopted: number } {
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);
  const h0 = heap();
  const live = Array.from({ length: count }, () => establish().r);
  const h1 = heap();
  const stored = live.map((state) =>
    encodeSnapshot({ version: 2, spis: [], shard: 0, state, path: STORE_PATH, children: [] }),
  );
  live.length = 0;
  const h2 = heap();
  const adopted = stored.map((b) => compactState(decodeSnapshot(b).state, ctxR.policy));
  const h3 = heap();
  if (adopted.length !== count) throw new Error('adoption lost a state');
  return { live: (h1 - h0) / count, adopted: (h3 - h2) / count };
}

const STORE_PATH = {
  connection: 'udp:bench',
  transport: 'udp',
  local: { address: '192.0.2.1', port: 4500 },
  remote: { address: '192.0.2.2', port: 4500 },
} as const;

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
    const a = x25519.initiate(pooled);
    const b = x25519.respond(a.publicData, pooled);
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

/** The responder's half of the floor (see the header): one side's X25519, 16 PRF calls, open + seal. */
function responderCryptoFloor(): () => number {
  const x25519 = provider.keyExchange(KeyExchangeId.CURVE25519)!;
  const prf = provider.prf(PrfId.HMAC_SHA2_256)!;
  const aead = provider.aead(EncryptionId.AES_GCM_16, 256)!;
  const peer = x25519.initiate(random).publicData;
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
    const b = x25519.respond(peer, pooled);
    const seed = deriveSkeyseed(prf, ni, nr, b.sharedSecret);
    const keys = deriveIkeSaKeys(prf, seed, ni, nr, spi, spi, { skA: 0, skE: 36 });
    deriveChildSaKeys(prf, keys.skD, ni, nr, undefined, { encr: 36, integ: 0 });
    for (let j = 0; j < 2; j++) prf.compute(prf.compute(keys.skPi, msg), msg, ni, prf.compute(keys.skPi, ni));
    key.open(iv, aad, sealed);
    key.seal(iv, aad, authPlain);
    return 1;
  };
}

/**
 * Responder CPU per setup (µs, inside receive() only) and its floor (µs), interleaved rounds,
 * the best (lowest) of each kept.
 */
function responderVsFloor(rounds = 3, ms = 600): { responderUs: number; floorUs: number } {
  const floor = responderCryptoFloor();
  let responderUs = Infinity;
  let floorUs = Infinity;
  for (let k = 0; k < rounds; k++) {
    floorUs = Math.min(floorUs, cpuMicrosPerOp(floor, ms));
    const timing: ResponderTiming = { responderCpuUs: 0, overheadUs: cpuRegionOverheadUs() };
    let n = 0;
    const until = performance.now() + ms;
    establish(timing); // warm
    timing.responderCpuUs = 0;
    while (performance.now() < until && n < 100_000) {
      establish(timing);
      n++;
    }
    responderUs = Math.min(responderUs, timing.responderCpuUs / Math.max(1, n));
  }
  return { responderUs, floorUs };
}

export async function bench(): Promise<BenchFigure[]> {
  setup();
  const { subject, reference } = compare(setup, cryptoFloor(), 3, 500);
  const responder = responderVsFloor();
  const scale = atScale(10_000);
  const adopted = adoptedFootprint(2_000);
  return [
    {
      name: 'IKE SA setup INIT+AUTH PSK X25519 AES-256-GCM +1 child',
      value: subject,
      unit: 'setups/s',
      reference: { name: 'crypto floor of one setup (both sides)', value: reference },
      target: 0.75,
    },
    {
      name: 'responder alone: setups per CPU-s (CPU time inside receive())',
      value: 1e6 / responder.responderUs,
      unit: 'setups/CPU-s',
      reference: { name: 'responder crypto floor, CPU time', value: 1e6 / responder.floorUs },
      target: 0.75,
    },
    {
      name: '  responder CPU per IKE+CHILD SA setup (in memory, no IO)',
      value: responder.responderUs / 1000,
      unit: 'ms',
      atMost: 0.2,
    },
    { name: '  responder crypto floor per setup', value: responder.floorUs / 1000, unit: 'ms' },
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
    {
      name: 'heap per responder state as a takeover holds it (read back, compacted)',
      value: adopted.adopted,
      unit: 'bytes',
      reference: { name: 'the same states held live, same run', value: adopted.live },
    },
  ];
}
