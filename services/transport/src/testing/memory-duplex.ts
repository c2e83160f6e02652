/**
 * A connected pair of in-memory Duplex ends: a TCP connection without the kernel, for unit tests.
 *
 * - What one end writes, the other reads, in order, in the chunks written.
 * - Backpressure is real: a write completes only when the other end's readable buffer has room,
 *   i.e. when the other end reads. An end whose peer stops reading sees its `writableLength` grow,
 *   as with a full socket buffer.
 * - `writeCalls` counts the calls the Writable machinery makes into this end (_write, or _writev
 *   for what was corked): the system calls a socket would make, for tests of write batching.
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

  /** _write and _writev calls so far (one per system call, on a socket). */
  writeCalls = 0;

  override _writev(chunks: { chunk: Buffer }[], callback: WriteCallback): void {
    this.writeCalls++;
    this.#deliver(chunks, callback);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: WriteCallback): void {
    this.writeCalls++;
    this.#deliver([{ chunk }], callback);
  }

  #deliver(chunks: readonly { chunk: Buffer }[], callback: WriteCallback): void {
    const peer = this.#peer;
    if (!peer || peer.destroyed || peer.#eofPushed) {
      callback(errno('EPIPE'));
      return;
    }
    let room = true;
    for (const c of chunks) room = peer.push(c.chunk);
    if (room) callback();
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
