/**
 * RFC 7296 §2.15 shared-key AUTH: AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> ).
 * Verification compares in constant time.
 */
import type { PrfAlgorithm } from '@ikegate/crypto';

const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

export function pskAuthData(prf: PrfAlgorithm, psk: Uint8Array, octets: Uint8Array): Uint8Array {
  return prf.compute(prf.compute(psk, KEY_PAD), octets);
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
