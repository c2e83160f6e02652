/**
 * A single-producer/single-consumer ring of packets in a SharedArrayBuffer, for the TUN device's
 * two threads (issue #14): the writer ring (producer: the main thread's write(); consumer: the
 * writer thread) and the reader ring (producer: the reader thread, which reads each packet from
 * the fd straight into the ring; consumer: the main thread). One implementation, RING_JS, in plain
 * JavaScript because worker threads get no TypeScript loader: the threads evaluate the text, and
 * this module evaluates the same text once for the main thread's halves (ShmRing, ShmRingReader).
 *
 * Records: a 4-octet big-endian length, the packet, padding to a multiple of 4. A record never
 * wraps: when it does not fit before the end, the producer writes the wrap marker (length
 * 0xffffffff) at WRITE and the record at offset 0. READ === WRITE means empty; the producer never
 * lets WRITE catch up with READ from behind. Neither half blocks or allocates per packet: a packet
 * that does not fit is refused (and the caller counts the drop).
 *
 * Lost wake-ups: a consumer about to sleep stores SLEEP = 1, then re-reads WRITE before it waits
 * (Atomics.wait on a thread, Atomics.waitAsync on the main thread); the producer stores WRITE, then
 * reads SLEEP (`wakeConsumer`). Both are sequentially consistent, so at least one of them sees the
 * other's store: the consumer does not sleep, or the producer wakes it (setting SLEEP to 0 first,
 * so a consumer not yet waiting returns at once).
 */

/** The largest packet the ring carries: a TUN packet is at most 65535 octets. */
export const MAX_RING_PACKET = 0xffff;
const MIN_RING_BYTES = 64;
const MAX_RING_BYTES = 1 << 30;

/**
 * The control words (an Int32Array on a SharedArrayBuffer of its own). Each side writes only its
 * own words, kept 64 octets apart so the two threads do not share a cache line; SLEEP is the one
 * word both write.
 * - WRITE (producer): offset in the data buffer where the next record goes; storing it publishes
 *   every record before it.
 * - CLOSED (producer): 1 once the producer is done; the consumer drains the ring and ends.
 * - DROPS (producer): packets the producer could not put into the ring (`countDrop`), ever.
 * - READ (consumer): offset of the next record to take; storing it frees the records before it.
 * - ERRORS (consumer): packets the consumer failed to handle (`countError`), ever.
 * - SLEEP: 1 while the consumer sleeps (or is about to) waiting on it; the producer that finds it 1
 *   after publishing sets it to 0 and notifies.
 */
export const RING_WORDS = {
  WRITE: 0,
  CLOSED: 1,
  DROPS: 2,
  READ: 16,
  ERRORS: 17,
  SLEEP: 32,
  COUNT: 48,
} as const;

const W = RING_WORDS;

/** Both halves of the ring as JavaScript text: `ShmRing` (producer) and `ShmRingReader` (consumer). */
export const RING_JS = `
class ShmRing {
  constructor(ctl, data) {
    if (typeof ctl === 'number') {
      const capacity = ctl;
      if (!Number.isInteger(capacity) || capacity < ${MIN_RING_BYTES} || capacity > ${MAX_RING_BYTES}) {
        throw new RangeError('TUN ring of ' + capacity + ' octets: must be ${MIN_RING_BYTES}..${MAX_RING_BYTES}');
      }
      ctl = new SharedArrayBuffer(${W.COUNT * 4});
      data = new SharedArrayBuffer((capacity + 3) & ~3);
    }
    this.ctlBuffer = ctl;
    this.dataBuffer = data;
    this.ctl = new Int32Array(ctl);
    this.data = new Uint8Array(data);
    this.capacity = data.byteLength;
    this.w = Atomics.load(this.ctl, ${W.WRITE});
    this.rec = 0;
    this.at = 0;
  }
  reserve(n, wrap = true) {
    if (n > ${MAX_RING_PACKET}) return false;
    const need = 4 + ((n + 3) & ~3);
    const w = this.w;
    const r = Atomics.load(this.ctl, ${W.READ});
    let at = w;
    if (w >= r) {
      // Free: [w, cap) and [0, r), less one slot so that a full ring is not read as empty.
      const next = w + need;
      if (next > this.capacity || (next === this.capacity && r === 0)) {
        if (need >= r || !wrap) return false;
        at = 0;
      }
    } else if (w + need >= r) {
      return false;
    }
    this.rec = at;
    this.at = at + 4;
    return true;
  }
  commit(n) {
    const at = this.rec;
    const d = this.data;
    d[at] = n >>> 24;
    d[at + 1] = (n >>> 16) & 0xff;
    d[at + 2] = (n >>> 8) & 0xff;
    d[at + 3] = n & 0xff;
    if (at !== this.w) d.fill(0xff, this.w, this.w + 4);
    const next = at + 4 + ((n + 3) & ~3);
    this.w = next === this.capacity ? 0 : next;
    Atomics.store(this.ctl, ${W.WRITE}, this.w);
  }
  push(pkt) {
    const n = pkt.byteLength;
    if (!this.reserve(n)) return false;
    this.data.set(pkt, this.at);
    this.commit(n);
    return true;
  }
  get consumerAsleep() {
    return Atomics.load(this.ctl, ${W.SLEEP}) !== 0;
  }
  wakeConsumer() {
    if (Atomics.load(this.ctl, ${W.SLEEP}) === 0) return false;
    if (Atomics.compareExchange(this.ctl, ${W.SLEEP}, 1, 0) !== 1) return false;
    Atomics.notify(this.ctl, ${W.SLEEP});
    return true;
  }
  countDrop() {
    Atomics.add(this.ctl, ${W.DROPS}, 1);
  }
  close() {
    Atomics.store(this.ctl, ${W.CLOSED}, 1);
    Atomics.store(this.ctl, ${W.SLEEP}, 0);
    Atomics.notify(this.ctl, ${W.SLEEP});
  }
  get consumerErrors() {
    return Atomics.load(this.ctl, ${W.ERRORS});
  }
  get usedOctets() {
    const r = Atomics.load(this.ctl, ${W.READ});
    return this.w >= r ? this.w - r : this.capacity - r + this.w;
  }
}

class ShmRingReader {
  constructor(ctl, data) {
    this.ctl = new Int32Array(ctl);
    this.data = new Uint8Array(data);
    this.view = new DataView(data);
    this.r = Atomics.load(this.ctl, ${W.READ});
    this.next = this.r;
    this.at = 0;
    this.length = 0;
  }
  take() {
    let r = this.r;
    if (r === Atomics.load(this.ctl, ${W.WRITE})) return false;
    let n = this.view.getUint32(r);
    if (n === 0xffffffff) {
      r = 0;
      n = this.view.getUint32(0);
    }
    this.at = r + 4;
    this.length = n;
    const next = r + 4 + ((n + 3) & ~3);
    this.next = next === this.data.length ? 0 : next;
    return true;
  }
  release() {
    this.r = this.next;
    Atomics.store(this.ctl, ${W.READ}, this.r);
  }
  countError(n = 1) {
    Atomics.add(this.ctl, ${W.ERRORS}, n);
  }
  get producerDrops() {
    return Atomics.load(this.ctl, ${W.DROPS});
  }
  get closed() {
    return Atomics.load(this.ctl, ${W.CLOSED}) !== 0;
  }
  mayWait() {
    Atomics.store(this.ctl, ${W.SLEEP}, 1);
    if (this.r !== Atomics.load(this.ctl, ${W.WRITE}) || this.closed) {
      Atomics.store(this.ctl, ${W.SLEEP}, 0);
      return false;
    }
    return true;
  }
  sleep() {
    if (this.mayWait()) Atomics.wait(this.ctl, ${W.SLEEP}, 1);
  }
  sleepAsync() {
    if (!this.mayWait()) return undefined;
    const w = Atomics.waitAsync(this.ctl, ${W.SLEEP}, 1);
    return w.async ? w.value : undefined;
  }
  wake() {
    Atomics.store(this.ctl, ${W.SLEEP}, 0);
    Atomics.notify(this.ctl, ${W.SLEEP});
  }
}
`;

/**
 * The producer half. `push` copies a packet in and publishes it with one Atomics.store; `reserve`
 * + `commit` let the producer fill the record in place (the reader thread reads from the fd
 * straight into `data` at `at`).
 */
export interface ShmRing {
  /** The control words (see RING_WORDS) and the record buffer, for the other thread. */
  readonly ctlBuffer: SharedArrayBuffer;
  readonly dataBuffer: SharedArrayBuffer;
  /** Octets of records (the size asked for, rounded up to a multiple of 4). */
  readonly capacity: number;
  readonly data: Uint8Array;
  /** After a successful `reserve`: where the packet's octets go in `data`. */
  readonly at: number;
  /**
   * Finds room for a record of `n` octets (at most 65535) in one piece and sets `at`; false, ring
   * unchanged, when the free space cannot take it. Nothing is published until `commit`. With
   * `wrap` false it also refuses room that would start the record at offset 0 again: a reservation
   * larger than what then gets committed would otherwise leave the end of the ring unused for a lap.
   */
  reserve(n: number, wrap?: boolean): boolean;
  /** Publishes the reserved record holding `n` octets (at most the `n` reserved) at `at`. */
  commit(n: number): void;
  /**
   * Copies `pkt` (at most 65535 octets) into the ring and publishes it. Returns false, with the
   * ring unchanged, when the free space cannot take it. The caller may reuse `pkt` at once.
   */
  push(pkt: Uint8Array): boolean;
  /**
   * Wakes the consumer if it announced that it sleeps (after a push/commit). Returns true when it
   * did (one Atomics.notify); a busy consumer costs one load.
   */
  wakeConsumer(): boolean;
  /** Whether the consumer announced that it sleeps (a push then needs a `wakeConsumer`). */
  readonly consumerAsleep: boolean;
  /** Counts a packet the producer dropped (ring full); the consumer reads it as `producerDrops`. */
  countDrop(): void;
  /** Tells the consumer to drain what is in the ring and end, and wakes it. */
  close(): void;
  /** Packets the consumer failed to handle (its `countError`), ever. */
  readonly consumerErrors: number;
  /** Octets published and not yet released by the consumer (records, markers and padding). */
  readonly usedOctets: number;
}

/**
 * The consumer half. `take` exposes the oldest record (`data`, `at`, `length`) without freeing it;
 * calling it again before `release` gives the same record; `release` frees it (the producer may
 * overwrite those octets from then on).
 */
export interface ShmRingReader {
  readonly data: Uint8Array;
  readonly at: number;
  readonly length: number;
  take(): boolean;
  release(): void;
  countError(n?: number): void;
  readonly producerDrops: number;
  readonly closed: boolean;
  /**
   * Announces that the consumer waits (SLEEP = 1) and re-checks: false, announcement withdrawn,
   * when a record arrived meanwhile or the producer closed.
   */
  mayWait(): boolean;
  /** A thread's wait: Atomics.wait until the producer publishes (or closes), if `mayWait`. */
  sleep(): void;
  /**
   * The main thread's wait (it must not block): a promise that resolves when the producer
   * publishes, or undefined when there is something to take already (or the ring is closed).
   */
  sleepAsync(): Promise<unknown> | undefined;
  /** Ends a `sleep` / `sleepAsync` from this side (SLEEP = 0, notify). */
  wake(): void;
}

const halves = new Function(`${RING_JS}\nreturn { ShmRing, ShmRingReader };`)() as {
  ShmRing: new (capacityOrCtl: number | SharedArrayBuffer, data?: SharedArrayBuffer) => ShmRing;
  ShmRingReader: new (ctl: SharedArrayBuffer, data: SharedArrayBuffer) => ShmRingReader;
};

/**
 * `new ShmRing(capacity)`: a new ring of `capacity` octets (rounded up to a multiple of 4; 64
 * octets..1 GiB, else RangeError). `new ShmRing(ctlBuffer, dataBuffer)`: the producer of a ring
 * created elsewhere.
 */
export const ShmRing = halves.ShmRing;
/** `new ShmRingReader(ring.ctlBuffer, ring.dataBuffer)`: the consumer of a ring. */
export const ShmRingReader = halves.ShmRingReader;
