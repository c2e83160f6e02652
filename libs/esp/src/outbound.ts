/**
 * Outbound ESP SA, tunnel mode (RFC 4303 §3.3).
 *
 * encapsulate(inner) builds SPI | SN | IV | E(inner | Padding | Pad Length | Next Header) | ICV.
 * - Next Header comes from the inner packet's version nibble: 4 (IPv4) or 41 (IPv6). An inner
 *   packet whose header is broken or whose length field disagrees with the buffer is refused with
 *   a drop result (it came from our TUN device or a test, but it is still never thrown).
 * - Padding is 1, 2, 3, ... up to the cipher block size, and at least 4-octet alignment of the
 *   trailer (RFC 4303 §2.4). No TFC padding (§2.7) and no dummy packets are generated.
 * - The sequence number counts 1, 2, 3, ... and never wraps (§3.3.3): when the next value would
 *   not fit (2^32 - 1 without ESN, 2^64 - 1 with ESN) encapsulate returns `rekey_required` and
 *   keeps returning it. With ESN only the low half is transmitted; the high half is in the AAD
 *   (RFC 4106 §5, RFC 7634 §2.1) or appended for the ICV (RFC 4303 §3.3.2.1).
 * - IV: for an AEAD the 64-bit sequence number (unique per key, which RFC 4106 §3.1 and RFC 7634
 *   §2 require and allow); for CBC unpredictable octets from the injected RandomBytes (RFC 3602
 *   §3), drawn 64 IVs at a time.
 *
 * Buffer ownership: the returned `packet` is a view of this SA's own output buffer (or of `out`
 * when given) and stays valid until the next encapsulate call on this SA; copy it to keep it.
 * The inner packet is only read during the call.
 */
import type { RandomBytes } from '@ikegate/crypto';
import { GrowableBuffer, sharedPlaintext } from './buffers.js';
import { ESP_HEADER_LENGTH, ESP_TRAILER_LENGTH } from './constants.js';
import { LocalUsageError } from './errors.js';
import { innerPacketLength, nextHeaderForVersion } from './inner.js';
import { writeU32 } from './packet.js';
import type { EspSuite } from './suite.js';
import { padLengthFor, writePlaintext } from './trailer.js';
import { createTransform, type EspTransform } from './transform.js';

/** Writes the explicit IV for the packet with sequence number seqHi:seqLo into `iv`. */
export type IvSource = (seqHi: number, seqLo: number, iv: Uint8Array) => void;

export interface OutboundSaConfig {
  /** The SPI on the wire: the one the peer chose for its inbound SA. */
  readonly spi: number;
  readonly suite: EspSuite;
  /** Extended (64-bit) Sequence Numbers, as negotiated (RFC 7296 §3.3.2 transform type 5). */
  readonly esn?: boolean;
  /**
   * The last sequence number already used; the first packet carries lastSequence + 1. Default 0n.
   * An HA takeover restores from a checkpoint advanced by a safe gap (ARCHITECTURE.md).
   */
  readonly lastSequence?: bigint;
  /** Required for a CBC suite (IVs must be unpredictable); unused for an AEAD. */
  readonly random?: RandomBytes;
  /**
   * Replaces the default IV (AEAD: the sequence number). For known-answer tests and interop
   * checks only: a source that repeats an IV under one AEAD key destroys confidentiality.
   */
  readonly ivSource?: IvSource;
  /** Initial size of the SA's own output buffer (it grows on demand). Default 2048. */
  readonly initialBufferSize?: number;
}

export type EncapsulateResult =
  | { readonly kind: 'packet'; readonly packet: Uint8Array }
  /** The inner packet is not a well-formed IPv4 or IPv6 packet filling the buffer. */
  | { readonly kind: 'drop'; readonly reason: 'bad_inner' }
  /** The sequence number space is spent: the SA must be rekeyed (RFC 4303 §3.3.3). */
  | { readonly kind: 'rekey_required' };

const BAD_INNER: EncapsulateResult = Object.freeze({ kind: 'drop', reason: 'bad_inner' });
const REKEY_REQUIRED: EncapsulateResult = Object.freeze({ kind: 'rekey_required' });
const IV_POOL_COUNT = 64;

/** An SA's IV pool before its first random IV (CBC only). */
const NO_IVS = new Uint8Array(0);
/** The IV of the packet being sealed, by IV length: shared by the thread's SAs (used synchronously). */
const IV_SCRATCH = new Map<number, Uint8Array>();

function ivScratch(length: number): Uint8Array {
  let iv = IV_SCRATCH.get(length);
  if (!iv) IV_SCRATCH.set(length, (iv = new Uint8Array(length)));
  return iv;
}

export class OutboundSa {
  readonly spi: number;
  readonly esn: boolean;
  readonly #t: EspTransform;
  readonly #headerLength: number;
  /** Made on first use: a caller that always passes `out` never needs it. */
  #own: GrowableBuffer | undefined;
  readonly #initialBufferSize: number;
  readonly #ivSource: IvSource | undefined;
  readonly #random: RandomBytes | undefined;
  readonly #aead: boolean;
  #ivPool: Uint8Array = NO_IVS;
  #ivPoolAt = 0;
  #hi: number;
  #lo: number;
  #lastOut: Uint8Array | undefined;
  #lastOutBody: Uint8Array | undefined;

  /** @throws LocalUsageError for a bad SPI, sequence start, or a CBC suite without `random`. */
  constructor(config: OutboundSaConfig) {
    checkSpi(config.spi);
    this.spi = config.spi >>> 0;
    this.esn = config.esn ?? false;
    const last = config.lastSequence ?? 0n;
    if (last < 0n || last > (this.esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn))
      throw new LocalUsageError('IKEGATE_ERR_ESP_BAD_SEQUENCE', `lastSequence ${last} is out of range`);
    this.#hi = Number(last >> 32n);
    this.#lo = Number(last & 0xffff_ffffn);
    this.#t = createTransform(config.suite, this.esn);
    this.#aead = config.suite.kind === 'aead';
    if (!this.#aead && config.random === undefined && config.ivSource === undefined)
      throw new LocalUsageError('IKEGATE_ERR_ESP_BAD_CONFIG', 'a CBC suite needs an injected random source');
    this.#random = config.random;
    this.#ivSource = config.ivSource;
    this.#headerLength = ESP_HEADER_LENGTH + this.#t.ivLength;
    this.#initialBufferSize = config.initialBufferSize ?? 2048;
  }

  /** A copy of this SA's keying material (EspTransform.exportKeyMaterial): for its snapshot only. */
  exportKeyMaterial(): Uint8Array {
    return this.#t.exportKeyMaterial();
  }

  /** The last sequence number used (0n before the first packet). For checkpoints. */
  get lastSequence(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }

  /**
   * Moves the sequence counter forward so the next packet carries at least `last + 1` (RFC 6311
   * §4.3: the peer's cluster tells us where its inbound replay window now starts). Never moves
   * back; a value past the SN space leaves the counter exhausted (`rekey_required` next).
   * @returns whether the counter moved.
   */
  skipTo(last: bigint): boolean {
    const target = skipTarget(this.lastSequence, last, this.esn);
    if (target === undefined) return false;
    this.#hi = Number(target >> 32n);
    this.#lo = Number(target & 0xffff_ffffn);
    return true;
  }

  /** Exact length of the ESP packet for an inner packet of `innerLength` octets. */
  packetLength(innerLength: number): number {
    const t = this.#t;
    return (
      this.#headerLength +
      innerLength +
      ESP_TRAILER_LENGTH +
      padLengthFor(innerLength, t.alignment) +
      t.icvLength
    );
  }

  /**
   * Encapsulates one inner IPv4/IPv6 packet. Never throws for a bad inner packet.
   * @param out optional destination; it must hold packetLength(inner.length) octets and must not
   *   overlap `inner`. Without it, the SA's own buffer is used.
   * @throws LocalUsageError only when `out` is too small.
   */
  encapsulate(inner: Uint8Array, out?: Uint8Array): EncapsulateResult {
    const n = inner.length;
    if (n === 0 || innerPacketLength(inner, n) !== n) return BAD_INNER;
    const nextHeader = nextHeaderForVersion(inner[0]!);

    let hi = this.#hi;
    let lo = this.#lo + 1;
    if (lo > 0xffff_ffff) {
      if (!this.esn || hi === 0xffff_ffff) return REKEY_REQUIRED;
      hi += 1;
      lo = 0;
    }

    const t = this.#t;
    const ptLength = n + ESP_TRAILER_LENGTH + padLengthFor(n, t.alignment);
    const length = this.#headerLength + ptLength + t.icvLength;

    let packet: Uint8Array;
    let body: Uint8Array;
    if (out === undefined) {
      const own = (this.#own ??= new GrowableBuffer(this.#initialBufferSize, this.#headerLength));
      packet = own.get(length);
      body = own.body();
    } else {
      if (out.length < length)
        throw new LocalUsageError(
          'IKEGATE_ERR_ESP_OUT_TOO_SMALL',
          `out holds ${out.length} octets, need ${length}`,
        );
      packet = out;
      if (this.#lastOut !== out) {
        this.#lastOut = out;
        this.#lastOutBody = out.subarray(this.#headerLength);
      }
      body = this.#lastOutBody!;
    }

    const scratch = sharedPlaintext(ptLength);
    writePlaintext(scratch, inner, nextHeader, t.alignment);

    writeU32(packet, 0, this.spi);
    writeU32(packet, 4, lo);
    const iv = ivScratch(t.ivLength);
    if (this.#ivSource !== undefined) this.#ivSource(hi, lo, iv);
    else if (this.#aead) {
      writeU32(iv, 0, hi);
      writeU32(iv, 4, lo);
    } else this.#randomIv(iv);
    packet.set(iv, ESP_HEADER_LENGTH);

    const written = t.seal(packet, body, scratch.subarray(0, ptLength), iv, hi);
    this.#hi = hi;
    this.#lo = lo;
    return { kind: 'packet', packet: packet.subarray(0, written) };
  }

  #randomIv(iv: Uint8Array): void {
    const len = iv.length;
    if (this.#ivPoolAt + len > this.#ivPool.length) {
      this.#ivPool = this.#random!(len * IV_POOL_COUNT);
      this.#ivPoolAt = 0;
    }
    const pool = this.#ivPool;
    const at = this.#ivPoolAt;
    for (let i = 0; i < len; i++) {
      iv[i] = pool[at + i]!;
      pool[at + i] = 0; // an IV is used once; do not keep it around
    }
    this.#ivPoolAt = at + len;
  }
}

export function checkSpi(spi: number): void {
  if (!Number.isInteger(spi) || spi < 256 || spi > 0xffff_ffff)
    throw new LocalUsageError(
      'IKEGATE_ERR_ESP_BAD_CONFIG',
      `SPI must be in 256..2^32-1 (RFC 4303 §2.1: 0 and 1..255 are reserved), got ${spi}`,
    );
}

/**
 * Where an outbound counter at `current` goes when told to skip to `last` (OutboundSa.skipTo, and
 * a counter kept outside an SA): `last` capped at the end of the SN space (2^32 - 1, or 2^64 - 1
 * with ESN), or undefined when that is not past `current` (a counter never moves back).
 */
export function skipTarget(current: bigint, last: bigint, esn: boolean): bigint | undefined {
  const max = esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  const target = last > max ? max : last;
  return target > current ? target : undefined;
}
