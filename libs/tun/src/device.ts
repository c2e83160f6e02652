/**
 * A TUN device (IFF_TUN | IFF_NO_PI: one IP packet per read/write) wrapped around an inherited fd.
 * Opened with IFF_VNET_HDR as well (`vnetHdr`, the default where the kernel has it), a
 * virtio_net_hdr comes before each packet: `onPacket` and write() still see plain IP packets (the
 * header is taken off what is read, where the kernel leaves it zero, and put on what is written),
 * and in thread mode write() merges consecutive TCP segments of a flow into one GSO write
 * (TcpCoalescer, gro.ts).
 *
 * Reads run on libuv's threadpool with fs.read on a blocking descriptor, one read in flight per device
 * (each started device therefore keeps one threadpool thread busy; raise UV_THREADPOOL_SIZE above the
 * default 4 if you open several devices and also use fs/crypto/dns heavily). Writes are synchronous
 * (fs.writeSync, or writevSync with the header): a TUN write never waits for the network, it hands
 * the packet to the kernel stack.
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
 * - 'thread' (default): a dedicated worker thread loops on blocking readSync, reading each packet
 *   straight into a second shared-memory ring (READER_THREAD) that this thread drains in batches.
 *   Reads continue while this thread encrypts and sends, so a busy tunnel pipelines across cores
 *   instead of waiting a threadpool round trip per packet; when this thread falls behind, the ring
 *   fills and the reader drops (rxRingFull) instead of queueing without bound. The thread ends
 *   when the fd is closed (the waker unblocks its read). A second thread writes (see
 *   WRITER_THREAD); close() makes it write what the ring holds and end.
 * - 'pool': one fs.read at a time on libuv's threadpool (simpler; one packet in flight).
 */
import { closeSync, read, writeSync, writevSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { GRO_MAX_PACKET, TcpCoalescer, VNET_HDR_LEN } from './gro.js';
import { MAX_RING_PACKET, RING_JS, ShmRing, ShmRingReader } from './ring.js';

export const TUN_READ_BUFFER_SIZE = 65535;
/** The largest IP packet read or written: 65535 octets less the virtio_net_hdr in front of it. */
export const TUN_MAX_PACKET = GRO_MAX_PACKET;

export interface TunCounters {
  /** Packets read and handed to `onPacket` (thread mode: taken from the reader ring). */
  rxPackets: number;
  rxBytes: number;
  /**
   * Thread mode: packets read from the device and dropped by the reader thread because the reader
   * ring was full (this thread is behind in handling what was read). Not in rxPackets.
   */
  rxRingFull: number;
  /**
   * Reads dropped because their virtio_net_hdr said GSO or a checksum still to complete: never, as
   * the device is opened with offloads off (open.ts); counted should a kernel do it anyway.
   */
  rxOffloaded: number;
  /**
   * Packets handed to the kernel. Thread mode: packets accepted into the writer ring, less those
   * whose write then failed on the writer thread.
   */
  txPackets: number;
  txBytes: number;
  /**
   * Writes that failed (EAGAIN, EIO, EINVAL, a closed device, a packet over TUN_MAX_PACKET, ...) and
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
  /**
   * Thread mode: TCP segments written as part of a coalesced (GSO) write begun by an earlier
   * segment of their flow, i.e. TUN writes saved (gro.ts). Included in txPackets.
   */
  txCoalesced: number;
  /**
   * Thread mode: TCP segments that could have been coalesced but carried a wrong TCP checksum, so
   * they were written alone (and the receiving stack drops them, as it would have without us).
   */
  txBadChecksum: number;
}

const RETRY_READ_MS = 10;

/**
 * The default size of the writer ring (thread mode): ~3000 packets of 1400 octets, ~110 ms of a
 * 300 Mbit/s tunnel (a writer thread descheduled for 50 ms on a loaded 2-core machine overflowed
 * 2 MiB in the microbench at 32 packets per millisecond).
 */
export const TUN_WRITE_RING_DEFAULT_BYTES = 4 * 1024 * 1024;

/**
 * The default size of the reader ring (thread mode): ~1400 packets of 1400 octets, ~55 ms of a
 * 300 Mbit/s tunnel. A queue in front of an overloaded main thread only adds delay; the TUN's own
 * queue (txqueuelen) is in front of it as well.
 */
export const TUN_READ_RING_DEFAULT_BYTES = 2 * 1024 * 1024;

/**
 * Thread mode: the most packets handed to `onPacket` in one turn of the event loop; then the
 * drain yields (setImmediate) so sockets and timers are not starved by a full reader ring.
 */
const RX_BATCH = 256;
/**
 * The writer thread: takes each packet from the ring (ShmRing / ShmRingReader, ring.ts) and writes it
 * to the TUN fd straight from the shared buffer; sleeps in Atomics.wait when the ring is empty; drains
 * the ring and ends once the device is closed. A TUN write runs the kernel's receive path for the
 * packet (routing, netfilter, the destination socket), which is most of a tunnel's per-packet cost;
 * off the main thread it overlaps with decryption of the next packets.
 *
 * Failed writes go to the ring's error word (the main thread's txErrors reads it), one per packet
 * lost: a merged record (gro.ts, its virtio_net_hdr has a gso_type) counts its segments. The first
 * failure after a quiet second is also posted, for lastTxError. Issue #14: the previous design
 * posted one message per event-loop turn, and at 1-2 packets per turn that message was 12-15% of
 * the gateway.
 */
const WRITER_THREAD = `
const { writeSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
${RING_JS}
const ring = new ShmRingReader(workerData.ctl, workerData.data);
const fd = workerData.fd;
const vnetHdr = workerData.vnetHdr;
let reportedAt = -Infinity;
// The packets in the record at ring.at: a merged one's segments (virtio_net_hdr, little-endian).
const packets = () => {
  const d = ring.data;
  const at = ring.at;
  if (!vnetHdr || d[at + 1] === 0) return 1;
  const headers = d[at + 2] | (d[at + 3] << 8);
  const gso = d[at + 4] | (d[at + 5] << 8);
  return gso > 0 ? Math.max(1, Math.ceil((ring.length - ${VNET_HDR_LEN} - headers) / gso)) : 1;
};
const failed = (code, message) => {
  ring.countError(packets());
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
/** Octets waiting in the write ring past which a sleeping writer is woken at once, not at the turn's end. */
const WAKE_AT_OCTETS = 64 * 1024;

const MIN_DEVICE_RING_BYTES = 2 * (4 + 65536) + 8;

/**
 * The reader thread (plain JavaScript: worker threads do not inherit a TypeScript loader). Blocking
 * reads straight into the reader ring (a record reserved for the largest packet, committed with the
 * length read) and one load to see whether the main thread waits for a wake-up. When the ring has
 * no room for the largest packet before its end (or before the main thread's read position), the
 * read goes to a scratch buffer and is copied in if it fits (wrapping to the start if need be: a
 * 64 KiB reservation that wrapped would leave up to 64 KiB at the end unused for a lap); else it is
 * dropped and counted (the ring's DROPS word: rxRingFull). Nothing is allocated per packet and the
 * thread never waits for room: it goes on reading whatever the main thread does, so what queues up
 * is bounded by the ring (and, when this thread is the slower one, by the TUN's own queue).
 */
const READER_THREAD = `
const { readSync } = require('node:fs');
const { parentPort, workerData } = require('node:worker_threads');
${RING_JS}
const ring = new ShmRing(workerData.ctl, workerData.data);
const fd = workerData.fd;
const MAX = ${MAX_RING_PACKET};
const scratch = Buffer.allocUnsafe(MAX);
const stop = new Int32Array(workerData.stop);
while (Atomics.load(stop, 0) === 0) {
  const direct = ring.reserve(MAX, false);
  let n;
  try {
    n = direct ? readSync(fd, ring.data, ring.at, MAX, null) : readSync(fd, scratch, 0, MAX, null);
  } catch (e) {
    if (e.code === 'EAGAIN' || e.code === 'EINTR' || e.code === 'EWOULDBLOCK') continue;
    if (e.code !== 'EBADF') parentPort.postMessage({ error: e.message, code: e.code });
    break;
  }
  // A read larger than asked for (a packet over the MTU the config allows) would run past the record.
  if (n <= 0 || n > MAX || Atomics.load(stop, 0) !== 0) continue;
  if (!direct) {
    if (!ring.reserve(n)) {
      ring.countDrop();
      continue;
    }
    scratch.copy(ring.data, ring.at, 0, n);
  }
  ring.commit(n);
  ring.wakeConsumer();
}
`;
const WAKE_BYTE = new Uint8Array(1);
/** The virtio_net_hdr of a packet written as it is: no GSO, checksum complete. */
const NO_OFFLOAD = new Uint8Array(VNET_HDR_LEN);
const openDevices = new Set<TunDevice>();
let exitHookInstalled = false;

export class TunDevice {
  /**
   * Plain numbers, except txPackets and txErrors (accessors that add in the writer thread's failed
   * writes) and rxRingFull (an accessor reading the reader thread's drop word), so a read is always
   * current and `{ ...counters }` copies the values.
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
  /**
   * Thread mode with `vnetHdr`: what write() puts into `ring` through (gro.ts); kept after close()
   * for counters.
   */
  private gro: TcpCoalescer | undefined;
  /** Octets before each packet read or written: the virtio_net_hdr, or none. */
  private readonly hdr: number;
  /** Thread mode: the same ring, kept after close() for its error word (counters). */
  private errorRing: ShmRing | undefined;
  /** Thread mode: this thread's end of the reader ring (see READER_THREAD and drainRx). */
  private rxRing: ShmRingReader | undefined;
  private writerExited: Promise<void> = Promise.resolve();
  private closed = false;
  private reading = false;
  private resolveStopped!: () => void;

  private constructor(
    readonly name: string,
    readonly fd: number,
    private readonly wakeFd: number | undefined,
    /** The fd was opened with IFF_VNET_HDR: a virtio_net_hdr before each packet, merged writes. */
    readonly vnetHdr: boolean,
  ) {
    this.hdr = vnetHdr ? VNET_HDR_LEN : 0;
    this.stopped = new Promise((resolve) => (this.resolveStopped = resolve));
    const writerErrors = (): number => this.errorRing?.consumerErrors ?? 0;
    const rxDrops = (): number => this.rxRing?.producerDrops ?? 0;
    let rxDropsBase = 0;
    const counters = { rxPackets: 0, rxBytes: 0, rxOffloaded: 0, txBytes: 0, txBatches: 0, txRingFull: 0 };
    this.counters = Object.defineProperties(counters as TunCounters, {
      rxRingFull: {
        enumerable: true,
        get: () => rxDrops() - rxDropsBase,
        set: (v: number) => (rxDropsBase = rxDrops() - v),
      },
      txCoalesced: { enumerable: true, get: () => this.gro?.counters.merged ?? 0 },
      txBadChecksum: { enumerable: true, get: () => this.gro?.counters.badChecksum ?? 0 },
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
  static fromFd(
    name: string,
    fd: number,
    opts: { wakeFd?: number | undefined; vnetHdr?: boolean } = {},
  ): TunDevice {
    for (const n of [fd, opts.wakeFd]) {
      if (n !== undefined && (!Number.isInteger(n) || n < 0)) {
        throw new RangeError(`bad fd ${n} for TUN device ${name}`);
      }
    }
    return new TunDevice(name, fd, opts.wakeFd, opts.vnetHdr ?? false);
  }

  /** Device `name` as reexecWithTun's re-executed process holds it: its fd, waker and header mode. */
  static fromReexec(
    name: string,
    r: { fds: Map<string, number>; wakeFds: Map<string, number>; vnetHdr: Set<string> },
  ): TunDevice {
    const fd = r.fds.get(name);
    if (fd === undefined) throw new RangeError(`no descriptor for TUN device ${name}`);
    return TunDevice.fromFd(name, fd, { wakeFd: r.wakeFds.get(name), vnetHdr: r.vnetHdr.has(name) });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Starts the read loop. `onPacket` gets each packet as a view that is valid only during the call:
   * in thread mode its octets are in the reader ring and are overwritten by later reads once the
   * call returns (pool mode: the read buffer, reused for the next read). A caller that needs the
   * packet afterwards copies it (`pkt.slice()`); the view may be changed in place during the call.
   * Read errors other than EAGAIN/EINTR end the loop and go to `onError` (EBADF after close() is not
   * reported). An exception thrown by `onPacket` goes to `onError` and the loop continues.
   *
   * `writeRingBytes` (thread mode): the size of the ring between write() and the writer thread
   * (default TUN_WRITE_RING_DEFAULT_BYTES); a full ring drops packets (txRingFull). Records do not
   * wrap, so it must hold two of the largest packets: one under 131,088 octets or over 1 GiB throws
   * a RangeError. `readRingBytes` (thread mode): the size of the ring between the reader thread and
   * this thread (default TUN_READ_RING_DEFAULT_BYTES), the same bounds; when this thread is behind
   * and it is full, the reader thread drops what it reads (rxRingFull).
   */
  start(
    onPacket: (pkt: Uint8Array) => void,
    onError?: (err: Error) => void,
    opts: {
      readonly mode?: 'thread' | 'pool';
      readonly writeRingBytes?: number;
      readonly readRingBytes?: number;
    } = {},
  ): void {
    if (this.started) throw new Error(`TUN device ${this.name} already started`);
    if (this.closed) throw new Error(`TUN device ${this.name} is closed`);
    const thread = (opts.mode ?? 'thread') === 'thread';
    const writeBytes = opts.writeRingBytes ?? TUN_WRITE_RING_DEFAULT_BYTES;
    const readBytes = opts.readRingBytes ?? TUN_READ_RING_DEFAULT_BYTES;
    for (const [what, bytes] of [
      ['write', writeBytes],
      ['read', readBytes],
    ] as const) {
      if (thread && !(bytes >= MIN_DEVICE_RING_BYTES)) {
        throw new RangeError(
          `TUN ${what} ring of ${bytes} octets: must be at least ${MIN_DEVICE_RING_BYTES}`,
        );
      }
    }
    const rings = thread ? [new ShmRing(writeBytes), new ShmRing(readBytes)] : undefined;
    this.started = true;
    this.onPacket = onPacket;
    this.onError = onError;
    if (rings) this.startReaderThread(rings[0]!, rings[1]!);
    else this.readNext();
  }

  private startWriterThread(ring: ShmRing): void {
    const writer = new Worker(WRITER_THREAD, {
      eval: true,
      workerData: { fd: this.fd, ctl: ring.ctlBuffer, data: ring.dataBuffer, vnetHdr: this.vnetHdr },
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
    if (this.vnetHdr) this.gro = new TcpCoalescer(ring);
  }

  private startReaderThread(writeRing: ShmRing, readRing: ShmRing): void {
    this.startWriterThread(writeRing);
    this.reading = true;
    const stop = new SharedArrayBuffer(4);
    this.stopFlag = new Int32Array(stop);
    this.rxRing = new ShmRingReader(readRing.ctlBuffer, readRing.dataBuffer);
    const worker = new Worker(READER_THREAD, {
      eval: true,
      workerData: { fd: this.fd, stop, ctl: readRing.ctlBuffer, data: readRing.dataBuffer },
    });
    worker.on('message', (m: { error: string; code?: string }) => {
      if (this.closed) return;
      this.close();
      this.onError?.(new Error(`read from TUN device ${this.name} failed: ${m.error}`));
    });
    this.drainRx();
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
   * Thread mode: hands what the reader ring holds to `onPacket`, at most RX_BATCH packets per turn
   * (then setImmediate, so other I/O gets its turn). On an empty ring it announces that it waits
   * and waits with Atomics.waitAsync (this thread never blocks): the reader thread's next commit
   * finds the announcement and notifies, which resolves the wait and runs this again. A busy ring
   * costs no wake-up at all. (A postMessage from the reader per wake-up was measured against this:
   * see docs/performance.md, "After: TUN reader ring".)
   */
  private readonly drainRx = (): void => {
    const ring = this.rxRing;
    if (ring === undefined) return;
    for (let k = 0; !this.closed;) {
      if (!ring.take()) {
        const woken = ring.sleepAsync();
        if (woken !== undefined) {
          void woken.then(this.drainRx);
          return;
        }
        continue; // a packet arrived between take() and the announcement
      }
      if (k++ === RX_BATCH) {
        setImmediate(this.drainRx);
        return;
      }
      // Each record is what one read returned: the virtio_net_hdr (vnetHdr), then the packet.
      const at = ring.at + this.hdr;
      const n = ring.length - this.hdr;
      if (n > 0 && this.readable(ring.data, ring.at)) {
        this.counters.rxPackets++;
        this.counters.rxBytes += n;
        try {
          this.onPacket?.(ring.data.subarray(at, at + n));
        } catch (e) {
          this.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      }
      ring.release();
    }
  };

  /**
   * Whether a read whose virtio_net_hdr is at `d[at]` holds a whole packet with its checksums. We
   * never enable offloads (TUNSETOFFLOAD 0), so the kernel segments and checksums what it sends us;
   * a GSO packet or one with a checksum still to complete is dropped and counted (rxOffloaded).
   */
  private readable(d: Uint8Array, at: number): boolean {
    if (!this.vnetHdr || ((d[at]! & 1) === 0 && d[at + 1] === 0)) return true;
    this.counters.rxOffloaded++;
    return false;
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
    if (pkt.byteLength > TUN_MAX_PACKET) {
      this.txLocalErrors++; // with its header, larger than any TUN write (EINVAL from the kernel)
      return false;
    }
    const ring = this.ring;
    const gro = this.gro;
    if (ring) {
      const n = pkt.byteLength;
      if (!(gro ? gro.write(pkt) : ring.push(pkt))) {
        this.counters.txRingFull++;
        return false;
      }
      this.txAccepted++;
      this.counters.txBytes += n;
      // The turn's packets are published (a coalesced record, gro.ts) and a sleeping writer is woken
      // once per event-loop turn, not per packet: a stream read or a poll phase's datagrams carry
      // many, and a futex wake per packet was 7-16% of a gateway (issue #14). Woken at once past
      // WAKE_AT_OCTETS (~45 packets of 1400), so a long turn neither holds packets back nor fills
      // the ring.
      if (!this.wakeScheduled) {
        if (gro?.open || ring.consumerAsleep) {
          this.wakeScheduled = true;
          setImmediate(this.wakeWriterLater);
        }
      } else if (ring.usedOctets > WAKE_AT_OCTETS) this.wakeWriter();
      return true;
    }
    try {
      const n = this.vnetHdr
        ? writevSync(this.fd, [NO_OFFLOAD, pkt]) - VNET_HDR_LEN
        : writeSync(this.fd, pkt);
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

  /** Thread mode: a wake-up of the writer thread is due at the end of this turn. */
  private wakeScheduled = false;
  private readonly wakeWriterLater = (): void => {
    this.wakeScheduled = false;
    this.gro?.flush();
    this.wakeWriter();
  };

  private wakeWriter(): void {
    if (this.ring?.wakeConsumer()) this.counters.txBatches++;
  }

  /** Stops the loop and closes the fd. Idempotent. See the module comment for a blocked read. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    openDevices.delete(this);
    if (this.stopFlag) {
      // Thread mode: stop both threads (the writer drains the ring first), wake the reader; the
      // fds are closed when both have exited.
      this.gro?.flush();
      this.ring?.close();
      this.ring = undefined;
      this.rxRing?.wake(); // ends a pending waitAsync (drainRx then sees the device closed)
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
      if (n > this.hdr && this.readable(this.buf, 0)) {
        this.counters.rxPackets++;
        this.counters.rxBytes += n - this.hdr;
        try {
          this.onPacket?.(this.buf.subarray(this.hdr, n));
        } catch (e) {
          this.onError?.(e instanceof Error ? e : new Error(String(e)));
        }
      }
      this.readNext();
    });
  }
}
