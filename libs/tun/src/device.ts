/**
 * A TUN device (IFF_TUN | IFF_NO_PI: one raw IP packet per read/write) wrapped around an inherited fd.
 *
 * Reads run on libuv's threadpool with fs.read on a blocking descriptor, one read in flight per device
 * (each started device therefore keeps one threadpool thread busy; raise UV_THREADPOOL_SIZE above the
 * default 4 if you open several devices and also use fs/crypto/dns heavily). Writes are synchronous
 * (fs.writeSync): a TUN write never waits for the network, it hands the packet to the kernel stack.
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
 *   per packet. The thread ends when the fd is closed (the waker unblocks its read).
 * - 'pool': one fs.read at a time on libuv's threadpool (simpler; one packet in flight).
 */
import { closeSync, read, writeSync } from 'node:fs';
import { Worker } from 'node:worker_threads';

export const TUN_READ_BUFFER_SIZE = 65535;

export interface TunCounters {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Writes that failed (EAGAIN, EIO, EINVAL, a closed device, ...) and were dropped. */
  txErrors: number;
  /** Thread mode: batches handed to the writer thread (txPackets / txBatches: packets per message). */
  txBatches: number;
}

const RETRY_READ_MS = 10;

/**
 * The writer thread: takes batches of packets (one message per event-loop turn of the main thread,
 * more only when a turn's packets overflow a batch buffer) and writes each to the TUN fd. A TUN
 * write runs the kernel's receive path for the packet (routing, netfilter, the destination socket),
 * which is most of a tunnel's per-packet cost; off the main thread it overlaps with decryption of
 * the next packets. Failed writes are reported back.
 *
 * A batch is one Uint8Array whose ArrayBuffer is transferred (issue #14: a copy and a transfer-list
 * entry per packet were 11-14% of the gateway): packets back to back, each behind its length as two
 * octets, big-endian (a TUN packet is at most 65535 octets).
 */
const WRITER_THREAD = `
const { writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', (batch) => {
  if (batch === null) { process.exit(0); }
  let errors = 0;
  let last;
  for (let at = 0; at + 2 <= batch.length; ) {
    const n = (batch[at] << 8) | batch[at + 1];
    at += 2;
    try {
      if (writeSync(workerData.fd, batch, at, n) !== n) errors++;
    } catch (e) {
      errors++;
      last = e.code;
    }
    at += n;
  }
  if (errors > 0) parentPort.postMessage({ errors, code: last });
});
`;

/** The length in front of each packet of a batch (see WRITER_THREAD). */
const BATCH_LENGTH_SIZE = 2;
/** The largest packet a batch can carry: the 16-bit length. */
const MAX_BATCH_PACKET = 0xffff;
/**
 * A turn's first batch buffer is sized from the previous turn (a turn of bulk traffic is much like
 * the last), within these bounds; the upper one stays below glibc's mmap threshold, so a batch buffer is a
 * heap allocation, not a mapping of its own.
 */
const MIN_BATCH_BYTES = 4 * 1024;
const MAX_BATCH_BYTES = 96 * 1024;

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
  readonly counters: TunCounters = {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txErrors: 0,
    txBatches: 0,
  };
  /** The last write error, for diagnostics (writes never throw). */
  lastTxError: NodeJS.ErrnoException | undefined;
  /** Resolves when the read loop has ended (after close(), or after a fatal read error). */
  readonly stopped: Promise<void>;

  private readonly buf = Buffer.allocUnsafe(TUN_READ_BUFFER_SIZE);
  private onPacket: ((pkt: Uint8Array) => void) | undefined;
  private onError: ((err: Error) => void) | undefined;
  private started = false;
  /** Thread mode: set to 1 to make the reader thread stop after its current read. */
  private stopFlag: Int32Array | undefined;
  /**
   * Thread mode: the writer thread, and this turn's batch: `batch[0, batchUsed)` holds the packets
   * written so far (see WRITER_THREAD); the buffer is transferred when the batch is posted.
   */
  private writer: Worker | undefined;
  private batch: Buffer | undefined;
  private batchUsed = 0;
  /** Octets the last turn wrote: the size of the next turn's first batch buffer. */
  private batchHint = MIN_BATCH_BYTES;
  private turnOctets = 0;
  private batchScheduled = false;
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
   */
  start(
    onPacket: (pkt: Uint8Array) => void,
    onError?: (err: Error) => void,
    opts: { readonly mode?: 'thread' | 'pool' } = {},
  ): void {
    if (this.started) throw new Error(`TUN device ${this.name} already started`);
    if (this.closed) throw new Error(`TUN device ${this.name} is closed`);
    this.started = true;
    this.onPacket = onPacket;
    this.onError = onError;
    if ((opts.mode ?? 'thread') === 'thread') this.startReaderThread();
    else this.readNext();
  }

  private startWriterThread(): void {
    const writer = new Worker(WRITER_THREAD, { eval: true, workerData: { fd: this.fd } });
    writer.on('message', (m: { errors: number; code?: string }) => {
      this.counters.txErrors += m.errors;
      this.counters.txPackets -= m.errors;
    });
    writer.on('error', (e) => this.onError?.(e));
    this.writerExited = new Promise((resolve) => writer.once('exit', () => resolve()));
    writer.unref();
    this.writer = writer;
  }

  private startReaderThread(): void {
    this.startWriterThread();
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
   * Sends one IP packet into the kernel. Returns false (and counts a txError) instead of throwing.
   * In thread mode the packet is copied into this event-loop turn's batch before the call returns
   * (the caller may reuse `pkt` at once) and written by the writer thread after the turn; a later
   * failure is counted in txErrors.
   */
  write(pkt: Uint8Array): boolean {
    if (this.closed) {
      this.counters.txErrors++;
      return false;
    }
    if (this.writer) {
      const n = pkt.byteLength;
      if (n > MAX_BATCH_PACKET) {
        this.counters.txErrors++; // larger than any TUN packet (EINVAL from the kernel)
        return false;
      }
      let batch = this.batch;
      let at = this.batchUsed;
      if (batch === undefined || at + BATCH_LENGTH_SIZE + n > batch.length) {
        // The turn's first batch is sized from the last turn; one that overflowed takes the most.
        const size = batch === undefined ? this.batchHint + (this.batchHint >>> 2) : MAX_BATCH_BYTES;
        this.flushBatch();
        batch = Buffer.allocUnsafeSlow(
          Math.max(Math.min(size, MAX_BATCH_BYTES), MIN_BATCH_BYTES, BATCH_LENGTH_SIZE + n),
        );
        this.batch = batch;
        at = 0;
      }
      batch[at] = n >>> 8;
      batch[at + 1] = n & 0xff;
      batch.set(pkt, at + BATCH_LENGTH_SIZE);
      this.batchUsed = at + BATCH_LENGTH_SIZE + n;
      if (!this.batchScheduled) {
        this.batchScheduled = true;
        setImmediate(this.flushTurn);
      }
      this.counters.txPackets++;
      this.counters.txBytes += n;
      return true;
    }
    try {
      const n = writeSync(this.fd, pkt);
      if (n !== pkt.byteLength) {
        this.counters.txErrors++;
        return false;
      }
      this.counters.txPackets++;
      this.counters.txBytes += n;
      return true;
    } catch (err) {
      this.lastTxError = err as NodeJS.ErrnoException;
      this.counters.txErrors++;
      return false;
    }
  }

  private readonly flushTurn = (): void => {
    this.batchScheduled = false;
    this.flushBatch();
    this.batchHint = this.turnOctets;
    this.turnOctets = 0;
  };

  /** Posts the batch gathered so far to the writer thread, its buffer transferred (not copied). */
  private flushBatch(): void {
    const batch = this.batch;
    const used = this.batchUsed;
    this.batch = undefined;
    this.batchUsed = 0;
    if (!this.writer || batch === undefined || used === 0 || this.closed) return;
    this.turnOctets += used;
    this.counters.txBatches++;
    // allocUnsafeSlow: the Buffer owns its whole ArrayBuffer (not a slice of node's pool).
    this.writer.postMessage(batch.subarray(0, used), [batch.buffer as ArrayBuffer]);
  }

  /** Stops the loop and closes the fd. Idempotent. See the module comment for a blocked read. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openDevices.delete(this);
    if (this.stopFlag) {
      // Thread mode: stop both threads, wake the reader; the fds are closed when it has exited.
      this.writer?.postMessage(null);
      this.writer = undefined;
      this.batch = undefined;
      this.batchUsed = 0;
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
