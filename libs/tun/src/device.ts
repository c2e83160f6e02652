/**
 * A TUN device (IFF_TUN | IFF_NO_PI: one raw IP packet per read/write) wrapped around an inherited fd.
 *
 * Reads run on libuv's threadpool with fs.read on a blocking descriptor, one read in flight per device
 * (each started device therefore keeps one threadpool thread busy; raise UV_THREADPOOL_SIZE above the
 * default 4 if you open several devices and also use fs/crypto/dns heavily). Writes are synchronous
 * (fs.writeSync): a TUN write never waits for the network, it hands the packet to the kernel stack.
 * In thread mode they run on a writer thread fed through a shared-memory ring (ShmRing, WRITER_THREAD):
 * write() copies the packet into the ring and returns; a full ring drops it (txRingFull).
 *
 * Closing: a read blocked in the kernel on a TUN fd is not woken by close(2) from another thread; it
 * keeps the device attached until the next packet is transmitted through the device (or the link is
 * deleted). Worse, Node's exit joins the threadpool, so process.exit() hangs while such a read is
 * blocked. Therefore:
 * - close() marks the device closed, closes the fd with closeSync (never fs.close, which could queue
 *   behind blocked reads on a saturated threadpool) and then writes one byte to the device's waker, a
 *   packet socket bound to the device that the python3 opener hands over (IKEGATE_TUN_WAKE_FDS). The
 *   kernel transmits that byte through the device, the blocked read returns it, the loop sees the
 *   device closed, discards it and ends; `stopped` resolves. Without a waker, or when the link is down
 *   (a down link transmits nothing), the read ends only on the next packet or on `ip link del`.
 * - every device not yet closed is closed from a process 'exit' listener, so process.exit() and
 *   uncaught exceptions do not hang on a blocked read.
 * A started device keeps the event loop alive until it is closed.
 *
 * Read modes (`start`'s `mode`):
 * - 'thread' (default): a dedicated worker thread loops on blocking readSync and posts each packet
 *   (its buffer transferred, not copied) to this thread. Reads continue while this thread encrypts
 *   and sends, so a busy tunnel pipelines across cores instead of waiting a threadpool round trip
 *   per packet. The thread ends when the fd is closed (the waker unblocks its read). A second
 *   thread writes (see WRITER_THREAD); close() makes it write what the ring holds and end.
 * - 'pool': one fs.read at a time on libuv's threadpool (simpler; one packet in flight).
 */
import { closeSync, read, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export const TUN_READ_BUFFER_SIZE = 65535;

export interface TunCounters {
  rxPackets: number;
  rxBytes: number;
  /**
   * Packets handed to the kernel. Thread mode: packets accepted into the writer ring, less those
   * whose write then failed on the writer thread.
   */
  txPackets: number;
  txBytes: number;
  /**
   * Writes that failed (EAGAIN, EIO, EINVAL, a closed device, a packet over 65535 octets, ...) and
   * were dropped. Thread mode: failures on the writer thread are included as soon as they happen
   * (read from the ring's shared error word). Ring-full drops are not here: see txRingFull.
   */
  txErrors: number;
  /**
   * Thread mode: wake-ups of the writer thread (an `Atomics.notify` because the writer had announced
   * that it sleeps on an empty ring). A busy writer takes packets without any; txPackets /
   * txBatches is the packets per wake-up.
   */
  txBatches: number;
  /**
   * Thread mode: packets dropped because the writer ring was full (the writer thread is behind:
   * the free space cannot take the packet in one piece). Not counted in txErrors or txPackets;
   * write() returned false for each.
   */
  txRingFull: number;
}

const RETRY_READ_MS = 10;

/**
 * The default size of the writer ring (thread mode): ~3000 packets of 1400 octets, ~110 ms of a
 * 300 Mbit/s tunnel (a writer thread descheduled for 50 ms on a loaded 2-core machine overflowed
 * 2 MiB in the microbench at 32 packets per millisecond).
 */
export const TUN_WRITE_RING_DEFAULT_BYTES = 4 * 1024 * 1024;
const MIN_RING_BYTES = 64;
const MAX_RING_BYTES = 1 << 30;
/** The largest packet the ring carries: a TUN packet is at most 65535 octets. */
const MAX_RING_PACKET = 0xffff;

/**
 * The ring's control words (an Int32Array on a SharedArrayBuffer of its own). Each side writes
 * only its own words, kept 64 octets apart so the two threads do not share a cache line; SLEEP is
 * the one word both write.
 * - WRITE (producer): offset in the data buffer where the next record goes; storing it publishes
 *   every record before it.
 * - CLOSED (producer): 1 once the device is closed; the writer drains the ring and ends.
 * - READ (consumer): offset of the next record to take; storing it frees the records before it.
 * - ERRORS (consumer): writes that failed on the writer thread, ever.
 * - SLEEP: 1 while the writer sleeps (or is about to) in Atomics.wait on it; the producer that finds
 *   it 1 after publishing sets it to 0 and notifies.
 */
const RING_WORDS = {
  WRITE: 0,
  CLOSED: 1,
  READ: 16,
  ERRORS: 17,
  SLEEP: 32,
  COUNT: 48,
} as const;

/**
 * The consumer half of the ring (plain JavaScript: it runs in the writer thread, which does not get
 * a TypeScript loader; the tests evaluate this same text to check it against ShmRing).
 *
 * Records: a 4-octet big-endian length, the packet, padding to a multiple of 4. A record never
 * wraps: when it does not fit before the end, the producer writes the wrap marker (length
 * 0xffffffff) at WRITE and the record at offset 0. READ === WRITE means empty; the producer never
 * lets WRITE catch up with READ from behind.
 */
export const RING_CONSUMER_JS = `
class ShmRingReader {
  constructor(ctl, data) {
    this.ctl = new Int32Array(ctl);
    this.data = new Uint8Array(data);
    this.view = new DataView(data);
    this.r = Atomics.load(this.ctl, ${RING_WORDS.READ});
    this.next = this.r;
    this.at = 0;
    this.length = 0;
  }
  take() {
    let r = this.r;
    if (r === Atomics.load(this.ctl, ${RING_WORDS.WRITE})) return false;
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
    Atomics.store(this.ctl, ${RING_WORDS.READ}, this.r);
  }
  countError() {
    Atomics.add(this.ctl, ${RING_WORDS.ERRORS}, 1);
  }
  get closed() {
    return Atomics.load(this.ctl, ${RING_WORDS.CLOSED}) !== 0;
  }
  sleep() {
    Atomics.store(this.ctl, ${RING_WORDS.SLEEP}, 1);
    if (this.r !== Atomics.load(this.ctl, ${RING_WORDS.WRITE}) || this.closed) {
      Atomics.store(this.ctl, ${RING_WORDS.SLEEP}, 0);
      return;
    }
    Atomics.wait(this.ctl, ${RING_WORDS.SLEEP}, 1);
  }
}
`;

/**
 * The producer half of the writer ring: a single-producer/single-consumer ring of length-prefixed
 * records in a SharedArrayBuffer (layout: RING_CONSUMER_JS). `push` copies a packet in and publishes
 * it with one Atomics.store; it never blocks and never allocates: a packet that does not fit is
 * refused. Lost wake-ups: the consumer stores SLEEP = 1, then re-reads WRITE before it waits; the
 * producer stores WRITE, then reads SLEEP (`wakeConsumer`). Both are sequentially consistent, so
 * at least one of them sees the other's store: the consumer does not sleep, or the producer wakes it
 * (setting SLEEP to 0 first, so a consumer not yet in Atomics.wait returns from it at once).
 */
export class ShmRing {
  /** The control words (see RING_WORDS) and the record buffer, for the consumer's thread. */
  readonly ctlBuffer: SharedArrayBuffer;
  readonly dataBuffer: SharedArrayBuffer;
  readonly capacity: number;
  private readonly ctl: Int32Array;
  private readonly data: Uint8Array;
  private write = 0;

  /** `capacity` octets of records, rounded up to a multiple of 4 (at least 64, at most 1 GiB). */
  constructor(capacity: number = TUN_WRITE_RING_DEFAULT_BYTES) {
    if (!Number.isInteger(capacity) || capacity < MIN_RING_BYTES || capacity > MAX_RING_BYTES) {
      throw new RangeError(
        `TUN write ring of ${capacity} octets: must be ${MIN_RING_BYTES}..${MAX_RING_BYTES}`,
      );
    }
    this.capacity = (capacity + 3) & ~3;
    this.ctlBuffer = new SharedArrayBuffer(RING_WORDS.COUNT * 4);
    this.dataBuffer = new SharedArrayBuffer(this.capacity);
    this.ctl = new Int32Array(this.ctlBuffer);
    this.data = new Uint8Array(this.dataBuffer);
  }

  /**
   * Copies `pkt` (at most 65535 octets) into the ring and publishes it. Returns false, with the
   * ring unchanged, when the free space cannot take it. The caller may reuse `pkt` at once.
   */
  push(pkt: Uint8Array): boolean {
    const n = pkt.byteLength;
    if (n > MAX_RING_PACKET) return false;
    const need = 4 + ((n + 3) & ~3);
    const cap = this.capacity;
    const w = this.write;
    const r = Atomics.load(this.ctl, RING_WORDS.READ);
    let at = w;
    let next = w + need;
    if (w >= r) {
      // Free: [w, cap) and [0, r), less one slot so that a full ring is not read as empty.
      if (next > cap || (next === cap && r === 0)) {
        if (need >= r) return false;
        at = 0;
        next = need;
      } else if (next === cap) {
        next = 0;
      }
    } else if (next >= r) {
      return false;
    }
    const d = this.data;
    d[at] = n >>> 24;
    d[at + 1] = (n >>> 16) & 0xff;
    d[at + 2] = (n >>> 8) & 0xff;
    d[at + 3] = n & 0xff;
    d.set(pkt, at + 4);
    if (at !== w) d.fill(0xff, w, w + 4); // the wrap marker
    this.write = next;
    Atomics.store(this.ctl, RING_WORDS.WRITE, next);
    return true;
  }

  /**
   * Wakes the consumer if it announced that it sleeps (after a push). Returns true when it did
   * (one Atomics.notify); a busy consumer costs one load.
   */
  wakeConsumer(): boolean {
    if (Atomics.load(this.ctl, RING_WORDS.SLEEP) === 0) return false;
    if (Atomics.compareExchange(this.ctl, RING_WORDS.SLEEP, 1, 0) !== 1) return false;
    Atomics.notify(this.ctl, RING_WORDS.SLEEP);
    return true;
  }

  /** Tells the consumer to drain what is in the ring and end, and wakes it. */
  close(): void {
    Atomics.store(this.ctl, RING_WORDS.CLOSED, 1);
    Atomics.store(this.ctl, RING_WORDS.SLEEP, 0);
    Atomics.notify(this.ctl, RING_WORDS.SLEEP);
  }

  /** Writes that failed on the consumer's side (its `countError`), ever. */
  get consumerErrors(): number {
    return Atomics.load(this.ctl, RING_WORDS.ERRORS);
  }

  /** Octets published and not yet released by the consumer (records, markers and padding). */
  get usedOctets(): number {
    const r = Atomics.load(this.ctl, RING_WORDS.READ);
    return this.write >= r ? this.write - r : this.capacity - r + this.write;
  }
}

/**
 * The writer thread: takes each packet from the ring (ShmRing / RING_CONSUMER_JS) and writes it to
 * the TUN fd straight from the shared buffer; sleeps in Atomics.wait when the ring is empty; drains
 * the ring and ends once the device is closed. A TUN write runs the kernel's receive path for the
 * packet (routing, netfilter, the destination socket), which is most of a tunnel's per-packet cost;
 * off the main thread it overlaps with decryption of the next packets.
 *
 * Failed writes go to the ring's error word (the main thread's txErrors reads it); the first failure
 * after a quiet second is also posted, for lastTxError. Issue #14: the previous design posted one
 * message per event-loop turn, and at 1-2 packets per turn that message was 12-15% of the gateway.
 */
const WRITER_THREAD = `
const { writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
${RING_CONSUMER_JS}
const ring = new ShmRingReader(workerData.ctl, workerData.data);
const fd = workerData.fd;
let reportedAt = -Infinity;
const failed = (code, message) => {
  ring.countError();
  const now = Date.now();
  if (now - reportedAt < 1000) return;
  reportedAt = now;
  parentPort.postMessage({ code, message });
};
for (;;) {
  if (ring.take()) {
    try {
      const n = writeSync(fd, ring.data, ring.at, ring.length);
      if (n !== ring.length) failed(undefined, 'short write (' + n + ' of ' + ring.length + ' octets)');
    } catch (e) {
      failed(e.code, e.message);
    }
    ring.release();
  } else if (ring.closed) {
    break;
  } else {
    ring.sleep();
  }
}
`;

/**
 * The smallest ring `start` accepts: an empty ring always takes a 65535-octet packet (its record,
 * 65540 octets, fits before the end or before the read position wherever that is).
 */
const MIN_DEVICE_RING_BYTES = 2 * (4 + 65536) + 8;

/**
 * The reader thread (plain JavaScript: worker threads do not inherit a TypeScript loader). Blocking
 * reads; each packet is copied into its own buffer and transferred to the main thread.
 */
const READER_THREAD = `
const { readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
const buf = Buffer.allocUnsafe(workerData.size);
const stop = new Int32Array(workerData.stop);
while (Atomics.load(stop, 0) === 0) {
  let n;
  try {
    n = readSync(workerData.fd, buf, 0, buf.length, null);
  } catch (e) {
    if (e.code === 'EAGAIN' || e.code === 'EINTR' || e.code === 'EWOULDBLOCK') continue;
    if (e.code !== 'EBADF') parentPort.postMessage({ error: e.message, code: e.code });
    break;
  }
  if (n <= 0 || Atomics.load(stop, 0) !== 0) continue;
  const p = new Uint8Array(n);
  p.set(buf.subarray(0, n));
  parentPort.postMessage(p, [p.buffer]);
}
`;
const WAKE_BYTE = new Uint8Array(1);
const openDevices = new Set<TunDevice>();
let exitHookInstalled = false;

export class TunDevice {
  /**
   * Plain numbers, except txPackets and txErrors: accessors that add in the writer thread's failed
   * writes (thread mode), so a read is always current and `{ ...counters }` copies the values.
   */
  readonly counters: TunCounters;
  /** The last write error, for diagnostics (writes never throw). */
  lastTxError: NodeJS.ErrnoException | undefined;
  /** Resolves when the read loop has ended (after close(), or after a fatal read error). */
  readonly stopped: Promise<void>;

  private readonly buf = Buffer.allocUnsafe(TUN_READ_BUFFER_SIZE);
  /** Packets accepted by write() (thread mode: into the ring) and failures seen on this thread. */
  private txAccepted = 0;
  private txLocalErrors = 0;
  private onPacket: ((pkt: Uint8Array) => void) | undefined;
  private onError: ((err: Error) => void) | undefined;
  private started = false;
  /** Thread mode: set to 1 to make the reader thread stop after its current read. */
  private stopFlag: Int32Array | undefined;
  /** Thread mode: the ring to the writer thread (see WRITER_THREAD); undefined once closed. */
  private ring: ShmRing | undefined;
  /** Thread mode: the same ring, kept after close() for its error word (counters). */
  private errorRing: ShmRing | undefined;
  private writerExited: Promise<void> = Promise.resolve();
  private closed = false;
  private reading = false;
  private resolveStopped!: () => void;

  private constructor(
    readonly name: string,
    readonly fd: number,
    private readonly wakeFd: number | undefined,
  ) {
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    const writerErrors = (): number => this.errorRing?.consumerErrors ?? 0;
    const counters = { rxPackets: 0, rxBytes: 0, txBytes: 0, txBatches: 0, txRingFull: 0 };
    this.counters = Object.defineProperties(counters as TunCounters, {
      txPackets: {
        enumerable: true,
        get: () => this.txAccepted - writerErrors(),
        set: (v: number) => (this.txAccepted = v + writerErrors()),
      },
      txErrors: {
        enumerable: true,
        get: () => this.txLocalErrors + writerErrors(),
        set: (v: number) => (this.txLocalErrors = v - writerErrors()),
      },
    });
    openDevices.add(this);
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.on('exit', () => {
        for (const dev of openDevices) dev.close();
      });
    }
  }

  /**
   * Wraps an fd that already is attached to TUN device `name` (see reexecWithTun). `wakeFd` is the
   * device's waker from reexecWithTun's `wakeFds` (see the module comment); the device owns both fds.
   */
  static fromFd(name: string, fd: number, opts: { wakeFd?: number | undefined } = {}): TunDevice {
    for (const n of [fd, opts.wakeFd]) {
      if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
        throw new RangeError(`bad fd ${n} for TUN device ${name}`);
      }
    }
    return new TunDevice(name, fd, opts.wakeFd);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Starts the read loop: `onPacket` gets each packet as its own copy (safe to keep). Read errors other
   * than EAGAIN/EINTR end the loop and go to `onError` (EBADF after close() is not reported). An
   * exception thrown by `onPacket` goes to `onError` and the loop continues.
   *
   * `writeRingBytes` (thread mode): the size of the ring between write() and the writer thread
   * (default TUN_WRITE_RING_DEFAULT_BYTES); a full ring drops packets (txRingFull). Records do not
   * wrap, so it must hold two of the largest packets: one under 131,088 octets or over 1 GiB throws
   * a RangeError.
   */
  start(
    onPacket: (pkt: Uint8Array) => void,
    onError?: (err: Error) => void,
    opts: { readonly mode?: 'thread' | 'pool'; readonly writeRingBytes?: number } = {},
  ): void {
    if (this.started) throw new Error(`TUN device ${this.name} already started`);
    if (this.closed) throw new Error(`TUN device ${this.name} is closed`);
    const thread = (opts.mode ?? 'thread') === 'thread';
    const ringBytes = opts.writeRingBytes ?? TUN_WRITE_RING_DEFAULT_BYTES;
    if (thread && !(ringBytes >= MIN_DEVICE_RING_BYTES)) {
      throw new RangeError(
        `TUN write ring of ${ringBytes} octets: must be at least ${MIN_DEVICE_RING_BYTES}`,
      );
    }
    const ring = thread ? new ShmRing(ringBytes) : undefined;
    this.started = true;
    this.onPacket = onPacket;
    this.onError = onError;
    if (ring) this.startReaderThread(ring);
    else this.readNext();
  }

  private startWriterThread(ring: ShmRing): void {
    const writer = new Worker(WRITER_THREAD, {
      eval: true,
      workerData: { fd: this.fd, ctl: ring.ctlBuffer, data: ring.dataBuffer },
    });
    writer.on('message', (m: { code?: string; message: string }) => {
      this.lastTxError = Object.assign(new Error(`write to TUN device ${this.name} failed: ${m.message}`), {
        code: m.code,
      });
    });
    writer.on('error', (e) => this.onError?.(e));
    this.writerExited = new Promise((resolve) => writer.once('exit', () => resolve()));
    writer.unref();
    this.ring = ring;
    this.errorRing = ring;
  }

  private startReaderThread(ring: ShmRing): void {
    this.startWriterThread(ring);
    this.reading = true;
    const stop = new SharedArrayBuffer(4);
    this.stopFlag = new Int32Array(stop);
    const worker = new Worker(READER_THREAD, {
      eval: true,
      workerData: { fd: this.fd, size: TUN_READ_BUFFER_SIZE, stop },
    });
    worker.on('message', (m: Uint8Array | { error: string; code?: string }) => {
      if (this.closed) return;
      if (m instanceof Uint8Array) {
        this.counters.rxPackets++;
        this.counters.rxBytes += m.byteLength;
        try {
          this.onPacket?.(m);
        } catch (e) {
          this.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
        return;
      }
      this.close();
      this.onError?.(new Error(`read from TUN device ${this.name} failed: ${m.error}`));
    });
    worker.on('error', (e) => {
      if (!this.closed) this.onError?.(e);
    });
    worker.on('exit', () => {
      this.reading = false;
      // Only once both threads are gone: closing the fd while one could still use it would let it
      // read or write whatever file next gets that fd number.
      void this.writerExited.then(() => {
        this.closeFds();
        this.resolveStopped();
      });
    });
  }

  /**
   * Sends one IP packet into the kernel. Returns false instead of throwing, counting a txError (or,
   * thread mode, a txRingFull). In thread mode the packet is copied into the writer ring before the
   * call returns (the caller may reuse `pkt` at once) and written by the writer thread; a later
   * failure is counted in txErrors (and txPackets no longer counts it). A full ring drops the packet:
   * this never blocks and the ring never grows.
   */
  write(pkt: Uint8Array): boolean {
    if (this.closed) {
      this.txLocalErrors++;
      return false;
    }
    const ring = this.ring;
    if (ring) {
      const n = pkt.byteLength;
      if (n > MAX_RING_PACKET) {
        this.txLocalErrors++; // larger than any TUN packet (EINVAL from the kernel)
        return false;
      }
      if (!ring.push(pkt)) {
        this.counters.txRingFull++;
        return false;
      }
      this.txAccepted++;
      this.counters.txBytes += n;
      if (ring.wakeConsumer()) this.counters.txBatches++;
      return true;
    }
    try {
      const n = writeSync(this.fd, pkt);
      if (n !== pkt.byteLength) {
        this.txLocalErrors++;
        return false;
      }
      this.txAccepted++;
      this.counters.txBytes += n;
      return true;
    } catch (err) {
      this.lastTxError = err as NodeJS.ErrnoException;
      this.txLocalErrors++;
      return false;
    }
  }

  /** Stops the loop and closes the fd. Idempotent. See the module comment for a blocked read. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openDevices.delete(this);
    if (this.stopFlag) {
      // Thread mode: stop both threads (the writer drains the ring first), wake the reader; the
      // fds are closed when both have exited.
      this.ring?.close();
      this.ring = undefined;
      Atomics.store(this.stopFlag, 0, 1);
      if (this.reading) this.wake();
      else this.closeFds();
      return;
    }
    try {
      closeSync(this.fd);
    } catch {
      // already closed (EBADF): nothing more to do
    }
    if (this.reading) this.wake();
    this.closeWake();
    if (!this.reading) this.resolveStopped();
  }

  private wake(): void {
    if (this.wakeFd === undefined) return;
    try {
      writeSync(this.wakeFd, WAKE_BYTE);
    } catch {
      // link down (ENETDOWN) or gone: the read ends on the next packet or link deletion
    }
  }

  private closeWake(): void {
    if (this.wakeFd === undefined) return;
    try {
      closeSync(this.wakeFd);
    } catch {
      // already closed
    }
  }

  private closeFds(): void {
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    this.closeWake();
  }

  private readNext(): void {
    if (this.closed) {
      this.resolveStopped();
      return;
    }
    this.reading = true;
    read(this.fd, this.buf, 0, this.buf.length, null, (err, n) => {
      this.reading = false;
      if (this.closed) {
        this.resolveStopped();
        return;
      }
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN' || code === 'EWOULDBLOCK' || code === 'EINTR') {
          // Non-blocking fd or interrupted: poll again shortly.
          setTimeout(() => this.readNext(), code === 'EINTR' ? 0 : RETRY_READ_MS);
          return;
        }
        this.close();
        this.onError?.(new Error(`read from TUN device ${this.name} failed: ${err.message}`, { cause: err }));
        return;
      }
      if (n > 0) {
        const pkt = new Uint8Array(n);
        pkt.set(this.buf.subarray(0, n));
        this.counters.rxPackets++;
        this.counters.rxBytes += n;
        try {
          this.onPacket?.(pkt);
        } catch (e) {
          this.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      }
      this.readNext();
    });
  }
}
