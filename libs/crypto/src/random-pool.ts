/**
 * A pooled source of OS randomness for services to inject into the sans-IO engine (STYLE.md rule
 * 1: the engine still takes a `RandomBytes` function; this is one way a service builds it).
 *
 * Why: one IKE SA setup asks for a dozen small random values (nonce, X25519 private key, SPIs,
 * rekey jitter of 2 octets, IVs); `crypto.randomBytes(n)` per value is one call into OpenSSL plus
 * a Buffer each, 5-9% of a responder's CPU (docs/performance.md). Here one `randomFillSync` fills
 * POOL_SIZE octets and small requests are served from it.
 *
 * Ownership: every result is a fresh Uint8Array over its own ArrayBuffer (a copy), never a view
 * into the pool, because callers keep nonces and keys while the pool is refilled under them. The
 * octets handed out are zeroed in the pool at once, so the pool never holds a value that is in use
 * elsewhere. Requests larger than LARGE_REQUEST bypass the pool (filled directly, still exact).
 * Not for use across threads: one pool per thread (each worker thread builds its own).
 */
import { randomFillSync } from 'node:crypto';
import { LocalUsageError } from './errors.js';
import type { RandomBytes } from './provider.js';

/** Octets drawn from the OS per refill. */
export const RANDOM_POOL_SIZE = 16 * 1024;

export class RandomPool {
  readonly #pool: Uint8Array;
  /** Requests above this many octets are filled directly instead of from the pool. */
  readonly #large: number;
  #offset: number;

  /** `size` octets per refill (default RANDOM_POOL_SIZE); the first refill happens on first use. */
  constructor(size = RANDOM_POOL_SIZE) {
    if (!Number.isSafeInteger(size) || size < 64) {
      throw new LocalUsageError(
        'IKEGATE_ERR_CRYPTO_BAD_LENGTH',
        `random pool size ${size} is below 64 octets`,
      );
    }
    this.#pool = new Uint8Array(size);
    this.#large = size >>> 2;
    this.#offset = size;
  }

  /**
   * `length` fresh random octets in a new Uint8Array the caller owns. Bound so it can be passed
   * as a `RandomBytes` without a wrapper. Throws LocalUsageError for a negative or fractional length.
   */
  readonly random: RandomBytes = (length: number): Uint8Array => {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new LocalUsageError('IKEGATE_ERR_CRYPTO_BAD_LENGTH', `cannot draw ${length} random octets`);
    }
    if (length > this.#large) return randomFillSync(new Uint8Array(length));
    const pool = this.#pool;
    if (this.#offset + length > pool.length) {
      randomFillSync(pool);
      this.#offset = 0;
    }
    const start = this.#offset;
    const end = start + length;
    this.#offset = end;
    const out = pool.slice(start, end);
    pool.fill(0, start, end);
    return out;
  };
}
