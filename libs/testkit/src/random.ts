import { createHash } from 'node:crypto';

/**
 * Deterministic byte source for tests (SHA-256 in counter mode over a seed). Not for keys in
 * production: it exists so that two in-memory IKE peers produce reproducible nonces and SPIs.
 */
export class SeededRandom {
  #counter = 0;
  readonly #seed: Buffer;
  constructor(seed: string | number) {
    this.#seed = Buffer.from(String(seed));
  }
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const block = createHash('sha256').update(this.#seed).update(String(this.#counter++)).digest();
      const take = Math.min(block.length, n - off);
      out.set(block.subarray(0, take), off);
      off += take;
    }
    return out;
  }
}

/**
 * A reproducible stream of numbers in [0, 1) from `seed` (xorshift32): the order and the losses
 * of messages in a simulated exchange, replayable from the seed alone. Not for anything secret.
 */
export function seededUnit(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}
