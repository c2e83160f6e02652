/**
 * IketcpStream: one RFC 9329 stream (TCP encapsulation of IKE and ESP) over a node Duplex: a
 * net.Socket, a tls.TLSSocket (RFC 9329 §8) or an in-memory duplex from ./testing. The edge (the
 * responder) and `ikegate connect`, loadgen and tcp-shim (originators) all carry their streams
 * through this one implementation.
 *
 * How this works. The originator writes the 6-octet prefix "IKETCP" first (RFC 9329 §4) and starts
 * `open`; the responder starts in `prefix` and waits for it. Every chunk read goes through one
 * IketcpDecoder (libs/iketcp: framing, Length limits, garbage runs, keepalives), whose events reach
 * the owner's `onEvent`. Output is framed here (Length | Non-ESP Marker | IKE message, or
 * Length | ESP packet) and written to the duplex; two caps bound what may wait there for a peer
 * that does not read. Every path to the end goes through one close decision, made once, which the
 * owner hears as exactly one `close` event with one reason:
 *
 *   state        input                                       next    action; close {reason, origin}
 *   prefix       the 6 octets "IKETCP" arrived               open    clear the prefix timer
 *   prefix       prefixTimeoutMs passed first                closed  destroy; {prefix_timeout, local}
 *   prefix|open  decoder close: bad_prefix, bad_length,      closed  destroy; {that reason, protocol}
 *                frame_too_large, garbage
 *   prefix|open  idleTimeoutMs without a whole IKE message   closed  destroy; {idle, local}
 *                or ESP packet either way (partial frames and
 *                keepalives do not count)
 *   prefix|open  sendIke past maxIkeBuffer queued octets     closed  destroy; {ike_output_overflow, local}
 *   prefix|open  close(reason)                               closed  destroy; {reason, local}
 *   prefix|open  sendIke(m, { closeAfter: reason })          closed  write m, FIN; {reason, local}
 *   prefix|open  FIN from the peer                           closed  FIN; {peer_closed, peer}
 *   prefix|open  reset / error / close of the transport      closed  {reset | error | peer_closed, peer}
 *   closed       anything                                    closed  input read and discarded; sends: 'closed'
 *
 * On the peer's rows a partial frame (or prefix) still held is discarded and reported first as a
 * drop `truncated` (PROTOCOL.md: a partial message on a broken connection is discarded). After a
 * FIN of ours the duplex is destroyed when the peer closes its side too, or after `lingerMs`.
 * ESP output is gathered per event-loop turn (issue #14: one socket write per ESP frame was a
 * quarter of the client's CPU): sendEsp() frames the packet into a shared output chunk and the
 * frames of one turn go to the duplex as one write on the check phase after it (setImmediate, so
 * the packets of every I/O callback of that poll phase — e.g. one TUN packet per worker message —
 * share it), or as one corked writev when other streams' frames interleaved in the chunk. sendIke()
 * and a FIN of ours write the gathered ESP first, so the order on the wire is the order of calls.
 * Output caps: ESP that would take the queued octets (the duplex's plus those gathered) past
 * `maxEspBuffer` is not written ('congested': the peer is slow, a packet is lost); IKE output still queued is counted on its own
 * and past `maxIkeBuffer` the stream is closed (`ike_output_overflow`): a peer that keeps asking
 * and never reads must not grow our memory, and IKE over TCP is never silently dropped (no
 * retransmissions over TCP, RFC 9329 §6), so closing is the honest answer.
 *
 * Nothing the peer sends makes this class throw. Memory per stream is bounded by the decoder's
 * one-frame tail, `maxEspBuffer` and `maxIkeBuffer`.
 */
import type { Duplex } from 'node:stream';
import {
  type CloseReason as DecoderCloseReason,
  type DecoderCounters,
  type DropReason,
  encodeEspFrameInto,
  encodeIkeFrame,
  espFrameLength,
  ikeFrameLength,
  IketcpDecoder,
  IKETCP_PREFIX,
} from '@ikegate/iketcp';
import { LocalUsageError } from './errors.js';

/** RFC 9329 §4: the originator opens the connection and sends the prefix; the responder expects it. */
export type IketcpRole = 'originator' | 'responder';

export type IketcpStreamState = 'prefix' | 'open' | 'closed';

/**
 * Who decided the close: the `peer` (FIN, reset, transport error), the decoder on a `protocol`
 * violation of RFC 9329 framing, or this side (`local`: a timer, an output cap, the owner).
 */
export type IketcpCloseOrigin = 'peer' | 'protocol' | 'local';

/** The reasons this class decides itself; owners add their own through close() and closeAfter. */
export type IketcpCloseReason =
  'peer_closed' | 'reset' | 'error' | 'idle' | 'prefix_timeout' | 'ike_output_overflow' | DecoderCloseReason;

export type IketcpStreamDropReason = DropReason | 'truncated';

/**
 * What the owner hears. Ownership: `message` and `packet` are views into the chunk just read or
 * into the decoder's reusable tail buffer; they are valid only during the onEvent call. Copy what
 * you keep (queue, hand to an async path).
 */
export type IketcpStreamEvent =
  /** An IKE message, from its IKE header on (the Non-ESP Marker removed). */
  | { readonly kind: 'ike'; readonly message: Uint8Array }
  /** An ESP packet from its SPI on; `spi` is that SPI (never zero). */
  | { readonly kind: 'esp'; readonly packet: Uint8Array; readonly spi: number }
  /**
   * A NAT-keepalive frame (one 0xFF octet). It has no place on a stream (RFC 9329 §3): it was
   * dropped, the stream is kept, and it is never IKE liveness.
   */
  | { readonly kind: 'keepalive' }
  /**
   * A malformed frame skipped (stream kept), or `truncated`: the octets of an incomplete frame or
   * prefix discarded because the peer ended the stream. `octets`: the frame's Length field, or the
   * octets discarded.
   */
  | { readonly kind: 'drop'; readonly reason: IketcpStreamDropReason; readonly octets: number }
  /**
   * The stream is over: nothing else follows, sends return 'closed'. Exactly one per stream,
   * delivered on the tick after the decision (never from inside a call of the owner's).
   */
  | { readonly kind: 'close'; readonly reason: string; readonly origin: IketcpCloseOrigin };

/** 'congested': ESP not written (past maxEspBuffer). 'closed': the stream is over, nothing written. */
export type IketcpSendResult = 'sent' | 'congested' | 'closed';

export interface IketcpStreamOptions {
  readonly role: IketcpRole;
  /** Every event (see IketcpStreamEvent for how long its views live). Must not throw. */
  readonly onEvent: (event: IketcpStreamEvent) => void;
  /** Octets read from the peer, per chunk, before decoding (byte counters). */
  readonly onOctetsIn?: (octets: number) => void;
  /** Responder: close `prefix_timeout` when the prefix is not complete by then. Default 10 s; 0: never. */
  readonly prefixTimeoutMs?: number;
  /** Close `idle` after this long without an octet in either direction. Default 0: never. */
  readonly idleTimeoutMs?: number;
  /** Queued output octets past which ESP is not written ('congested'). Default 1 MiB. */
  readonly maxEspBuffer?: number;
  /** Queued IKE output octets past which the stream closes `ike_output_overflow`. Default 256 KiB. */
  readonly maxIkeBuffer?: number;
  /** After a FIN of ours, destroy the duplex if the peer has not closed its side by then. Default 2 s. */
  readonly lingerMs?: number;
  /** Passed to the decoder (libs/iketcp). */
  readonly maxFrameLength?: number;
  /** Passed to the decoder (libs/iketcp). */
  readonly maxGarbageFrames?: number;
}

export const IKETCP_STREAM_DEFAULTS = {
  prefixTimeoutMs: 10_000,
  idleTimeoutMs: 0,
  maxEspBuffer: 1 << 20,
  maxIkeBuffer: 256 * 1024,
  lingerMs: 2_000,
} as const;

/**
 * ESP frames are encoded into slices of one chunk shared by every stream of the process: octets
 * handed out are never written again (a write keeps its buffer until the duplex has flushed it),
 * so a new chunk is taken when the current one is full and the old one lives as long as a write
 * still holds a slice of it. A stream's frames of one turn are contiguous in the chunk unless
 * another stream's frames came between them; then they go out as several slices in one writev.
 * Memory: a slice handed to a duplex that keeps it (the kernel took only part of it) keeps its
 * whole chunk alive; so a stream whose duplex is already backed up gets its turn's frames copied
 * into a buffer of their own instead (one copy per turn). Hence at most one chunk per stream is
 * held beyond what the duplexes hold (bounded by maxEspBuffer each), and one chunk per process.
 */
const ESP_CHUNK_SIZE = 64 * 1024;
let espChunk = Buffer.allocUnsafe(ESP_CHUNK_SIZE);
let espChunkUsed = 0;

/** How a close decision treats the duplex. */
type Teardown = 'destroy' | 'fin' | 'none';

function checkNonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) {
    throw new LocalUsageError('IKEGATE_ERR_TRANSPORT_BAD_OPTION', `${name} must be >= 0, got ${value}`);
  }
  return value;
}

export class IketcpStream {
  readonly role: IketcpRole;
  readonly #duplex: Duplex;
  readonly #decoder: IketcpDecoder;
  readonly #onEvent: (event: IketcpStreamEvent) => void;
  readonly #onOctetsIn: ((octets: number) => void) | undefined;
  readonly #maxEspBuffer: number;
  readonly #maxIkeBuffer: number;
  readonly #lingerMs: number;
  #state: IketcpStreamState;
  #closeReason: string | undefined;
  #prefixTimer: NodeJS.Timeout | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #lingerTimer: NodeJS.Timeout | undefined;
  /** IKE octets handed to the duplex and not yet flushed by it; sizes in write order. */
  #ikeQueued = 0;
  readonly #ikeSizes: number[] = [];
  /** ESP octets gathered this turn and not yet handed to the duplex (see ESP_CHUNK_SIZE). */
  #espGathered = 0;
  /** The gathered run still growing: espChunk[#runStart, #runEnd) when #runChunk is espChunk. */
  #runChunk: Buffer | undefined;
  #runStart = 0;
  #runEnd = 0;
  /** Earlier runs of this turn (another stream's frames came between), oldest first. */
  readonly #runs: Buffer[] = [];
  #flushScheduled: NodeJS.Immediate | undefined;

  /**
   * Takes over `duplex`: listens for data, end, error and close on it from now on. The originator
   * writes the prefix at once. If the duplex is already destroyed the stream closes (peer_closed).
   * @throws LocalUsageError for options out of range (the decoder's own: from @ikegate/iketcp).
   */
  constructor(duplex: Duplex, options: IketcpStreamOptions) {
    const d = IKETCP_STREAM_DEFAULTS;
    const prefixTimeoutMs = checkNonNegative('prefixTimeoutMs', options.prefixTimeoutMs ?? d.prefixTimeoutMs);
    const idleTimeoutMs = checkNonNegative('idleTimeoutMs', options.idleTimeoutMs ?? d.idleTimeoutMs);
    this.#maxEspBuffer = checkNonNegative('maxEspBuffer', options.maxEspBuffer ?? d.maxEspBuffer);
    this.#maxIkeBuffer = checkNonNegative('maxIkeBuffer', options.maxIkeBuffer ?? d.maxIkeBuffer);
    this.#lingerMs = checkNonNegative('lingerMs', options.lingerMs ?? d.lingerMs);
    this.role = options.role;
    this.#duplex = duplex;
    this.#onEvent = options.onEvent;
    this.#onOctetsIn = options.onOctetsIn;
    this.#decoder = new IketcpDecoder({
      expectPrefix: options.role === 'responder',
      ...(options.maxFrameLength !== undefined ? { maxFrameLength: options.maxFrameLength } : {}),
      ...(options.maxGarbageFrames !== undefined ? { maxGarbageFrames: options.maxGarbageFrames } : {}),
    });
    this.#state = options.role === 'responder' ? 'prefix' : 'open';
    duplex.on('data', this.#onData);
    duplex.on('end', this.#onEnd);
    duplex.on('error', this.#onError);
    duplex.on('close', this.#onClose);
    if (duplex.destroyed) {
      this.#decide('peer_closed', 'peer', 'none');
      return;
    }
    // RFC 9329 §4: the prefix goes first, once per connection, from the originator only.
    if (options.role === 'originator') duplex.write(IKETCP_PREFIX);
    if (options.role === 'responder' && prefixTimeoutMs > 0) {
      // A peer that never completes the prefix holds no resources for long (RFC 9329 §3).
      this.#prefixTimer = setTimeout(
        () => this.#decide('prefix_timeout', 'local', 'destroy'),
        prefixTimeoutMs,
      );
      this.#prefixTimer.unref();
    }
    if (idleTimeoutMs > 0) {
      this.#idleTimer = setTimeout(() => this.#decide('idle', 'local', 'destroy'), idleTimeoutMs);
      this.#idleTimer.unref();
    }
  }

  get state(): IketcpStreamState {
    return this.#state;
  }

  /** The reason of the close decision, once made. */
  get closeReason(): string | undefined {
    return this.#closeReason;
  }

  /** Octets written and not yet flushed by the duplex (IKE, ESP and the prefix), ESP gathered included. */
  get queuedOctets(): number {
    return this.#duplex.writableLength + this.#espGathered;
  }

  /** IKE octets written and not yet flushed: what `maxIkeBuffer` bounds. */
  get queuedIkeOctets(): number {
    return this.#ikeQueued;
  }

  /** The decoder's counters: octets, IKE and ESP frames, drops and keepalives read. */
  get counters(): Readonly<DecoderCounters> {
    return this.#decoder.counters;
  }

  /**
   * Frames `message` (an IKE message from its header on) and writes it. The stream keeps no
   * reference to `message` after the call. With `closeAfter`, the stream then sends FIN and closes
   * with that reason (RFC 9329 §6.3: a responder closes the connection after a COOKIE request).
   * Past `maxIkeBuffer` queued IKE octets the stream closes `ike_output_overflow` instead.
   * @throws LocalUsageError (@ikegate/iketcp) if the message cannot fit a 16-bit frame.
   */
  sendIke(message: Uint8Array, options?: { readonly closeAfter?: string }): IketcpSendResult {
    if (this.#state === 'closed' || this.#duplex.destroyed) return 'closed';
    const frame = encodeIkeFrame(message);
    const length = ikeFrameLength(message.length);
    if (this.#ikeQueued + length > this.#maxIkeBuffer) {
      this.#decide('ike_output_overflow', 'local', 'destroy');
      return 'closed';
    }
    this.#ikeQueued += length;
    this.#ikeSizes.push(length);
    this.#flushEsp(); // the ESP gathered before this message goes before it
    this.#duplex.write(frame, this.#ikeFlushed);
    this.#idleTimer?.refresh();
    if (options?.closeAfter !== undefined) this.#decide(options.closeAfter, 'local', 'fin');
    return 'sent';
  }

  /**
   * Whether `sendEsp` of an ESP packet of `espLength` octets would be refused as 'congested' now:
   * asked before a packet is encrypted, so that a backed-up stream costs no encryption (issue #14:
   * under overload the gateway encrypted every packet, then dropped most of them here).
   */
  espCongested(espLength: number): boolean {
    // A closed stream is not congested: sendEsp then says 'closed' (counted as no connection).
    if (this.#state === 'closed' || this.#duplex.destroyed) return false;
    return this.#duplex.writableLength + this.#espGathered + espFrameLength(espLength) > this.#maxEspBuffer;
  }

  /**
   * Frames `packet` (an ESP packet from its SPI on) for the write at the end of this turn, unless
   * the queued output (see queuedOctets) would pass `maxEspBuffer` ('congested', nothing written).
   * The packet is copied before the call returns: no reference to `packet` is kept, the caller may
   * reuse its buffer at once. A stream destroyed before the end of the turn discards what it
   * gathered, as a socket discards what it had not sent.
   * @throws LocalUsageError (@ikegate/iketcp) for a packet with SPI 0, shorter than SPI|SN, or too large.
   */
  sendEsp(packet: Uint8Array): IketcpSendResult {
    if (this.#state === 'closed' || this.#duplex.destroyed) return 'closed';
    const length = espFrameLength(packet.length);
    if (this.espCongested(packet.length)) return 'congested';
    if (espChunkUsed + length > espChunk.length) {
      espChunk = Buffer.allocUnsafe(Math.max(ESP_CHUNK_SIZE, length));
      espChunkUsed = 0;
    }
    const at = espChunkUsed;
    encodeEspFrameInto(packet, espChunk, at); // checks the packet before writing an octet
    espChunkUsed = at + length;
    if (this.#runChunk === espChunk && this.#runEnd === at) {
      this.#runEnd = at + length;
    } else {
      if (this.#runChunk !== undefined)
        this.#runs.push(this.#runChunk.subarray(this.#runStart, this.#runEnd));
      this.#runChunk = espChunk;
      this.#runStart = at;
      this.#runEnd = at + length;
    }
    this.#espGathered += length;
    this.#flushScheduled ??= setImmediate(this.#flushEsp);
    this.#idleTimer?.refresh();
    return 'sent';
  }

  /** Destroys the stream now with `reason` (unless it is already closed: the first reason stays). */
  close(reason: string): void {
    this.#decide(reason, 'local', 'destroy');
  }

  // --- input -----------------------------------------------------------------------------------

  readonly #onData = (chunk: Buffer): void => {
    if (this.#state === 'closed') return; // read and discarded (after a FIN of ours)
    this.#onOctetsIn?.(chunk.length);
    // Not the idle timer: octets that complete no frame (a frame trickled in one octet at a time,
    // a prefix never finished) must not hold a stream and its slot for ever.
    this.#decoder.push(chunk);
    this.#drain();
  };

  /** Hands every pending decoder event on; stops as soon as the stream is closed (by us or the owner). */
  #drain(): void {
    const decoder = this.#decoder;
    for (let e = decoder.poll(); e !== undefined; e = decoder.poll()) {
      switch (e.kind) {
        case 'prefix':
          clearTimeout(this.#prefixTimer);
          this.#state = 'open';
          break;
        case 'ike':
        case 'esp':
          // A whole IKE message or ESP packet: the stream is in use. Keepalives are not (RFC 9329
          // §3: never sent on TCP; a peer could hold a stream open with them and nothing else).
          this.#idleTimer?.refresh();
          this.#onEvent(e);
          break;
        case 'keepalive':
          // The decoder's event has the shape of ours: handed on as is, no allocation per frame.
          this.#onEvent(e);
          break;
        case 'drop':
          this.#onEvent({ kind: 'drop', reason: e.reason, octets: e.length });
          break;
        case 'close':
          this.#decide(e.reason, 'protocol', 'destroy');
          return;
        case 'end':
          if (e.discarded > 0) this.#onEvent({ kind: 'drop', reason: 'truncated', octets: e.discarded });
          break;
      }
      if (this.#state === 'closed') return;
    }
  }

  readonly #onEnd = (): void => {
    if (this.#peerGone('peer_closed')) this.#teardown('fin');
  };

  readonly #onError = (err: NodeJS.ErrnoException): void => {
    this.#peerGone(err.code === 'ECONNRESET' ? 'reset' : 'error');
  };

  readonly #onClose = (): void => {
    clearTimeout(this.#lingerTimer);
    this.#peerGone('peer_closed');
  };

  /** The transport ended under us: discard a partial frame (reported), then decide. */
  #peerGone(reason: IketcpCloseReason): boolean {
    if (this.#state === 'closed') return false;
    if (this.#decoder.state !== 'closed') {
      this.#decoder.end();
      this.#drain();
    }
    return this.#decide(reason, 'peer', 'none');
  }

  // --- output ----------------------------------------------------------------------------------

  /**
   * Hands the ESP gathered this turn to the duplex: one write (of a slice, or of a copy when the
   * duplex is backed up), or one corked writev of several slices. Called on the turn's check
   * phase, before an IKE frame and before a FIN of ours.
   */
  readonly #flushEsp = (): void => {
    if (this.#flushScheduled !== undefined) {
      clearImmediate(this.#flushScheduled);
      this.#flushScheduled = undefined;
    }
    const chunk = this.#runChunk;
    if (chunk === undefined) return;
    const last = chunk.subarray(this.#runStart, this.#runEnd);
    const total = this.#espGathered;
    this.#runChunk = undefined;
    this.#espGathered = 0;
    const duplex = this.#duplex;
    if (duplex.destroyed || duplex.writableEnded) {
      this.#runs.length = 0;
      return;
    }
    if (duplex.writableLength > 0) {
      // Backed up: this write will wait in the duplex; a slice would pin a shared chunk meanwhile.
      const own = Buffer.allocUnsafeSlow(total);
      let at = 0;
      for (const run of this.#runs) {
        own.set(run, at);
        at += run.length;
      }
      own.set(last, at);
      this.#runs.length = 0;
      duplex.write(own);
      return;
    }
    if (this.#runs.length === 0) {
      duplex.write(last);
      return;
    }
    duplex.cork();
    for (const run of this.#runs) duplex.write(run);
    duplex.write(last);
    this.#runs.length = 0;
    duplex.uncork();
  };

  /** Write callbacks come in write order: each one retires the oldest IKE frame still queued. */
  readonly #ikeFlushed = (): void => {
    this.#ikeQueued -= this.#ikeSizes.shift() ?? 0;
  };

  // --- the close decision ----------------------------------------------------------------------

  /** Made once; later calls are ignored. Returns whether this call made it. */
  #decide(reason: string, origin: IketcpCloseOrigin, teardown: Teardown): boolean {
    if (this.#state === 'closed') return false;
    this.#state = 'closed';
    this.#closeReason = reason;
    clearTimeout(this.#prefixTimer);
    clearTimeout(this.#idleTimer);
    this.#teardown(teardown);
    process.nextTick(() => this.#onEvent({ kind: 'close', reason, origin }));
    return true;
  }

  #teardown(teardown: Teardown): void {
    const duplex = this.#duplex;
    if (teardown === 'destroy') {
      duplex.destroy();
      this.#flushEsp(); // discards what was gathered (the duplex is destroyed)
    } else if (teardown === 'fin' && !duplex.destroyed) {
      this.#flushEsp(); // what was sent before the FIN goes before it
      duplex.end();
      clearTimeout(this.#lingerTimer);
      this.#lingerTimer = setTimeout(() => duplex.destroy(), this.#lingerMs);
      this.#lingerTimer.unref();
    }
  }
}
