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
import {
  createIkeSa,
  type IkeSaAction,
  type IkeSaContext,
  type IkeSaPolicy,
  type IkeSaState,
  step,
} from '@ikegate/ikev2';
import { type BenchFigure, compare } from './harness.js';

const provider = nodeProvider;
const random = (n: number) => new Uint8Array(randomBytes(n));
const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: Uint8Array.of(0, 0, 0, 0),
  endAddress: Uint8Array.of(255, 255, 255, 255),
};

function context(localId: string): IkeSaContext {
  const policy: IkeSaPolicy = {
    localId,
    ikeProposals: [
      {
        encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
        prf: [PrfId.HMAC_SHA2_256],
        integrity: [],
        keyExchange: [KeyExchangeId.CURVE25519],
      },
    ],
    espProposals: [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], integrity: [] }],
    localTs: [any],
    remoteTs: [any],
  };
  const psk = new TextEncoder().encode('bench pre-shared key');
  return {
    provider,
    random,
    allocateIkeSpi: () => random(8),
    allocateChildSpi: () => random(4),
    policy,
    psk: () => psk,
    local: { address: Uint8Array.of(192, 0, 2, 1), port: 500 },
    remote: { address: Uint8Array.of(198, 51, 100, 1), port: 500 },
  };
}

const ctxI = context('initiator.example');
const ctxR = context('responder.example');

function sends(actions: readonly IkeSaAction[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const a of actions) if (a.kind === 'send') out.push(a.bytes);
  return out;
}

/** One complete setup; returns 1, or throws if it did not establish. */
function setup(): number {
  establish();
  return 1;
}

/** One complete setup; returns both established states. */
function establish(): { i: IkeSaState; r: IkeSaState } {
  let i: IkeSaState = createIkeSa();
  let r: IkeSaState = createIkeSa();
  let res = step(i, { kind: 'command', command: { kind: 'initiate' }, now: 0 }, ctxI);
  i = res.state;
  let toR = sends(res.actions);
  while (toR.length > 0) {
    const toI: Uint8Array[] = [];
    for (const bytes of toR) {
      res = step(r, { kind: 'message', bytes, transport: 'udp', now: 0 }, ctxR);
      r = res.state;
      toI.push(...sends(res.actions));
    }
    toR = [];
    for (const bytes of toI) {
      res = step(i, { kind: 'message', bytes, transport: 'udp', now: 0 }, ctxI);
      i = res.state;
      toR.push(...sends(res.actions));
    }
  }
  if (i.status !== 'established' || r.status !== 'established') throw new Error('setup failed');
  return { i, r };
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
