/** Bounds-checked big-endian reads and the codec's error helpers. */
import { RemoteProtocolError } from '../errors.js';

export function u16(b: Uint8Array, off: number): number {
  return (b[off]! << 8) | b[off + 1]!;
}

export function u32(b: Uint8Array, off: number): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

export function put16(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 8) & 0xff;
  b[off + 1] = v & 0xff;
}

export function put32(b: Uint8Array, off: number, v: number): void {
  b[off] = (v >>> 24) & 0xff;
  b[off + 1] = (v >>> 16) & 0xff;
  b[off + 2] = (v >>> 8) & 0xff;
  b[off + 3] = v & 0xff;
}

/** INVALID_SYNTAX (RFC 7296 §3.10.1) for a layout the peer got wrong. */
export function syntax(what: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_LENGTH', what);
}

export function badValue(what: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', what);
}

/** Throws INVALID_SYNTAX unless `body` holds at least `n` octets. */
export function need(body: Uint8Array, n: number, what: string): void {
  if (body.length < n) throw syntax(`${what}: ${body.length} octets, need at least ${n}`);
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}
