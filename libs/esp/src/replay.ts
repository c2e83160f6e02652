/**
 * Anti-replay window and Extended Sequence Number inference (RFC 4303 §3.4.3 and Appendix A).
 *
 * How this works. T (kept as two 32-bit halves Th:Tl) is the highest sequence number that has
 * passed integrity so far. A received packet carries only Seql; `inferHigh` picks Seqh by
 * Appendix A2.2 (Case A: the window lies in one subspace; Case B: it straddles two). `check` is
 * the replay test done BEFORE integrity (§3.4.3): accept if Seq > T, reject if T - Seq >= W,
 * otherwise look the bit up. `accept` is called only AFTER integrity passed: it slides the window
 * and sets the bit. Nothing else changes state, so a forged or replayed packet leaves the window
 * as it found it.
 *
 * The bitmap is a ring of 32-bit words indexed by Seql (2^32 is a multiple of its size, so the
 * index is the same in every subspace). It holds one spare word beyond W so that sliding clears
 * whole words: when T moves into a new word, that word and every word skipped are zeroed.
 *
 * Window sizes: 0 disables anti-replay (no inbound checks, §3.4.3), but T is still tracked so that
 * ESN inference works; inference then uses a half-space window (2^31, the largest A2 allows).
 * 1 accepts only strictly increasing sequence numbers (what RFC 9329 TCP transport wants).
 */
import { LocalUsageError } from './errors.js';
import { MAX_REPLAY_WINDOW } from './constants.js';

const TWO_32 = 4294967296;
const TWO_27 = 134217728;
/** Inference window when anti-replay is disabled (RFC 4303 A2: W must not exceed 2^31). */
const DISABLED_INFERENCE_WINDOW = 2 ** 31;

export class ReplayWindow {
  /** W, the number of sequence numbers below T that are still tracked; 0 = disabled. */
  readonly size: number;
  readonly esn: boolean;
  #th = 0;
  #tl = 0;
  readonly #bits: Uint32Array;
  readonly #wordMask: number;
  readonly #inferenceWindow: number;

  /**
   * @param size anti-replay window W (0 disables it; at most MAX_REPLAY_WINDOW).
   * @param esn whether the SA uses 64-bit Extended Sequence Numbers.
   * @param highest restore point: the highest sequence number already accepted (e.g. from an HA
   *   checkpoint). Every sequence number at or below it is treated as seen. Default 0 (none).
   * @throws LocalUsageError for a window out of range or a restore point out of the SN space.
   */
  constructor(size: number, esn: boolean, highest = 0n) {
    if (!Number.isInteger(size) || size < 0 || size > MAX_REPLAY_WINDOW)
      throw new LocalUsageError(
        'IKEGATE_ERR_ESP_BAD_CONFIG',
        `replay window must be an integer in 0..${MAX_REPLAY_WINDOW}, got ${size}`,
      );
    const max = esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
    if (highest < 0n || highest > max)
      throw new LocalUsageError('IKEGATE_ERR_ESP_BAD_SEQUENCE', `restore point ${highest} is out of range`);
    this.size = size;
    this.esn = esn;
    this.#inferenceWindow = size === 0 ? DISABLED_INFERENCE_WINDOW : size;
    let words = 1;
    if (size > 0) {
      const need = Math.ceil(size / 32) + 1;
      while (words < need) words <<= 1;
    }
    this.#bits = new Uint32Array(size > 0 ? words : 0);
    this.#wordMask = words - 1;
    this.#th = Number(highest >> 32n);
    this.#tl = Number(highest & 0xffff_ffffn);
    if (highest > 0n && size > 0) {
      // Conservative restore: everything at or below T counts as seen.
      this.#bits.fill(0xffff_ffff);
      const b = this.#tl & 31;
      this.#bits[(this.#tl >>> 5) & this.#wordMask] = b === 31 ? 0xffff_ffff : ((1 << (b + 1)) - 1) >>> 0;
    }
  }

  /** T, the highest sequence number accepted so far (0n before the first). For checkpoints. */
  get highest(): bigint {
    return (BigInt(this.#th) << 32n) | BigInt(this.#tl);
  }

  /**
   * Seqh for a received Seql (RFC 4303 A2.2), or -1 when no valid sequence number fits: the
   * packet would lie before the first subspace or past 2^64 - 1. Without ESN, always 0.
   */
  inferHigh(seql: number): number {
    if (!this.esn) return 0;
    const w = this.#inferenceWindow;
    const th = this.#th;
    const tl = this.#tl;
    const bl = (tl - w + 1) >>> 0;
    if (tl >= w - 1) {
      // Case A: the window lies within one subspace.
      if (seql >= bl) return th;
      return th === 0xffff_ffff ? -1 : th + 1;
    }
    // Case B: the window spans subspaces Th-1 and Th.
    if (seql >= bl) return th === 0 ? -1 : th - 1;
    return th;
  }

  /** The replay check done before integrity (RFC 4303 §3.4.3). Reads state, never changes it. */
  check(hi: number, lo: number): boolean {
    const size = this.size;
    if (size === 0) return true;
    if (hi === 0 && lo === 0) return false; // the first packet carries 1 (§3.3.3)
    const th = this.#th;
    const tl = this.#tl;
    if (hi > th || (hi === th && lo > tl)) return true;
    const diff = (th - hi) * TWO_32 + (tl - lo);
    if (diff >= size) return false;
    return (this.#bits[(lo >>> 5) & this.#wordMask]! & (1 << (lo & 31))) === 0;
  }

  /** Records an authenticated sequence number. Call only after integrity passed and check() held. */
  accept(hi: number, lo: number): void {
    const th = this.#th;
    const tl = this.#tl;
    const ahead = hi > th || (hi === th && lo > tl);
    if (this.size === 0) {
      if (ahead) {
        this.#th = hi;
        this.#tl = lo;
      }
      return;
    }
    const bits = this.#bits;
    const mask = this.#wordMask;
    if (ahead) {
      // Whole 32-bit words the top has moved by; exact in a double (< 2^59).
      const steps = (hi - th) * TWO_27 + ((lo >>> 5) - (tl >>> 5));
      if (steps > mask) bits.fill(0);
      else {
        const from = (tl >>> 5) & mask;
        for (let k = 1; k <= steps; k++) bits[(from + k) & mask] = 0;
      }
      this.#th = hi;
      this.#tl = lo;
    }
    bits[(lo >>> 5) & mask]! |= 1 << (lo & 31);
  }
}
