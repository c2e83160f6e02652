/**
 * Glue between a NegotiatedSuite and @ikegate/crypto's KDF (RFC 7296 §2.13, §2.14, §2.17): key
 * lengths per suite, the IKE SA keys, SK protection for each direction (RFC 5282 AEAD or CBC + HMAC,
 * RFC 7296 §3.14), and the child SA KEYMAT split into our inbound and outbound keys.
 * Key lengths: AEAD key material includes the 4-octet salt (RFC 5282 §7.1, RFC 7634 §2.1); HMAC
 * integrity keys are as long as the hash (RFC 4868 §2.1.1); SK_d/SK_pi/SK_pr as long as the PRF output.
 */
import {
  type ChildSaKeys,
  type CryptoProvider,
  deriveChildSaKeys,
  deriveIkeSaKeys,
  type IkeSaKeys,
  type PrfAlgorithm,
  type SharedSecrets,
} from '@ikegate/crypto';
import type { SkProtection } from '../codec/index.js';
import { LocalUsageError } from '../errors.js';
import { isAeadEncryption, type NegotiatedSuite } from './proposals.js';

export interface SuiteKeyLengths {
  /** Encryption key material in octets (AEAD: key + salt). */
  readonly encr: number;
  /** Integrity key octets; 0 with an AEAD. */
  readonly integ: number;
  /** PRF output (SK_d, SK_pi, SK_pr); 0 for an ESP suite (no PRF). */
  readonly prf: number;
}

function missing(what: string): LocalUsageError {
  return new LocalUsageError('IKEGATE_ERR_IKEV2_CRYPTO', `crypto provider lacks ${what}`);
}

function encryptionOf(provider: CryptoProvider, suite: NegotiatedSuite) {
  const { id, keyBits } = suite.encryption;
  if (isAeadEncryption(id)) {
    const a = provider.aead(id, keyBits);
    if (a === undefined) throw missing(`AEAD ${id}/${keyBits}`);
    return { kind: 'aead' as const, a };
  }
  const c = provider.cipher(id, keyBits);
  if (c === undefined) throw missing(`cipher ${id}/${keyBits}`);
  const integ = suite.integrity === undefined ? undefined : provider.integrity(suite.integrity);
  if (integ === undefined) throw missing(`integrity ${suite.integrity ?? 'none'} (required with ${id})`);
  return { kind: 'cbc' as const, c, integ };
}

/**
 * Key lengths for a suite. @throws LocalUsageError when the provider lacks an algorithm of the suite
 * (selectProposal only chooses what the policy lists, so this is a configuration error).
 */
export function suiteKeyLengths(provider: CryptoProvider, suite: NegotiatedSuite): SuiteKeyLengths {
  const e = encryptionOf(provider, suite);
  let prf = 0;
  if (suite.prf !== undefined) {
    const p = provider.prf(suite.prf);
    if (p === undefined) throw missing(`PRF ${suite.prf}`);
    prf = p.outputLength;
  }
  return e.kind === 'aead'
    ? { encr: e.a.keyLength, integ: 0, prf }
    : { encr: e.c.keyLength, integ: e.integ.keyLength, prf };
}

/** The suite's PRF. @throws LocalUsageError when absent (ESP suite) or not provided */
export function suitePrf(provider: CryptoProvider, suite: NegotiatedSuite): PrfAlgorithm {
  const p = suite.prf === undefined ? undefined : provider.prf(suite.prf);
  if (p === undefined) throw missing(`PRF ${suite.prf ?? '(none negotiated)'}`);
  return p;
}

/**
 * {SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr} = prf+(SKEYSEED, Ni | Nr | SPIi | SPIr)
 * with the suite's lengths (RFC 7296 §2.14). SKEYSEED comes from crypto's deriveSkeyseed,
 * deriveRekeySkeyseed or deriveAdditionalKeSkeyseed.
 */
export function deriveIkeSaKeysForSuite(
  provider: CryptoProvider,
  suite: NegotiatedSuite,
  skeyseed: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  spii: Uint8Array,
  spir: Uint8Array,
): IkeSaKeys {
  const l = suiteKeyLengths(provider, suite);
  return deriveIkeSaKeys(suitePrf(provider, suite), skeyseed, ni, nr, spii, spir, {
    skE: l.encr,
    skA: l.integ,
  });
}

/**
 * SK protection from raw keys (RFC 7296 §3.14; RFC 5282 for AEAD). `integKey` is ignored for AEAD.
 * The keys are imported by the provider: the caller may wipe its copies afterwards.
 */
export function skProtection(
  provider: CryptoProvider,
  suite: NegotiatedSuite,
  encrKey: Uint8Array,
  integKey: Uint8Array,
): SkProtection {
  const e = encryptionOf(provider, suite);
  if (e.kind === 'aead') {
    return { kind: 'aead', key: e.a.create(encrKey), ivLength: e.a.ivLength, icvLength: e.a.icvLength };
  }
  return {
    kind: 'cbc',
    key: e.c.create(encrKey),
    blockSize: e.c.blockSize,
    ivLength: e.c.ivLength,
    integrity: e.integ.create(integKey),
    icvLength: e.integ.icvLength,
  };
}

/**
 * SK protection of both directions: `initiator` protects messages the original initiator sends
 * (SK_ei/SK_ai), `responder` those the original responder sends (SK_er/SK_ar). Our outbound is
 * `initiator` if we are the original initiator.
 */
export function ikeSkProtections(
  provider: CryptoProvider,
  suite: NegotiatedSuite,
  keys: IkeSaKeys,
): { readonly initiator: SkProtection; readonly responder: SkProtection } {
  return {
    initiator: skProtection(provider, suite, keys.skEi, keys.skAi),
    responder: skProtection(provider, suite, keys.skEr, keys.skAr),
  };
}

/** ESP keys of one direction. */
export interface EspDirectionKeys {
  readonly encr: Uint8Array;
  readonly integ: Uint8Array;
}

/**
 * Child SA KEYMAT (RFC 7296 §2.17) for the ESP suite, split into our directions: `outbound`
 * protects what we send, `inbound` what we receive. `weInitiated` is whether we were the
 * initiator of the exchange that created this child SA (not of the IKE SA).
 * @param ikePrf the IKE SA's PRF; @param skD its SK_d
 * @param sharedSecrets the PFS secret(s) (RFC 9370 order), undefined without PFS
 */
export function deriveChildSaKeysForSuite(
  provider: CryptoProvider,
  espSuite: NegotiatedSuite,
  ikePrf: PrfAlgorithm,
  skD: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecrets: SharedSecrets | undefined,
  weInitiated: boolean,
): { readonly keys: ChildSaKeys; readonly outbound: EspDirectionKeys; readonly inbound: EspDirectionKeys } {
  const l = suiteKeyLengths(provider, espSuite);
  const keys = deriveChildSaKeys(ikePrf, skD, ni, nr, sharedSecrets, { encr: l.encr, integ: l.integ });
  const i = { encr: keys.encrI, integ: keys.integI };
  const r = { encr: keys.encrR, integ: keys.integR };
  return { keys, outbound: weInitiated ? i : r, inbound: weInitiated ? r : i };
}
