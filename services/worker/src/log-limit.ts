/**
 * Bounded logging of events an unauthenticated peer can trigger at will (rejected IKE_SA_INITs):
 * every event is counted in a metric, but at most `perWindow` lines per key and window are
 * written; the rest are summed into one line when the window ends (at the next event after it).
 */
export class LogLimiter {
  readonly #perWindow: number;
  readonly #windowMs: number;
  readonly #keys = new Map<string, { start: number; written: number; suppressed: number }>();

  constructor(perWindow = 20, windowMs = 10_000) {
    this.#perWindow = perWindow;
    this.#windowMs = windowMs;
  }

  /**
   * Whether to write this event's line; `flush` is called with the count suppressed in the
   * previous window of this key when it ended.
   */
  allow(key: string, now: number, flush: (suppressed: number) => void): boolean {
    let k = this.#keys.get(key);
    if (!k || now - k.start >= this.#windowMs) {
      if (k && k.suppressed > 0) flush(k.suppressed);
      if (!k && this.#keys.size >= 1024) this.#keys.clear();
      k = { start: now, written: 0, suppressed: 0 };
      this.#keys.set(key, k);
    }
    if (k.written < this.#perWindow) {
      k.written++;
      return true;
    }
    k.suppressed++;
    return false;
  }
}
