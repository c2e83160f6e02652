/**
 * Crypto benchmark: each primitive on nodeProvider vs nobleProvider, measured interleaved in the
 * same run (harness.compare). The figure is noble's rate; the reference is node's, so the printed
 * ratio is noble/node (>1 means noble is faster). The table in libs/crypto/src/default-provider.ts
 * was produced with `npx tsx scripts/bench/crypto.ts`.
 */
import {
  type CryptoProvider,
  EncryptionId,
  IntegrityId,
  KeyExchangeId,
  nobleProvider,
  nodeProvider,
  PrfId,
} from '@ikegate/crypto';
import { SeededRandom } from '@ikegate/testkit';
import { type BenchFigure, compare, formatFigure, opsPerSecond } from './harness.js';

const rng = new SeededRandom('bench');
const random = (n: number) => rng.bytes(n);

type Op = (p: CryptoProvider) => () => number | undefined;

function aeadSeal(id: number, bits: number, size: number): Op {
  return (p) => {
    const alg = p.aead(id, bits)!;
    const key = alg.create(random(alg.keyLength));
    const iv = new Uint8Array(8);
    const aad = new Uint8Array(8);
    const pt = new Uint8Array(size);
    const out = new Uint8Array(size + 16);
    return () => {
      iv[7] = (iv[7]! + 1) & 0xff;
      key.seal(iv, aad, pt, out);
      return 1;
    };
  };
}

function aeadOpen(id: number, bits: number, size: number): Op {
  return (p) => {
    const alg = p.aead(id, bits)!;
    const key = alg.create(random(alg.keyLength));
    const iv = new Uint8Array(8);
    const aad = new Uint8Array(8);
    const sealed = key.seal(iv, aad, new Uint8Array(size));
    const out = new Uint8Array(size);
    return () => {
      if (key.open(iv, aad, sealed, out) === null) throw new Error('open failed');
      return 1;
    };
  };
}

function hmacIntegrity(size: number): Op {
  return (p) => {
    const key = p.integrity(IntegrityId.HMAC_SHA2_256_128)!.create(random(32));
    const data = new Uint8Array(size);
    return () => {
      key.compute(data);
      return 1;
    };
  };
}

function cbcEncrypt(bits: number, size: number): Op {
  return (p) => {
    const key = p.cipher(EncryptionId.AES_CBC, bits)!.create(random(bits / 8));
    const iv = new Uint8Array(16);
    const pt = new Uint8Array(size);
    const out = new Uint8Array(size);
    return () => {
      key.encrypt(iv, pt, out);
      return 1;
    };
  };
}

const prfSha256: Op = (p) => {
  const prf = p.prf(PrfId.HMAC_SHA2_256)!;
  const key = random(32);
  const data = new Uint8Array(64);
  return () => {
    prf.compute(key, data);
    return 1;
  };
};

function keyExchange(id: number): Op {
  return (p) => {
    const ke = p.keyExchange(id);
    if (ke === undefined) return () => 0;
    return () => {
      const init = ke.initiate(random);
      const resp = ke.respond(init.publicData, random);
      init.complete(resp.publicData);
      return 1;
    };
  };
}

const CASES: readonly { name: string; unit: string; op: Op; ms?: number }[] = [
  { name: 'AES-256-GCM-16 seal 1400 B', unit: 'pkt/s', op: aeadSeal(EncryptionId.AES_GCM_16, 256, 1400) },
  { name: 'AES-256-GCM-16 open 1400 B', unit: 'pkt/s', op: aeadOpen(EncryptionId.AES_GCM_16, 256, 1400) },
  { name: 'AES-128-GCM-16 seal 1400 B', unit: 'pkt/s', op: aeadSeal(EncryptionId.AES_GCM_16, 128, 1400) },
  {
    name: 'ChaCha20-Poly1305 seal 1400 B',
    unit: 'pkt/s',
    op: aeadSeal(EncryptionId.CHACHA20_POLY1305, 256, 1400),
  },
  {
    name: 'ChaCha20-Poly1305 open 1400 B',
    unit: 'pkt/s',
    op: aeadOpen(EncryptionId.CHACHA20_POLY1305, 256, 1400),
  },
  { name: 'AES-256-CBC encrypt 1400 B', unit: 'pkt/s', op: cbcEncrypt(256, 1408) },
  { name: 'HMAC-SHA2-256-128 integrity 64 B', unit: 'ops/s', op: hmacIntegrity(64) },
  { name: 'HMAC-SHA2-256-128 integrity 1400 B', unit: 'ops/s', op: hmacIntegrity(1400) },
  { name: 'PRF HMAC-SHA2-256 64 B (per-call key)', unit: 'ops/s', op: prfSha256 },
  { name: 'X25519 full exchange (group 31)', unit: 'exch/s', op: keyExchange(KeyExchangeId.CURVE25519) },
  { name: 'P-256 full exchange (group 19)', unit: 'exch/s', op: keyExchange(KeyExchangeId.ECP_256) },
  { name: 'P-384 full exchange (group 20)', unit: 'exch/s', op: keyExchange(KeyExchangeId.ECP_384) },
  {
    name: 'MODP-2048 full exchange (group 14)',
    unit: 'exch/s',
    op: keyExchange(KeyExchangeId.MODP_2048),
    ms: 600,
  },
];

export async function bench(): Promise<BenchFigure[]> {
  const figures: BenchFigure[] = [];
  for (const c of CASES) {
    const r = compare(c.op(nobleProvider), c.op(nodeProvider), 2, c.ms ?? 400);
    figures.push({ name: `node  ${c.name}`, value: r.reference, unit: c.unit });
    figures.push({
      name: `noble ${c.name}`,
      value: r.subject,
      unit: c.unit,
      reference: { name: 'node', value: r.reference },
    });
  }
  // ML-KEM-768: node 20 has none, so noble is measured alone.
  const mlkem = keyExchange(KeyExchangeId.ML_KEM_768)(nobleProvider);
  figures.push({
    name: 'noble ML-KEM-768 keygen+encaps+decaps (node: n/a)',
    value: opsPerSecond(mlkem, 800),
    unit: 'exch/s',
  });
  return figures;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await bench()) console.log(formatFigure(f));
}
