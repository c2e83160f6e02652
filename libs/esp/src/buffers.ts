/**
 * Reusable byte buffers for the per-packet path (STYLE.md rule 7: allocate nothing that can be
 * reused). `GrowableBuffer` is one SA's output buffer: allocated on first use, grown to the next
 * power of two when a packet does not fit, never shrunk (so a hostile peer can grow it once, to at
 * most 128 KiB). `sharedPlaintext` is the scratch where the outbound plaintext (inner | padding |
 * Pad Length | Next Header) is assembled before it is encrypted; it is shared by every SA of the
 * thread because it is only used inside one synchronous call.
 */

export class GrowableBuffer {
  #bytes: Uint8Array | undefined;
  #offset: number;
  #body: Uint8Array | undefined;
  constructor(
    readonly initialSize: number,
    /** Offset of the cached `body` view (where the ciphertext or plaintext starts). */
    offset: number,
  ) {
    this.#offset = offset;
  }

  /** A buffer of at least `length` octets. */
  get(length: number): Uint8Array {
    const b = this.#bytes;
    if (b !== undefined && b.length >= length) return b;
    let size = Math.max(this.initialSize, 64);
    while (size < length) size *= 2;
    const fresh = new Uint8Array(size);
    this.#bytes = fresh;
    this.#body = fresh.subarray(this.#offset);
    return fresh;
  }

  /** The view of the current buffer from `offset` (valid after get()). */
  body(): Uint8Array {
    return this.#body!;
  }
}

let plaintext = new Uint8Array(2048);

/** Scratch of at least `length` octets, valid until the next call from anywhere in this thread. */
export function sharedPlaintext(length: number): Uint8Array {
  if (plaintext.length < length) {
    let size = plaintext.length;
    while (size < length) size *= 2;
    plaintext = new Uint8Array(size);
  }
  return plaintext;
}
