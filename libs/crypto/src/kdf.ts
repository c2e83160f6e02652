/**
 * IKEv2 key derivation (RFC 7296 §2.13, §2.14, §2.17, §2.18; RFC 9370 §2.2.2 and §2.2.4).
 * Everything here is a composition of the negotiated PRF; no primitive lives in this file.
 *
 *   prf+ (K,S) = T1 | T2 | T3 | ...   T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)   (§2.13)
 *   SKEYSEED   = prf(Ni | Nr, g^ir)                                                   (§2.14)
 *   {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 *   SKEYSEED (IKE SA rekey) = prf(SK_d (old), g^ir (new) | Ni | Nr)                   (§2.18)
 *   KEYMAT (child SA)       = prf+(SK_d, [g^ir (new)] | Ni | Nr)                       (§2.17)
 *
 * RFC 9370 (multiple key exchanges): after the n-th IKE_INTERMEDIATE key exchange,
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr) and the seven keys are recomputed with prf+ over
 *   the Ni | Nr | SPIi | SPIr of IKE_SA_INIT (§2.2.2). In CREATE_CHILD_SA (with IKE_FOLLOWUP_KE),
 *   the secrets of the first and the additional key exchanges go in as
 *   SKEYSEED = prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) for an IKE SA rekey and
 *   KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) for a child SA (§2.2.4): with one key
 *   exchange this is exactly RFC 7296. This is why the shared-secret parameters accept a list.
 *   (strongSwan's keymat_v2.c builds the same "secret | Ni | Nr | additional secrets" seed.)
 *
 * Errors: LocalUsageError (IKEGATE_ERR_CRYPTO_BAD_LENGTH) when more than 255 prf+ blocks are asked
 * for, or a length is negative.
 */
import { LocalUsageError } from './errors.js';
import type { PrfAlgorithm } from './provider.js';

/** RFC 7296 §2.13: the counter is one octet, so prf+ stops after 255 iterations. */
export const PRF_PLUS_MAX_ITERATIONS = 255;

/** One shared secret, or the ordered list SK(0), SK(1), ... SK(n) of RFC 9370 §2.2.4. */
export type SharedSecrets = Uint8Array | readonly Uint8Array[];

/** RFC 9370 §2.2.4 order: SK(0) | Ni | Nr | SK(1) | ... | SK(n); without secrets just Ni | Nr. */
function secretsAndNonces(s: SharedSecrets | undefined, ni: Uint8Array, nr: Uint8Array): Uint8Array[] {
  if (s === undefined) return [ni, nr];
  if (s instanceof Uint8Array) return [s, ni, nr];
  const [first, ...rest] = s;
  return first === undefined ? [ni, nr] : [first, ni, nr, ...rest];
}

/** The parts joined in a new buffer of their own. */
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

/**
 * prf+ (RFC 7296 §2.13): `length` octets of T1 | T2 | ... Throws LocalUsageError when `length`
 * needs more than 255 PRF blocks. The result is fresh; `key` and `seed` are only read.
 */
export function prfPlus(prf: PrfAlgorithm, key: Uint8Array, seed: Uint8Array, length: number): Uint8Array {
  if (!Number.isInteger(length) || length < 0) {
    throw new LocalUsageError('IKEGATE_ERR_CRYPTO_BAD_LENGTH', `prf+: bad length ${length}`);
  }
  const blocks = Math.ceil(length / prf.outputLength);
  if (blocks > PRF_PLUS_MAX_ITERATIONS) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_LENGTH',
      `prf+: ${length} octets need ${blocks} iterations of ${prf.name}, at most ${PRF_PLUS_MAX_ITERATIONS} allowed`,
    );
  }
  const out = new Uint8Array(length);
  const counter = new Uint8Array(1);
  let previous: Uint8Array = new Uint8Array(0);
  let off = 0;
  for (let n = 1; n <= blocks; n++) {
    counter[0] = n;
    previous = prf.compute(key, previous, seed, counter);
    const take = Math.min(previous.length, length - off);
    out.set(take === previous.length ? previous : previous.subarray(0, take), off);
    off += take;
  }
  return out;
}

/**
 * SKEYSEED = prf(Ni | Nr, g^ir) (RFC 7296 §2.14). Every PRF ikegate offers is HMAC, which takes
 * Ni | Nr whole as its key; the "fixed key size" rule of §2.14 (AES-XCBC-PRF-128, AES-CMAC-PRF-128:
 * 64 bits of each nonce) does not apply, and `prf` with such an id is rejected.
 */
export function deriveSkeyseed(
  prf: PrfAlgorithm,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecret: Uint8Array,
): Uint8Array {
  assertHmacPrf(prf);
  return prf.compute(concat([ni, nr]), sharedSecret);
}

/**
 * SKEYSEED for a rekeyed IKE SA: prf(SK_d (old), g^ir (new) | Ni | Nr) (RFC 7296 §2.18), where Ni
 * and Nr are the nonces of the CREATE_CHILD_SA exchange. With RFC 9370 additional key exchanges,
 * pass every shared secret in order: prf(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) (§2.2.4).
 */
export function deriveRekeySkeyseed(
  prf: PrfAlgorithm,
  oldSkD: Uint8Array,
  sharedSecret: SharedSecrets,
  ni: Uint8Array,
  nr: Uint8Array,
): Uint8Array {
  return prf.compute(oldSkD, ...secretsAndNonces(sharedSecret, ni, nr));
}

/**
 * SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr) after the n-th additional key exchange in
 * IKE_INTERMEDIATE (RFC 9370 §2.2.2). Ni and Nr are those of IKE_SA_INIT. Follow it with
 * deriveIkeSaKeys over the IKE_SA_INIT nonces and SPIs.
 */
export function deriveAdditionalKeSkeyseed(
  prf: PrfAlgorithm,
  previousSkD: Uint8Array,
  sharedSecret: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
): Uint8Array {
  return prf.compute(previousSkD, sharedSecret, ni, nr);
}

/**
 * A key of no octets (SK_a and child integrity keys with an AEAD): one shared empty value, not a
 * view per SA (issue #14: memory per SA). Frozen: nothing can be written to it.
 */
export const NO_KEY: Uint8Array = Object.freeze(new Uint8Array(0)) as Uint8Array;

/** Octet lengths of the IKE SA keys (RFC 7296 §2.14). */
export interface IkeSaKeyLengths {
  /** SK_ai / SK_ar: the integrity key; 0 with an AEAD. */
  readonly skA: number;
  /** SK_ei / SK_er: the encryption key material (AEAD: key + salt, e.g. 36 for AES-256-GCM-16). */
  readonly skE: number;
  /** SK_d; defaults to the PRF's preferred key length, its output length. */
  readonly skD?: number;
  /** SK_pi / SK_pr; defaults to the PRF's output length. */
  readonly skP?: number;
}

export interface IkeSaKeys {
  readonly skD: Uint8Array;
  readonly skAi: Uint8Array;
  readonly skAr: Uint8Array;
  readonly skEi: Uint8Array;
  readonly skEr: Uint8Array;
  readonly skPi: Uint8Array;
  readonly skPr: Uint8Array;
}

/**
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * (RFC 7296 §2.14). SPIs are the 8-octet wire values. Returned keys are views of one fresh buffer.
 */
export function deriveIkeSaKeys(
  prf: PrfAlgorithm,
  skeyseed: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spii: Uint8Array,
  spir: Uint8Array,
  lengths: IkeSaKeyLengths,
): IkeSaKeys {
  const d = lengths.skD ?? prf.outputLength;
  const p = lengths.skP ?? prf.outputLength;
  const { skA: integ, skE: encr } = lengths;
  const total = d + 2 * p + 2 * integ + 2 * encr;
  const km = prfPlus(prf, skeyseed, concat([ni, nr, spii, spir]), total);
  let off = 0;
  const take = (n: number): Uint8Array => {
    if (n === 0) return NO_KEY;
    const s = km.subarray(off, off + n);
    off += n;
    return s;
  };
  return {
    skD: take(d),
    skAi: take(integ),
    skAr: take(integ),
    skEi: take(encr),
    skEr: take(encr),
    skPi: take(p),
    skPr: take(p),
  };
}

/** Octet lengths of a child SA's keys (RFC 7296 §2.17). */
export interface ChildSaKeyLengths {
  /** Encryption key material (AEAD: key + salt). */
  readonly encr: number;
  /** Integrity key; 0 with an AEAD. */
  readonly integ: number;
}

/**
 * KEYMAT split per RFC 7296 §2.17: initiator-to-responder keys first, encryption before integrity.
 * `encrI`/`integI` protect traffic sent by the IKE initiator of the exchange that created the child
 * SA; `encrR`/`integR` traffic sent by its responder.
 */
export interface ChildSaKeys {
  readonly encrI: Uint8Array;
  readonly integI: Uint8Array;
  readonly encrR: Uint8Array;
  readonly integR: Uint8Array;
}

/**
 * KEYMAT = prf+(SK_d, [g^ir (new)] | Ni | Nr) (RFC 7296 §2.17); with RFC 9370 additional key
 * exchanges, prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n)) (§2.2.4). Omit `sharedSecret` for a
 * child SA without PFS (and for the first child SA, created in IKE_AUTH).
 */
export function deriveChildSaKeys(
  prf: PrfAlgorithm,
  skD: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecret: SharedSecrets | undefined,
  lengths: ChildSaKeyLengths,
): ChildSaKeys {
  const { encr, integ } = lengths;
  const km = prfPlus(prf, skD, concat(secretsAndNonces(sharedSecret, ni, nr)), 2 * (encr + integ));
  return {
    encrI: km.subarray(0, encr),
    integI: integ === 0 ? NO_KEY : km.subarray(encr, encr + integ),
    encrR: km.subarray(encr + integ, 2 * encr + integ),
    integR: integ === 0 ? NO_KEY : km.subarray(2 * encr + integ, 2 * (encr + integ)),
  };
}

// PRF ids 2, 5, 6, 7 are HMAC; 4 (AES128_XCBC) and 8 (AES128_CMAC) have a fixed key size.
const HMAC_PRF_IDS: ReadonlySet<number> = new Set([2, 5, 6, 7]);

function assertHmacPrf(prf: PrfAlgorithm): void {
  if (!HMAC_PRF_IDS.has(prf.id)) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_UNSUPPORTED',
      `SKEYSEED: ${prf.name} has a fixed key size (RFC 7296 §2.14); only HMAC PRFs are supported`,
    );
  }
}
