/**
 * A least-recently-used order threaded through the items themselves (two fields each): touch,
 * remove and oldest in O(1) with no allocation. A Set used as a queue is not O(1) here: deleting
 * its first entry leaves a hole that every later `values().next()` walks over until the table is
 * rebuilt, and the endpoint touches an SA on every step (issue #14: setups flat as SAs grow).
 */
export interface LruNode {
  /** Owned by the list: undefined while the item is not in it. */
  lruPrev: LruNode | undefined;
  lruNext: LruNode | undefined;
}

export class LruList<T extends LruNode> {
  /** The sentinel of a circular list: its next is the oldest item, its prev the newest. */
  readonly #s: LruNode;
  #size = 0;

  constructor() {
    const s: LruNode = { lruPrev: undefined, lruNext: undefined };
    s.lruPrev = s;
    s.lruNext = s;
    this.#s = s;
  }

  get size(): number {
    return this.#size;
  }

  has(n: T): boolean {
    return n.lruNext !== undefined;
  }

  /** `n` becomes the most recently used (added if it was not in the list). */
  touch(n: T): void {
    if (n.lruNext !== undefined) this.#unlink(n);
    else this.#size++;
    const s = this.#s;
    const last = s.lruPrev!;
    n.lruPrev = last;
    n.lruNext = s;
    last.lruNext = n;
    s.lruPrev = n;
  }

  remove(n: T): void {
    if (n.lruNext === undefined) return;
    this.#unlink(n);
    n.lruPrev = undefined;
    n.lruNext = undefined;
    this.#size--;
  }

  /** The least recently used item, if any. */
  oldest(): T | undefined {
    const first = this.#s.lruNext!;
    return first === this.#s ? undefined : (first as T);
  }

  #unlink(n: LruNode): void {
    n.lruPrev!.lruNext = n.lruNext;
    n.lruNext!.lruPrev = n.lruPrev;
  }
}
