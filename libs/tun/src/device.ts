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
}

const RETRY_READ_MS = 10;

/**
 * The writer thread: takes batches of packets (one message per event-loop turn of the main thread)
 * and writes each to the TUN fd. A TUN write runs the kernel's receive path for the packet
 * (routing, netfilter, the destination socket), which is most of a tunnel's per-packet cost; off the
 * main thread it overlaps with decryption of the next packets. Failed writes are reported back.
 */
const WRITER_THREAD = `
const { writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
parentPort.on('message', (batch) => {
  if (batch === null) { process.exit(0); }
  let errors = 0;
  let last;
  for (const p of batch) {
    try {
      if (writeSync(workerData.fd, p) !== p.byteLength) errors++;
    } catch (e) {
      errors++;
      last = e.code;
    }
  }
  if (errors > 0) parentPort.postMessage({ errors, code: last });
});
`;

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
  readonly counters: TunCounters = { rxPackets: 0, rxBytes: 0, txPackets: 0, txBytes: 0, txErrors: 0 };
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
  /** Thread mode: the writer thread and the packets waiting for this turn's batch. */
  private writer: Worker | undefined;
  private batch: Uint8Array[] = [];
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
   * In thread mode the packet is copied and written by the writer thread within this event-loop
   * turn's batch; a later failure is counted in txErrors.
   */
  write(pkt: Uint8Array): boolean {
    if (this.closed) {
      this.counters.txErrors++;
      return false;
    }
    if (this.writer) {
      if (this.batch.length === 0) setImmediate(() => this.flushBatch());
      this.batch.push(pkt.slice());
      this.counters.txPackets++;
      this.counters.txBytes += pkt.byteLength;
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

  private flushBatch(): void {
    const batch = this.batch;
    this.batch = [];
    if (!this.writer || batch.length === 0 || this.closed) return;
    this.writer.postMessage(
      batch,
      batch.map((b) => b.buffer as ArrayBuffer),
    );
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
      this.batch = [];
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
