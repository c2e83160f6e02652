/**
 * Parts of one responder setup that issue #14 looked at, each against the way it was done before,
 * in CPU time per operation, measured alternately in the same run (best of 3 rounds each):
 * - X25519 through node:crypto, one side (import our 32 random octets as a private key, read our
 *   public key, import the peer's, derive the shared secret), by the ways node 20 offers to get raw
 *   octets into and out of OpenSSL, and @noble/curves (pure JS). Reference: JWK (NodeX25519's way);
 *   the ratio is way/JWK in operations per CPU-second (> 1 is faster).
 * - The random draws of one setup (sizes below) from RandomPool against crypto.randomBytes each.
 * - PSK AUTH (RFC 7296 §2.15) with the key pad cached against computing it every time.
 * `npx tsx scripts/bench/setup-parts.ts` or `npm run bench setup-parts`.
 */
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { KeyExchangeId, nodeProvider, PrfId, RandomPool } from '@ikegate/crypto';
import { pskAuthData } from '@ikegate/ikev2';
import { type BenchFigure, cpuMicrosPerOp, formatFigure } from './harness.js';

const PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');
const SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex');
const JWK_X_PLACEHOLDER = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';

const peerKey: KeyObject = generateKeyPairSync('x25519').publicKey;
const peerRaw = (peerKey.export({ format: 'der', type: 'spki' }) as Buffer).subarray(12);
const secrets = Array.from({ length: 64 }, () => randomBytes(32));
let n = 0;
const nextSecret = () => secrets[n++ & 63]!;

function viaJwk(): unknown {
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: nextSecret().toString('base64url'), x: JWK_X_PLACEHOLDER },
    format: 'jwk',
  });
  const ours = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  const publicKey = createPublicKey({
    key: { kty: 'OKP', crv: 'X25519', x: peerRaw.toString('base64url') },
    format: 'jwk',
  });
  return [ours, diffieHellman({ privateKey, publicKey })];
}

function viaDer(): unknown {
  const privateKey = createPrivateKey({
    key: Buffer.concat([PKCS8_PREFIX, nextSecret()]),
    format: 'der',
    type: 'pkcs8',
  });
  const spki = createPublicKey(privateKey).export({ format: 'der', type: 'spki' });
  const ours = spki.subarray(spki.length - 32);
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, peerRaw]),
    format: 'der',
    type: 'spki',
  });
  return [ours, diffieHellman({ privateKey, publicKey })];
}

/** JWK for our private key and public export, DER for the peer's public key. */
function jwkPrivateDerPeer(): unknown {
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: nextSecret().toString('base64url'), x: JWK_X_PLACEHOLDER },
    format: 'jwk',
  });
  const ours = Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x!, 'base64url');
  const publicKey = createPublicKey({
    key: Buffer.concat([SPKI_PREFIX, peerRaw]),
    format: 'der',
    type: 'spki',
  });
  return [ours, diffieHellman({ privateKey, publicKey })];
}

function viaNoble(): unknown {
  const sk = nextSecret();
  return [x25519.getPublicKey(sk), x25519.getSharedSecret(sk, peerRaw)];
}

const ke = nodeProvider.keyExchange(KeyExchangeId.CURVE25519)!;
const providerRespond = (): unknown => ke.respond(peerRaw, () => nextSecret());

const WAYS: readonly [string, () => unknown][] = [
  ['DER (PKCS#8 + SPKI)', viaDer],
  ['JWK private, DER peer', jwkPrivateDerPeer],
  ['@noble/curves x25519', viaNoble],
  ['nodeProvider respond() as built', providerRespond],
];

/**
 * The responder's random draws in one IKE+CHILD setup through the worker: IKE SPI (8), nonce
 * (32), X25519 seed (64, ke-common draws 32 of it), ESP SPI (4), IV of the IKE_AUTH response (8),
 * two rekey jitters (2 each).
 */
const SETUP_DRAWS = [8, 32, 64, 4, 8, 2, 2];
const pool = new RandomPool();
const drawsPooled = (): unknown => SETUP_DRAWS.map((n) => pool.random(n));
const drawsRandomBytes = (): unknown => SETUP_DRAWS.map((n) => new Uint8Array(randomBytes(n)));

const prf = nodeProvider.prf(PrfId.HMAC_SHA2_256)!;
const psk = new TextEncoder().encode('a pre-shared key of some thirty octets');
const signed = randomBytes(600);
const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');
const authCached = (): unknown => pskAuthData(prf, psk, signed);
const authUncached = (): unknown => prf.compute(prf.compute(psk, KEY_PAD), signed);

/** Best (lowest) CPU µs per call of each op over `rounds` alternating rounds. */
function best(ops: readonly (() => unknown)[], rounds = 3, ms = 400): number[] {
  const out = ops.map(() => Infinity);
  for (let r = 0; r < rounds; r++)
    ops.forEach((op, i) => (out[i] = Math.min(out[i]!, cpuMicrosPerOp(op, ms))));
  return out;
}

export async function bench(): Promise<BenchFigure[]> {
  const [jwk, ...ways] = best([viaJwk, ...WAYS.map(([, op]) => op)]);
  const reference = { name: 'JWK (before #14)', value: 1e6 / jwk! };
  const [pooled, perCall] = best([drawsPooled, drawsRandomBytes]);
  const [cached, uncached] = best([authCached, authUncached]);
  return [
    { name: 'X25519 one side, JWK (before #14)', value: 1e6 / jwk!, unit: 'sides/CPU-s' },
    ...WAYS.map(([name], i) => ({
      name: `X25519 one side, ${name}`,
      value: 1e6 / ways[i]!,
      unit: 'sides/CPU-s',
      reference,
    })),
    {
      name: "a setup's 7 random draws, RandomPool",
      value: 1e6 / pooled!,
      unit: 'setups/CPU-s',
      reference: { name: 'randomBytes per draw', value: 1e6 / perCall! },
    },
    {
      name: 'PSK AUTH (600 octets), key pad cached',
      value: 1e6 / cached!,
      unit: 'AUTH/CPU-s',
      reference: { name: 'key pad computed each time', value: 1e6 / uncached! },
    },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const f of await bench()) console.log(formatFigure(f));
}
