/**
 * The ESP trailer (RFC 4303 §2.4-2.6): Padding | Pad Length | Next Header, after the payload.
 * Padding octets are 1, 2, 3, ... (the default the RFC defines) and bring the padded plaintext to
 * a multiple of `alignment` (the cipher block size, at least 4 so that the ICV is 4-aligned).
 */
import { ESP_TRAILER_LENGTH } from './constants.js';

/** Number of padding octets for a payload of `length` octets. */
export function padLengthFor(length: number, alignment: number): number {
  return (alignment - ((length + ESP_TRAILER_LENGTH) % alignment)) % alignment;
}

/**
 * Writes payload | padding | Pad Length | Next Header into `dst` (from offset 0) and returns the
 * plaintext length. `dst` must hold it (the callers size it with padLengthFor).
 */
export function writePlaintext(
  dst: Uint8Array,
  payload: Uint8Array,
  nextHeader: number,
  alignment: number,
): number {
  const n = payload.length;
  const pad = padLengthFor(n, alignment);
  dst.set(payload, 0);
  for (let i = 1; i <= pad; i++) dst[n + i - 1] = i;
  dst[n + pad] = pad;
  dst[n + pad + 1] = nextHeader;
  return n + pad + ESP_TRAILER_LENGTH;
}

/**
 * The payload length of a decrypted plaintext after checking its trailer, or -1 when Pad Length
 * runs past the start or a padding octet is not the expected 1, 2, 3, ... (RFC 4303 §2.4).
 */
export function checkTrailer(plain: Uint8Array, length: number): number {
  if (length < ESP_TRAILER_LENGTH) return -1;
  const pad = plain[length - 2]!;
  const payload = length - ESP_TRAILER_LENGTH - pad;
  if (payload < 0) return -1;
  for (let i = 0; i < pad; i++) if (plain[payload + i] !== i + 1) return -1;
  return payload;
}
