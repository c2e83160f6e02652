/**
 * RFC 7296 §2.15 shared-key AUTH: AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> ).
 * Verification compares in constant time.
 *
 * The inner value prf(PSK, "Key Pad for IKEv2") depends only on the PSK and the PRF, so it is the
 * same for every SA of a peer: it is computed once per PSK and PRF and kept (issue #14: 2 of the
 * 16 HMACs of a responder's setup). The cache is a WeakMap keyed by the PSK's Uint8Array (the
 * worker's peer settings hold one per configured peer, replaced when the config changes), so an
 * entry lives exactly as long as its PSK; per PSK at most one value per PRF transform ID. A copy of
 * the PSK octets is kept beside the value and compared on every use, so a PSK array rewritten in
 * place never gets a stale value. Nothing here is logged.
 */
import type { PrfAlgorithm } from '@ikegate/crypto';

const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

interface KeyPads {
  /** The PSK octets the values were computed from. */
  readonly psk: Uint8Array;
  /** prf(PSK, KEY_PAD) by PRF transform ID (RFC 7296 §3.3.2 Transform Type 2). */
  readonly byPrf: Map<number, Uint8Array>;
}

const keyPads = new WeakMap<Uint8Array, KeyPads>();

/** prf(PSK, "Key Pad for IKEv2"), from the cache when this PSK and PRF were seen before. Not to be modified. */
function keyPad(prf: PrfAlgorithm, psk: Uint8Array): Uint8Array {
  let entry = keyPads.get(psk);
  if (entry === undefined || !equalConstantTime(entry.psk, psk)) {
    entry = { psk: psk.slice(), byPrf: new Map() };
    keyPads.set(psk, entry);
  }
  let pad = entry.byPrf.get(prf.id);
  if (pad === undefined) {
    pad = prf.compute(psk, KEY_PAD).slice();
    entry.byPrf.set(prf.id, pad);
  }
  return pad;
}

/** AUTH for a shared key: a new array the caller owns. */
export function pskAuthData(prf: PrfAlgorithm, psk: Uint8Array, octets: Uint8Array): Uint8Array {
  return prf.compute(keyPad(prf, psk), octets);
}

/** Constant-time equality of two byte strings (the length is not secret). */
export function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function verifyPskAuth(
  prf: PrfAlgorithm,
  psk: Uint8Array,
  octets: Uint8Array,
  received: Uint8Array,
): boolean {
  return equalConstantTime(pskAuthData(prf, psk, octets), received);
}
