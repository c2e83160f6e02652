/**
 * Fixed-size slots in a few large buffers: where an idle child SA keeps its ESP keys and sequence
 * numbers while its ESP objects are let go (data-plane.ts, cold children; issue #14, memory per
 * SA). A slot is a number, not an object, so a cold child costs no heap object for its keys and
 * no native key handle: 100,000 children of AES-256-GCM fill 9 MB of pages and nothing else.
 *
 * Slots are zeroed when released (they hold keys). Pages are kept once made: the slab's size is
 * the most slots used at once, not the count in use now; a page freed back would have to be
 * compacted, and children keep slot numbers.
 */

/** Octets per page: one ArrayBuffer each, outside the V8 heap. */
const PAGE_OCTETS = 64 * 1024;

export class KeySlab {
  readonly slotSize: number;
  readonly #perPage: number;
  readonly #pages: Uint8Array[] = [];
  /** Released slot numbers, a stack: the most recently released is handed out first. */
  #free = new Int32Array(64);
  #freeCount = 0;
  /** Slot numbers handed out so far; every number below it is in use or on the free stack. */
  #made = 0;
  /** 1 for a slot in use: a second release would hand one slot (its keys) to two children. */
  #inUse = new Uint8Array(64);

  /** @param slotSize octets per slot, 1..PAGE_OCTETS. */
  constructor(slotSize: number) {
    if (!Number.isInteger(slotSize) || slotSize < 1 || slotSize > PAGE_OCTETS)
      throw new RangeError(`slot size must be an integer in 1..${PAGE_OCTETS}, got ${slotSize}`);
    this.slotSize = slotSize;
    this.#perPage = Math.floor(PAGE_OCTETS / slotSize);
  }

  /** Slots in use. */
  get used(): number {
    return this.#made - this.#freeCount;
  }

  /** Octets of pages held (the most slots in use at once, rounded up to pages). */
  get octets(): number {
    return this.#pages.length * PAGE_OCTETS;
  }

  /** A slot, all zeros (a fresh one, or one zeroed when released). */
  alloc(): number {
    let slot: number;
    if (this.#freeCount > 0) slot = this.#free[--this.#freeCount]!;
    else {
      slot = this.#made++;
      if (Math.floor(slot / this.#perPage) === this.#pages.length)
        this.#pages.push(new Uint8Array(PAGE_OCTETS));
      if (slot === this.#inUse.length) {
        const grown = new Uint8Array(this.#inUse.length * 2);
        grown.set(this.#inUse);
        this.#inUse = grown;
      }
    }
    this.#inUse[slot] = 1;
    return slot;
  }

  /** The slot's octets: a view, valid until the slot is released (do not keep it). */
  view(slot: number): Uint8Array {
    const page = this.#pages[Math.floor(slot / this.#perPage)]!;
    const at = (slot % this.#perPage) * this.slotSize;
    return page.subarray(at, at + this.slotSize);
  }

  /**
   * Zeroes the slot and hands it back. A slot must be released once, and not used after.
   * @throws RangeError for a slot not in use (a bug in the caller: a second release).
   */
  release(slot: number): void {
    if (this.#inUse[slot] !== 1) throw new RangeError(`slot ${slot} is not in use`);
    this.#inUse[slot] = 0;
    this.view(slot).fill(0);
    if (this.#freeCount === this.#free.length) {
      const grown = new Int32Array(this.#free.length * 2);
      grown.set(this.#free);
      this.#free = grown;
    }
    this.#free[this.#freeCount++] = slot;
  }
}
