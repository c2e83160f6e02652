/**
 * A binary min-heap of items keyed by a deadline (ms), with O(log n) insert, update and removal
 * of any item: the endpoint keeps every IKE SA in it by `nextTimeout(state)`, so the driver needs
 * one timer for all SAs and a due SA is found without scanning.
 */
export interface HeapItem {
  /** The item's deadline; Infinity keeps it out of the heap. */
  deadline: number;
  /** Position in the heap, -1 when not in it (owned by the heap). */
  heapIndex: number;
}

export class DeadlineHeap<T extends HeapItem> {
  readonly #a: T[] = [];

  get size(): number {
    return this.#a.length;
  }

  /** The item with the earliest deadline, if any. */
  peek(): T | undefined {
    return this.#a[0];
  }

  /** Puts `item` at `deadline` (inserting, moving or, for Infinity, removing it). */
  set(item: T, deadline: number): void {
    if (deadline === Number.POSITIVE_INFINITY) {
      this.remove(item);
      item.deadline = deadline;
      return;
    }
    if (item.heapIndex < 0) {
      item.deadline = deadline;
      item.heapIndex = this.#a.length;
      this.#a.push(item);
      this.#up(item.heapIndex);
      return;
    }
    const old = item.deadline;
    item.deadline = deadline;
    if (deadline < old) this.#up(item.heapIndex);
    else if (deadline > old) this.#down(item.heapIndex);
  }

  remove(item: T): void {
    const i = item.heapIndex;
    if (i < 0) return;
    const last = this.#a.pop()!;
    item.heapIndex = -1;
    if (i === this.#a.length) return;
    this.#a[i] = last;
    last.heapIndex = i;
    this.#up(i);
    this.#down(last.heapIndex);
  }

  #swap(i: number, j: number): void {
    const a = this.#a;
    const x = a[i]!;
    const y = a[j]!;
    a[i] = y;
    a[j] = x;
    y.heapIndex = i;
    x.heapIndex = j;
  }

  #up(i: number): void {
    const a = this.#a;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]!.deadline <= a[i]!.deadline) return;
      this.#swap(i, p);
      i = p;
    }
  }

  #down(i: number): void {
    const a = this.#a;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && a[l]!.deadline < a[m]!.deadline) m = l;
      if (r < a.length && a[r]!.deadline < a[m]!.deadline) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }
}
