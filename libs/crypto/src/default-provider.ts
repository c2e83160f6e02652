/**
 * defaultProvider: per primitive, the faster of nodeProvider and nobleProvider, falling back to the
 * other when the preferred one does not offer an algorithm (ML-KEM on node 20).
 *
 * Measured with `npx tsx scripts/bench/crypto.ts` (node v20.20.2, one run, harness.compare
 * interleaved, 2 x 400 ms each; higher is better):
 *
 *   primitive                                   node          noble     noble/node
 *   AES-256-GCM-16 seal 1400 B               191,519 pkt/s   18,170       0.09
 *   AES-256-GCM-16 open 1400 B               208,825 pkt/s   19,123       0.09
 *   AES-128-GCM-16 seal 1400 B               185,493 pkt/s   19,950       0.11
 *   ChaCha20-Poly1305 seal 1400 B            145,663 pkt/s   52,301       0.36
 *   ChaCha20-Poly1305 open 1400 B            191,145 pkt/s   53,715       0.28
 *   AES-256-CBC encrypt 1400 B               196,531 pkt/s   61,640       0.31
 *   HMAC-SHA2-256-128 integrity 64 B         414,614 ops/s  511,684       1.23
 *   HMAC-SHA2-256-128 integrity 1400 B       282,385 ops/s   86,170       0.31
 *   PRF HMAC-SHA2-256 64 B (per-call key)    416,475 ops/s  164,864       0.40
 *   X25519 full exchange                         894 /s         316       0.35
 *   P-256 full exchange                        3,846 /s         158       0.04
 *   P-384 full exchange                          186 /s          82       0.44
 *   MODP-2048 full exchange                      729 /s         133       0.18
 *   ML-KEM-768 keygen+encaps+decaps              n/a            676        -
 *
 * So node serves everything it has. The one place noble wins, integrity over 64-octet inputs
 * (noble keeps the keyed HMAC state per key; node builds an OpenSSL context per call), is not the
 * hot path: ESP integrity runs over whole packets, where node is 3x faster. noble serves ML-KEM.
 */
import { nobleProvider } from './noble-provider.js';
import { nodeProvider } from './node-provider.js';
import type { CryptoProvider, HashName } from './provider.js';

type Primitive = 'prf' | 'integrity' | 'cipher' | 'aead' | 'keyExchange' | 'hash';

/** The measured winner per primitive (see the table above). */
const PREFERRED: Record<Primitive, CryptoProvider> = {
  prf: nodeProvider,
  integrity: nodeProvider,
  cipher: nodeProvider,
  aead: nodeProvider,
  keyExchange: nodeProvider,
  hash: nodeProvider,
};

function other(p: CryptoProvider): CryptoProvider {
  return p === nodeProvider ? nobleProvider : nodeProvider;
}

/**
 * Builds a composite provider from a per-primitive preference; each lookup falls back to the
 * other provider when the preferred one returns undefined. Exposed for tests and for pinning one
 * primitive to a provider in an experiment.
 */
export function compositeProvider(
  name: string,
  preferred: Readonly<Record<Primitive, CryptoProvider>>,
): CryptoProvider {
  return {
    name,
    prf: (id) => preferred.prf.prf(id) ?? other(preferred.prf).prf(id),
    integrity: (id) => preferred.integrity.integrity(id) ?? other(preferred.integrity).integrity(id),
    cipher: (id, bits) => preferred.cipher.cipher(id, bits) ?? other(preferred.cipher).cipher(id, bits),
    aead: (id, bits) => preferred.aead.aead(id, bits) ?? other(preferred.aead).aead(id, bits),
    keyExchange: (id) =>
      preferred.keyExchange.keyExchange(id) ?? other(preferred.keyExchange).keyExchange(id),
    hash: (h: HashName, ...data: Uint8Array[]) => preferred.hash.hash(h, ...data),
  };
}

/** The provider protocol code should use unless it has a reason to pin one. */
export const defaultProvider: CryptoProvider = compositeProvider('default', PREFERRED);
