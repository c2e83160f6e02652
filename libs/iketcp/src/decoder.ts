/**
 * RFC 9329 stream decoder, sans-IO.
 *
 * How this works: the caller pushes each chunk read from the TCP (or TLS) stream and then polls
 * events until poll() returns undefined. The decoder walks four states:
 *
 *   prefix  -> waiting for the 6-octet "IKETCP" prefix (only when `expectPrefix`; the responder
 *              side of a connection, §4). Octets are compared as they arrive, so a wrong prefix
 *              is rejected at its first wrong octet, however slowly it trickles in.
 *   length  -> waiting for the 2-octet Length field (it may be split across chunks).
 *   body    -> waiting for Length - 2 octets. A frame lying wholly inside one chunk is returned as a
 *              view of that chunk (no copy); only a frame split across chunks is copied, into the
 *              reusable tail buffer (never more than maxFrameLength - 2 octets).
 *   closed  -> after a close decision or end(); nothing more is decoded.
 *
 * Decisions (RFC 9329 §3, §4 and the PROTOCOL.md checklist):
 *   - wrong prefix                                  -> close 'bad_prefix'
 *   - Length < 2 (cannot frame anything)            -> close 'bad_length'
 *   - Length > maxFrameLength                       -> close 'frame_too_large' (before buffering)
 *   - body = 0xFF (NAT-keepalive)                   -> 'keepalive' event: drop it silently,
 *                                                      stream kept; never counts as garbage
 *   - body too short for IKE or ESP, IKE header length disagreeing with the frame
 *                                                   -> drop, stream kept; `maxGarbageFrames` such
 *                                                      frames in a row -> close 'garbage'
 *   - IKE after a zero Non-ESP Marker, ESP otherwise -> 'ike' / 'esp' events
 *   - end() inside a frame                          -> 'end' with the partial octets discarded
 * What happens next to an IKE message or ESP packet (unknown SPI, ICV failure, INVALID_SYNTAX) is
 * decided above this layer; see `decisions.ts`.
 *
 * Ownership: `message` / `packet` views point into the pushed chunk (a frame wholly inside one
 * chunk: no copy) or into this decoder's reusable tail buffer (a frame split across chunks). Both
 * stay valid until the next push() or poll() call, and the chunk must not be modified until then;
 * a caller that keeps a payload longer (queues it, awaits) copies it first. The tail buffer is
 * allocated lazily, only grows, never exceeds maxFrameLength - 2 octets, and is released on close.
 * That is the only memory held across calls, so `bufferedBytes <= maxFrameLength - 2` whatever the
 * input: there is no separate "max buffered bytes" knob because nothing else can accumulate.
 */
import {
  ESP_MIN_SIZE,
  IKE_HEADER_SIZE,
  IKE_LENGTH_OFFSET,
  IKETCP_PREFIX,
  LENGTH_FIELD_SIZE,
  MAX_FRAME_LENGTH,
  NAT_KEEPALIVE_OCTET,
  NON_ESP_MARKER_SIZE,
  PREFIX_LENGTH,
} from './constants.js';
import { LocalUsageError } from './errors.js';

export type DecoderState = 'prefix' | 'length' | 'body' | 'closed';

export type CloseReason = 'bad_prefix' | 'bad_length' | 'frame_too_large' | 'garbage';
export type DropReason = 'short_frame' | 'short_ike' | 'ike_length_mismatch' | 'short_esp';

export type IketcpEvent =
  /** The full "IKETCP" prefix arrived (responder side). */
  | { readonly kind: 'prefix' }
  /** An IKE message (Non-ESP Marker removed). */
  | { readonly kind: 'ike'; readonly message: Uint8Array }
  /** An ESP packet; `spi` is its non-zero SPI. */
  | { readonly kind: 'esp'; readonly packet: Uint8Array; readonly spi: number }
  /**
   * A NAT-keepalive frame (one 0xFF octet, RFC 3948 §2.3 carried over TCP): the caller drops it
   * silently, keeps the stream, and never takes it as IKE liveness (RFC 9329 §3, §6).
   */
  | { readonly kind: 'keepalive' }
  /** A malformed frame that was skipped; the stream stays open. `length` is its Length field. */
  | { readonly kind: 'drop'; readonly reason: DropReason; readonly length: number }
  /** The stream must be closed; no further events follow. */
  | { readonly kind: 'close'; readonly reason: CloseReason }
  /** end() was called; `discarded` octets of an incomplete prefix or frame were thrown away. */
  | { readonly kind: 'end'; readonly discarded: number };

export interface DecoderOptions {
  /** True on the side that receives the originator's stream (the responder, §4). */
  readonly expectPrefix: boolean;
  /** Largest acceptable Length field, 3..65535. Default 65535. */
  readonly maxFrameLength?: number;
  /** Consecutive dropped (non-keepalive) frames that close the stream. Default 8; 0 = never. */
  readonly maxGarbageFrames?: number;
}

/** Counters a service exports per connection; plain numbers, updated as events are produced. */
export interface DecoderCounters {
  bytes: number;
  ikeFrames: number;
  espFrames: number;
  droppedFrames: number;
  keepalives: number;
}

const KEEPALIVE: IketcpEvent = Object.freeze({ kind: 'keepalive' });

export class IketcpDecoder {
  #state: DecoderState;
  readonly #maxFrameLength: number;
  readonly #maxGarbage: number;
  #prefixSeen = 0;
  #lengthHigh = -1;
  #frameLength = 0;
  /**
   * True while a frame body is being collected across chunks in #tail (#partialFill octets of it
   * so far). #tail is reused for every split frame and only grows, to at most maxFrameLength - 2
   * octets, so a steady stream allocates once (STYLE.md rule 7).
   */
  #collecting = false;
  #partialFill = 0;
  #tail: Uint8Array = new Uint8Array(0);
  #garbageRun = 0;
  #chunk: Uint8Array = new Uint8Array(0);
  #offset = 0;
  #pendingEnd = false;
  #sentPrefixEvent = false;
  readonly counters: DecoderCounters = {
    bytes: 0,
    ikeFrames: 0,
    espFrames: 0,
    droppedFrames: 0,
    keepalives: 0,
  };

  /** @throws LocalUsageError for options out of range. */
  constructor(options: DecoderOptions) {
    const max = options.maxFrameLength ?? MAX_FRAME_LENGTH;
    if (!Number.isInteger(max) || max < 3 || max > MAX_FRAME_LENGTH) {
      throw new LocalUsageError(
        'IKEGATE_ERR_IKETCP_BAD_OPTION',
        `maxFrameLength must be 3..65535, got ${max}`,
      );
    }
    const garbage = options.maxGarbageFrames ?? 8;
    if (!Number.isInteger(garbage) || garbage < 0) {
      throw new LocalUsageError(
        'IKEGATE_ERR_IKETCP_BAD_OPTION',
        `maxGarbageFrames must be >= 0, got ${garbage}`,
      );
    }
    this.#maxFrameLength = max;
    this.#maxGarbage = garbage;
    this.#state = options.expectPrefix ? 'prefix' : 'length';
  }

  get state(): DecoderState {
    return this.#state;
  }

  /** Octets of an incomplete frame held across calls; never more than maxFrameLength - 2. */
  get bufferedBytes(): number {
    return this.#partialFill + (this.#lengthHigh >= 0 ? 1 : 0);
  }

  /**
   * Octets of reassembly buffer allocated: at most twice the largest split frame's octets that
   * arrived (or 2048), whatever length its header stated, and never more than maxFrameLength - 2.
   */
  get bufferCapacity(): number {
    return this.#tail.length;
  }

  /**
   * Hands the decoder the next chunk of the stream. Poll until undefined first.
   * @throws LocalUsageError if events of the previous chunk are still pending.
   */
  push(chunk: Uint8Array): void {
    if (this.#offset < this.#chunk.length && this.#state !== 'closed') {
      throw new LocalUsageError('IKEGATE_ERR_IKETCP_PENDING_EVENTS', 'poll() until undefined before push()');
    }
    if (this.#pendingEnd) throw new LocalUsageError('IKEGATE_ERR_IKETCP_CLOSED', 'push() after end()');
    this.#chunk = chunk;
    this.#offset = 0;
    if (this.#state !== 'closed') this.counters.bytes += chunk.length;
  }

  /** The stream ended (FIN or reset): the next poll reports what was discarded. */
  end(): void {
    this.#pendingEnd = true;
  }

  /** The next event, or undefined when the pushed octets are used up. */
  poll(): IketcpEvent | undefined {
    while (this.#state !== 'closed') {
      const ev = this.#step();
      if (ev !== undefined) return ev;
      if (this.#offset >= this.#chunk.length) break;
    }
    if (this.#pendingEnd && this.#state !== 'closed') {
      const discarded = this.#discardable();
      this.#state = 'closed';
      this.#collecting = false;
      this.#partialFill = 0;
      this.#lengthHigh = -1;
      this.#tail = new Uint8Array(0);
      return { kind: 'end', discarded };
    }
    return undefined;
  }

  #discardable(): number {
    if (this.#state === 'prefix') return this.#prefixSeen;
    return this.bufferedBytes;
  }

  #close(reason: CloseReason): IketcpEvent {
    this.#state = 'closed';
    this.#collecting = false;
    this.#partialFill = 0;
    this.#tail = new Uint8Array(0);
    this.#lengthHigh = -1;
    this.#offset = this.#chunk.length;
    return { kind: 'close', reason };
  }

  /** Consumes octets of the current chunk; returns an event when one is complete. */
  #step(): IketcpEvent | undefined {
    const chunk = this.#chunk;
    switch (this.#state) {
      case 'prefix': {
        while (this.#prefixSeen < PREFIX_LENGTH && this.#offset < chunk.length) {
          if (chunk[this.#offset] !== IKETCP_PREFIX[this.#prefixSeen]) return this.#close('bad_prefix');
          this.#offset++;
          this.#prefixSeen++;
        }
        if (this.#prefixSeen < PREFIX_LENGTH) return undefined;
        this.#state = 'length';
        if (!this.#sentPrefixEvent) {
          this.#sentPrefixEvent = true;
          return { kind: 'prefix' };
        }
        return undefined;
      }
      case 'length': {
        if (this.#offset >= chunk.length) return undefined;
        let length: number;
        if (this.#lengthHigh >= 0) {
          length = (this.#lengthHigh << 8) | chunk[this.#offset]!;
          this.#offset += 1;
          this.#lengthHigh = -1;
        } else if (this.#offset + 1 < chunk.length) {
          length = (chunk[this.#offset]! << 8) | chunk[this.#offset + 1]!;
          this.#offset += 2;
        } else {
          this.#lengthHigh = chunk[this.#offset]!;
          this.#offset += 1;
          return undefined;
        }
        if (length < LENGTH_FIELD_SIZE) return this.#close('bad_length');
        if (length > this.#maxFrameLength) return this.#close('frame_too_large');
        this.#frameLength = length;
        this.#state = 'body';
        if (length === LENGTH_FIELD_SIZE) return this.#frame(new Uint8Array(0));
        return undefined;
      }
      case 'body': {
        const need = this.#frameLength - LENGTH_FIELD_SIZE;
        const available = chunk.length - this.#offset;
        if (!this.#collecting && available >= need) {
          const body = chunk.subarray(this.#offset, this.#offset + need);
          this.#offset += need;
          return this.#frame(body);
        }
        if (available === 0) return undefined;
        if (!this.#collecting) {
          this.#collecting = true;
          this.#partialFill = 0;
        }
        const fill = this.#partialFill;
        const take = Math.min(need - fill, available);
        if (fill + take > this.#tail.length) {
          // Grown with what has arrived (geometrically, so frames of mixed sizes do not reallocate
          // each time), never to the stated length up front: a peer that states 64 KiB and sends
          // one octet must not cost 64 KiB (an unauthenticated stream can do it on every slot).
          const size = Math.min(Math.max(fill + take, this.#tail.length * 2, 2048), this.#maxFrameLength - 2);
          const grown = new Uint8Array(size);
          grown.set(this.#tail.subarray(0, fill));
          this.#tail = grown;
        }
        this.#tail.set(chunk.subarray(this.#offset, this.#offset + take), fill);
        this.#partialFill = fill + take;
        this.#offset += take;
        if (this.#partialFill < need) return undefined;
        const body = this.#tail.subarray(0, need);
        this.#collecting = false;
        this.#partialFill = 0;
        return this.#frame(body);
      }
      case 'closed':
        return undefined;
    }
  }

  /** Classifies a complete frame body (RFC 9329 §3). */
  #frame(body: Uint8Array): IketcpEvent {
    this.#state = 'length';
    const length = body.length + LENGTH_FIELD_SIZE;
    if (body.length === 1 && body[0] === NAT_KEEPALIVE_OCTET) {
      this.counters.keepalives++;
      return KEEPALIVE;
    }
    if (body.length < NON_ESP_MARKER_SIZE) return this.#garbage('short_frame', length);
    const marker = (body[0]! | body[1]! | body[2]! | body[3]!) === 0;
    if (marker) {
      const message = body.subarray(NON_ESP_MARKER_SIZE);
      if (message.length < IKE_HEADER_SIZE) return this.#garbage('short_ike', length);
      const stated =
        ((message[IKE_LENGTH_OFFSET]! << 24) |
          (message[IKE_LENGTH_OFFSET + 1]! << 16) |
          (message[IKE_LENGTH_OFFSET + 2]! << 8) |
          message[IKE_LENGTH_OFFSET + 3]!) >>>
        0;
      if (stated !== message.length) return this.#garbage('ike_length_mismatch', length);
      this.#garbageRun = 0;
      this.counters.ikeFrames++;
      return { kind: 'ike', message };
    }
    if (body.length < ESP_MIN_SIZE) return this.#garbage('short_esp', length);
    this.#garbageRun = 0;
    this.counters.espFrames++;
    const spi = ((body[0]! << 24) | (body[1]! << 16) | (body[2]! << 8) | body[3]!) >>> 0;
    return { kind: 'esp', packet: body, spi };
  }

  #garbage(reason: DropReason, length: number): IketcpEvent {
    this.counters.droppedFrames++;
    this.#garbageRun++;
    if (this.#maxGarbage > 0 && this.#garbageRun >= this.#maxGarbage) return this.#close('garbage');
    return { kind: 'drop', reason, length };
  }
}
