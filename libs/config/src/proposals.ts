/**
 * strongSwan-style proposal strings (`aes256gcm16-prfsha256-x25519`, `aes256-sha256-modp2048`,
 * `aes256gcm16-prfsha384-ecp384-ke1_mlkem768`) to the transform IDs of RFC 7296 §3.3.2 and the IANA
 * "IKEv2 Parameters" registry. Tokens are separated by '-'; each names one transform, several of the
 * same type in one string are alternatives in preference order (as in strongSwan).
 */
import { EncryptionId, IntegrityId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import type { ChildSaAlgorithm, EspProposalPolicy, IkeProposalPolicy } from '@ikegate/ikev2';
import { ConfigError } from './errors.js';

/**
 * Key exchange methods with an IANA number that the crypto provider's KeyExchangeId does not list
 * (yet). Accepted in configuration; negotiation only succeeds if the provider implements them.
 */
const EXTRA_KE = { MODP_3072: 15, MODP_4096: 16 } as const;

const ENCRYPTION: Record<string, ChildSaAlgorithm> = {
  aes128: { id: EncryptionId.AES_CBC, keyBits: 128 },
  aes: { id: EncryptionId.AES_CBC, keyBits: 128 },
  aes192: { id: EncryptionId.AES_CBC, keyBits: 192 },
  aes256: { id: EncryptionId.AES_CBC, keyBits: 256 },
  chacha20poly1305: { id: EncryptionId.CHACHA20_POLY1305, keyBits: 256 },
};
for (const bits of [128, 192, 256]) {
  const alg = { id: EncryptionId.AES_GCM_16, keyBits: bits };
  // strongSwan: the ICV length is in octets (gcm16) or bits (gcm128); plain gcm means 16 octets.
  for (const suffix of ['gcm16', 'gcm128', 'gcm']) ENCRYPTION[`aes${bits}${suffix}`] = alg;
}
const AEAD_IDS = new Set<number>([EncryptionId.AES_GCM_16, EncryptionId.CHACHA20_POLY1305]);

const INTEGRITY: Record<string, number> = {
  sha1: IntegrityId.HMAC_SHA1_96,
  sha256: IntegrityId.HMAC_SHA2_256_128,
  sha2_256: IntegrityId.HMAC_SHA2_256_128,
  sha384: IntegrityId.HMAC_SHA2_384_192,
  sha2_384: IntegrityId.HMAC_SHA2_384_192,
  sha512: IntegrityId.HMAC_SHA2_512_256,
  sha2_512: IntegrityId.HMAC_SHA2_512_256,
};

const PRF: Record<string, number> = {
  prfsha1: PrfId.HMAC_SHA1,
  prfsha256: PrfId.HMAC_SHA2_256,
  prfsha384: PrfId.HMAC_SHA2_384,
  prfsha512: PrfId.HMAC_SHA2_512,
};

/** strongSwan derives the PRF from the integrity algorithm when none is given (non-AEAD only). */
const PRF_FROM_INTEGRITY: Record<number, number> = {
  [IntegrityId.HMAC_SHA1_96]: PrfId.HMAC_SHA1,
  [IntegrityId.HMAC_SHA2_256_128]: PrfId.HMAC_SHA2_256,
  [IntegrityId.HMAC_SHA2_384_192]: PrfId.HMAC_SHA2_384,
  [IntegrityId.HMAC_SHA2_512_256]: PrfId.HMAC_SHA2_512,
};

const KEY_EXCHANGE: Record<string, number> = {
  modp2048: KeyExchangeId.MODP_2048,
  modp3072: EXTRA_KE.MODP_3072,
  modp4096: EXTRA_KE.MODP_4096,
  ecp256: KeyExchangeId.ECP_256,
  ecp384: KeyExchangeId.ECP_384,
  ecp521: KeyExchangeId.ECP_521,
  x25519: KeyExchangeId.CURVE25519,
  curve25519: KeyExchangeId.CURVE25519,
  mlkem512: KeyExchangeId.ML_KEM_512,
  mlkem768: KeyExchangeId.ML_KEM_768,
  mlkem1024: KeyExchangeId.ML_KEM_1024,
};

/** Tokens strongSwan knows that ikegate deliberately does not offer, with the reason. */
const UNSUPPORTED: Record<string, string> = {
  x448: 'x448 is not implemented by the crypto provider',
  curve448: 'curve448 is not implemented by the crypto provider',
  modp1024: 'modp1024 is too weak (RFC 8247) and not supported',
  modp1536: 'modp1536 is too weak (RFC 8247) and not supported',
  md5: 'md5 is not supported (RFC 8247)',
  '3des': '3des is not supported (RFC 8247)',
};

type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

interface Tokens {
  encryption: ChildSaAlgorithm[];
  integrity: number[];
  prf: number[];
  keyExchange: number[];
  ke1: number[];
}

function pushUnique<T>(list: T[], item: T, same: (a: T, b: T) => boolean = (a, b) => a === b): void {
  if (!list.some((x) => same(x, item))) list.push(item);
}

function tokenize(text: string): Parsed<Tokens> {
  const t: Tokens = { encryption: [], integrity: [], prf: [], keyExchange: [], ke1: [] };
  if (text.trim() === '') return { ok: false, message: 'must not be empty' };
  for (const raw of text.split('-')) {
    const token = raw.trim().toLowerCase();
    if (token === '') return { ok: false, message: `empty token in "${text}"` };
    const keMatch = /^ke([1-7])_(.*)$/.exec(token);
    if (keMatch) {
      const ke = KEY_EXCHANGE[keMatch[2]!];
      if (ke === undefined) return { ok: false, message: `unknown key exchange "${keMatch[2]}" in "${raw}"` };
      if (keMatch[1] !== '1') {
        return { ok: false, message: `"${raw}": only one additional key exchange (ke1_) is supported` };
      }
      pushUnique(t.ke1, ke);
      continue;
    }
    const enc = ENCRYPTION[token];
    if (enc !== undefined) {
      pushUnique(t.encryption, enc, (a, b) => a.id === b.id && a.keyBits === b.keyBits);
      continue;
    }
    const integ = INTEGRITY[token];
    if (integ !== undefined) {
      pushUnique(t.integrity, integ);
      continue;
    }
    const prf = PRF[token];
    if (prf !== undefined) {
      pushUnique(t.prf, prf);
      continue;
    }
    const ke = KEY_EXCHANGE[token];
    if (ke !== undefined) {
      pushUnique(t.keyExchange, ke);
      continue;
    }
    if (token === 'noesn') continue; // ESN is not negotiated by ikegate; no-ESN is the default.
    const reason = UNSUPPORTED[token];
    return { ok: false, message: reason ?? `unknown algorithm "${raw}"` };
  }
  if (t.encryption.length === 0) return { ok: false, message: 'needs an encryption algorithm' };
  const aead = t.encryption.filter((e) => AEAD_IDS.has(e.id)).length;
  if (aead !== 0 && aead !== t.encryption.length) {
    return { ok: false, message: 'cannot mix AEAD and non-AEAD encryption in one proposal' };
  }
  if (aead !== 0 && t.integrity.length > 0) {
    return { ok: false, message: 'AEAD proposals take no integrity algorithm' };
  }
  if (aead === 0 && t.integrity.length === 0) {
    return { ok: false, message: 'non-AEAD encryption needs an integrity algorithm (e.g. sha256)' };
  }
  return { ok: true, value: t };
}

/** Non-throwing form used by the validator. */
export function tryParseIkeProposal(text: string): Parsed<IkeProposalPolicy> {
  const r = tokenize(text);
  if (!r.ok) return r;
  const t = r.value;
  let prf = t.prf;
  if (prf.length === 0) {
    if (t.integrity.length === 0) {
      return { ok: false, message: 'AEAD proposals need a PRF (e.g. prfsha256)' };
    }
    prf = [];
    for (const i of t.integrity) pushUnique(prf, PRF_FROM_INTEGRITY[i]!);
  }
  if (t.keyExchange.length === 0) {
    return { ok: false, message: 'needs a key exchange method (e.g. x25519)' };
  }
  return {
    ok: true,
    value: {
      encryption: t.encryption,
      prf,
      integrity: t.integrity,
      keyExchange: t.keyExchange,
      // RFC 9370 ADDKE1 (one additional key exchange, run in IKE_INTERMEDIATE).
      ...(t.ke1.length > 0 ? { additionalKeyExchanges: [t.ke1] } : {}),
    },
  };
}

/** Non-throwing form used by the validator. */
export function tryParseEspProposal(text: string): Parsed<EspProposalPolicy> {
  const r = tokenize(text);
  if (!r.ok) return r;
  const t = r.value;
  if (t.prf.length > 0) return { ok: false, message: 'ESP proposals take no PRF' };
  if (t.ke1.length > 0)
    return { ok: false, message: 'additional key exchanges (ke1_) are for IKE proposals' };
  // A key exchange method makes PFS part of the proposal (RFC 7296 §1.3.1: CREATE_CHILD_SA rekeys
  // carry a KE payload); IKE_AUTH never does, so the first child SA has none (§1.2). No ESN.
  return {
    ok: true,
    value: {
      encryption: t.encryption,
      integrity: t.integrity,
      ...(t.keyExchange.length > 0 ? { keyExchange: t.keyExchange } : {}),
      esn: [false],
    },
  };
}

/** Parses one IKE proposal string. Throws ConfigError (path `proposal`) naming the bad token. */
export function parseIkeProposal(text: string): IkeProposalPolicy {
  const r = tryParseIkeProposal(text);
  if (!r.ok) throw new ConfigError('<proposal>', [{ path: 'proposal', message: r.message }]);
  return r.value;
}

/** Parses one ESP proposal string. Throws ConfigError (path `proposal`) naming the bad token. */
export function parseEspProposal(text: string): EspProposalPolicy {
  const r = tryParseEspProposal(text);
  if (!r.ok) throw new ConfigError('<proposal>', [{ path: 'proposal', message: r.message }]);
  return r.value;
}
