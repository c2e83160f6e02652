/**
 * Inbound ESP SA, tunnel mode (RFC 4303 §3.4).
 *
 * decapsulate(packet) runs the RFC's order (§3.4.3): lengths first, then the SPI, then the replay
 * check on the sequence number (with ESN, Seqh inferred per Appendix A2.2), then integrity and
 * decryption, and only when integrity passed is the replay window updated. After that the trailer
 * is checked: Pad Length within the plaintext and padding octets 1, 2, 3, ... (§2.4: SHOULD
 * inspect), Next Header 59 is a dummy packet to discard silently (§2.6), anything but 4 or 41 is
 * refused, and the inner IPv4/IPv6 header must be consistent with the octets that remain. Octets
 * after the inner packet's own length are TFC padding (§2.7) and are cut off.
 *
 * Because the window moves once integrity passes, an authentic packet dropped later (bad padding,
 * bad next header, bad inner packet, dummy) still consumes its sequence number: a replay of it is
 * a replay. Every other drop leaves the SA exactly as it was.
 *
 * Buffer ownership: the returned inner `packet` is a view of this SA's own plaintext buffer (or of
 * `out`) and stays valid until the next decapsulate call on this SA. `packet` is only read during
 * the call. Never throws for a bad packet; drops come back as { kind: 'drop', reason }.
 */
import { GrowableBuffer } from './buffers.js';
import { DEFAULT_REPLAY_WINDOW, ESP_HEADER_LENGTH, NextHeader } from './constants.js';
import { LocalUsageError } from './errors.js';
import { innerPacketLength, nextHeaderForVersion } from './inner.js';
import { checkSpi } from './outbound.js';
import { readU32 } from './packet.js';
import { ReplayWindow } from './replay.js';
import { type EspSuite, minimumEspLength } from './suite.js';
import { checkTrailer } from './trailer.js';
import { createTransform, type EspTransform } from './transform.js';

/** Why an inbound packet was dropped; a metric label (one counter per reason). */
export type EspDropReason =
  /** Too short to hold header, IV, minimal ciphertext and ICV. */
  | 'short'
  /** CBC ciphertext is not a multiple of the block size. */
  | 'bad_length'
  /** The SPI is not this SA's. */
  | 'bad_spi'
  /** A duplicate, too old for the window, or no sequence number fits (ESN space edges). */
  | 'replay'
  /** The ICV did not verify. */
  | 'auth_failed'
  /** Pad Length exceeds the plaintext, or the padding octets are not 1, 2, 3, ... */
  | 'bad_padding'
  /** Next Header is neither 4 (IPv4) nor 41 (IPv6) nor 59. */
  | 'bad_next_header'
  /** The inner header is broken, its length exceeds the payload, or its version disagrees with Next Header. */
  | 'bad_inner'
  /** Next Header 59: a TFC dummy packet, discarded silently (RFC 4303 §2.6). */
  | 'dummy';

/** Every EspDropReason, e.g. to pre-register metric label values. */
export const ESP_DROP_REASONS: readonly EspDropReason[] = Object.freeze([
  'short',
  'bad_length',
  'bad_spi',
  'replay',
  'auth_failed',
  'bad_padding',
  'bad_next_header',
  'bad_inner',
  'dummy',
]);

export type DecapsulateResult =
  | { readonly kind: 'inner'; readonly packet: Uint8Array; readonly nextHeader: 4 | 41 }
  | { readonly kind: 'drop'; readonly reason: EspDropReason };

export interface InboundSaConfig {
  /** Our SPI, the one on the wire. */
  readonly spi: number;
  readonly suite: EspSuite;
  readonly esn?: boolean;
  /**
   * Anti-replay window W (RFC 4303 §3.4.3). Default 64; 0 disables the check; 1 accepts only
   * strictly increasing sequence numbers (RFC 9329 TCP transport). At most MAX_REPLAY_WINDOW.
   */
  readonly replayWindow?: number;
  /** Restore point: highest sequence number already accepted (HA checkpoint). Default 0n. */
  readonly highestSequence?: bigint;
  /** Initial size of the SA's own plaintext buffer (it grows on demand). Default 2048. */
  readonly initialBufferSize?: number;
}

const DROPS: { readonly [R in EspDropReason]: DecapsulateResult } = {
  short: Object.freeze({ kind: 'drop', reason: 'short' }),
  bad_length: Object.freeze({ kind: 'drop', reason: 'bad_length' }),
  bad_spi: Object.freeze({ kind: 'drop', reason: 'bad_spi' }),
  replay: Object.freeze({ kind: 'drop', reason: 'replay' }),
  auth_failed: Object.freeze({ kind: 'drop', reason: 'auth_failed' }),
  bad_padding: Object.freeze({ kind: 'drop', reason: 'bad_padding' }),
  bad_next_header: Object.freeze({ kind: 'drop', reason: 'bad_next_header' }),
  bad_inner: Object.freeze({ kind: 'drop', reason: 'bad_inner' }),
  dummy: Object.freeze({ kind: 'drop', reason: 'dummy' }),
};

export class InboundSa {
  readonly spi: number;
  readonly esn: boolean;
  readonly #t: EspTransform;
  readonly #window: ReplayWindow;
  /** Made on first use: a caller that always passes `out` never needs it. */
  #own: GrowableBuffer | undefined;
  readonly #initialBufferSize: number;
  readonly #headerLength: number;
  readonly #minLength: number;

  /** @throws LocalUsageError for a bad SPI, window size or restore point. */
  constructor(config: InboundSaConfig) {
    checkSpi(config.spi);
    this.spi = config.spi >>> 0;
    this.esn = config.esn ?? false;
    this.#window = new ReplayWindow(
      config.replayWindow ?? DEFAULT_REPLAY_WINDOW,
      this.esn,
      config.highestSequence ?? 0n,
    );
    this.#t = createTransform(config.suite, this.esn);
    this.#headerLength = ESP_HEADER_LENGTH + this.#t.ivLength;
    this.#minLength = minimumEspLength(this.#t);
    this.#initialBufferSize = config.initialBufferSize ?? 2048;
  }

  /** A copy of this SA's keying material (EspTransform.exportKeyMaterial): for its snapshot only. */
  exportKeyMaterial(): Uint8Array {
    return this.#t.exportKeyMaterial();
  }

  /**
   * The shortest packet this SA can open (header, IV, minimal ciphertext and ICV); a shorter one
   * is dropped as `short`. For a caller that refuses such packets before it builds the SA.
   */
  get minimumLength(): number {
    return this.#minLength;
  }

  /** T, the highest sequence number accepted so far. For checkpoints. */
  get highestSequence(): bigint {
    return this.#window.highest;
  }

  /** The configured anti-replay window W. */
  get replayWindow(): number {
    return this.#window.size;
  }

  /**
   * Decapsulates one ESP packet (the UDP payload, or the RFC 9329 frame payload). Never throws for
   * a bad packet.
   * @param out optional destination for the plaintext; it must hold packet.length octets and must
   *   not overlap `packet`. Without it, the SA's own buffer is used.
   * @throws LocalUsageError only when `out` is too small.
   */
  decapsulate(packet: Uint8Array, out?: Uint8Array): DecapsulateResult {
    const t = this.#t;
    const length = packet.length;
    if (length < this.#minLength) return DROPS.short;
    if (readU32(packet, 0) !== this.spi) return DROPS.bad_spi;
    const ctLength = length - this.#headerLength - t.icvLength;
    if (ctLength % t.blockSize !== 0) return DROPS.bad_length;

    const window = this.#window;
    const lo = readU32(packet, 4);
    const hi = window.inferHigh(lo);
    if (hi < 0 || !window.check(hi, lo)) return DROPS.replay;

    let plain: Uint8Array;
    if (out === undefined)
      plain = (this.#own ??= new GrowableBuffer(this.#initialBufferSize, 0)).get(ctLength);
    else {
      if (out.length < ctLength)
        throw new LocalUsageError(
          'IKEGATE_ERR_ESP_OUT_TOO_SMALL',
          `out holds ${out.length} octets, need ${ctLength}`,
        );
      plain = out;
    }
    const ptLength = t.open(packet, hi, plain);
    if (ptLength < 0) return DROPS.auth_failed;
    window.accept(hi, lo);

    const dataLength = checkTrailer(plain, ptLength);
    if (dataLength < 0) return DROPS.bad_padding;
    const nextHeader = plain[ptLength - 1]!;
    if (nextHeader === NextHeader.NO_NEXT_HEADER) return DROPS.dummy;
    if (nextHeader !== NextHeader.IPV4 && nextHeader !== NextHeader.IPV6) return DROPS.bad_next_header;
    const innerLength = dataLength === 0 ? -1 : innerPacketLength(plain, dataLength);
    if (innerLength < 0 || nextHeaderForVersion(plain[0]!) !== nextHeader) return DROPS.bad_inner;
    return { kind: 'inner', packet: plain.subarray(0, innerLength), nextHeader };
  }
}
