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
 */
import { closeSync, read, writeSync } from 'node:fs';

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
  start(onPacket: (pkt: Uint8Array) => void, onError?: (err: Error) => void): void {
    if (this.started) throw new Error(`TUN device ${this.name} already started`);
    if (this.closed) throw new Error(`TUN device ${this.name} is closed`);
    this.started = true;
    this.onPacket = onPacket;
    this.onError = onError;
    this.readNext();
  }

  /** Sends one IP packet into the kernel. Returns false (and counts a txError) instead of throwing. */
  write(pkt: Uint8Array): boolean {
    if (this.closed) {
      this.counters.txErrors++;
      return false;
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

  /** Stops the loop and closes the fd. Idempotent. See the module comment for a blocked read. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openDevices.delete(this);
    try {
      closeSync(this.fd);
    } catch {
      // already closed (EBADF): nothing more to do
    }
    if (this.wakeFd !== undefined) {
      if (this.reading) {
        try {
          writeSync(this.wakeFd, WAKE_BYTE);
        } catch {
          // link down (ENETDOWN) or gone: the read ends on the next packet or link deletion
        }
      }
      try {
        closeSync(this.wakeFd);
      } catch {
        // already closed
      }
    }
    if (!this.reading) this.resolveStopped();
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
