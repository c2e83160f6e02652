/**
 * A connected pair of in-memory Duplex ends: a TCP connection without the kernel, for unit tests.
 *
 * - What one end writes, the other reads, in order, in the chunks written.
 * - Backpressure is real: a write completes only when the other end's readable buffer has room,
 *   i.e. when the other end reads. An end whose peer stops reading sees its `writableLength` grow,
 *   as with a full socket buffer.
 * - end() is a FIN: the other end reads EOF ('end') after the data before it.
 * - destroy() without an error is a close(2): the other end reads EOF. destroy(error) is a reset:
 *   the other end is destroyed with an ECONNRESET error. Writing to an end whose peer is gone
 *   fails with EPIPE, as a socket's does.
 */
import { Duplex } from 'node:stream';

type WriteCallback = (error?: Error | null) => void;

function errno(code: 'ECONNRESET' | 'EPIPE'): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(code === 'ECONNRESET' ? 'read ECONNRESET' : 'write EPIPE');
  e.code = code;
  return e;
}

export class MemoryDuplex extends Duplex {
  #peer: MemoryDuplex | undefined;
  /** A write of the peer's waiting for this end to read (backpressure). */
  #blockedWriter: WriteCallback | undefined;
  #eofPushed = false;

  /** Two connected ends; `highWaterMark` is each end's readable buffer size (a socket buffer). */
  static pair(highWaterMark = 16 * 1024): [MemoryDuplex, MemoryDuplex] {
    const a = new MemoryDuplex({ readableHighWaterMark: highWaterMark, allowHalfOpen: true });
    const b = new MemoryDuplex({ readableHighWaterMark: highWaterMark, allowHalfOpen: true });
    a.#peer = b;
    b.#peer = a;
    return [a, b];
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    const peer = this.#peer;
    if (!peer || peer.destroyed || peer.#eofPushed) {
      callback(errno('EPIPE'));
      return;
    }
    if (peer.push(chunk)) callback();
    else peer.#blockedWriter = callback;
  }

  override _read(): void {
    const writer = this.#blockedWriter;
    this.#blockedWriter = undefined;
    writer?.();
  }

  override _final(callback: WriteCallback): void {
    const peer = this.#peer;
    if (peer) peer.#pushEof();
    callback();
  }

  override _destroy(error: Error | null, callback: WriteCallback): void {
    const peer = this.#peer;
    // A write of the peer's blocked on us completes: what it wrote is lost, as with a closed socket.
    const writer = this.#blockedWriter;
    this.#blockedWriter = undefined;
    writer?.();
    if (peer && !peer.destroyed) {
      if (error) peer.destroy(errno('ECONNRESET'));
      else peer.#pushEof();
    }
    callback(error);
  }

  #pushEof(): void {
    if (this.#eofPushed || this.destroyed) return;
    this.#eofPushed = true;
    this.push(null);
  }
}
