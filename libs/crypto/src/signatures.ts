/**
 * RFC 7427 digital signatures for IKEv2 AUTH (auth method 14): the Authentication Data is
 * "ASN.1 length (1 octet) | AlgorithmIdentifier | signature value". This file holds the schemes
 * ikegate signs and verifies with, each with the exact AlgorithmIdentifier DER of RFC 7427
 * Appendix A (and RFC 8420 for Ed25519), and sign/verify over node:crypto KeyObjects.
 *
 * ECDSA signatures are DER-encoded Ecdsa-Sig-Value (RFC 7427 §3: "the signature value is the
 * DER-encoded ECDSA-Sig-Value", unlike RFC 4754's r | s). RSASSA-PSS uses SHA-256 with MGF1-SHA-256
 * and a 32-octet salt, as its AlgorithmIdentifier says (RFC 8247 §3.2 recommends it).
 *
 * Randomness: ECDSA and RSASSA-PSS signing draw their nonce/salt inside OpenSSL; node:crypto has no
 * way to inject it. Signing is done by services at IKE_AUTH time, never by the deterministic cores.
 */
import { constants, type KeyObject, sign as nodeSign, verify as nodeVerify } from 'node:crypto';
import { LocalUsageError } from './errors.js';
import type { HashName } from './provider.js';

export type SignatureSchemeName =
  | 'ecdsa-with-sha256'
  | 'ecdsa-with-sha384'
  | 'ecdsa-with-sha512'
  | 'sha256WithRSAEncryption'
  | 'sha384WithRSAEncryption'
  | 'sha512WithRSAEncryption'
  | 'rsassa-pss-sha256'
  | 'ed25519';

export interface SignatureScheme {
  readonly name: SignatureSchemeName;
  /** The hash the signature is computed with; null for Ed25519 (PureEdDSA signs the message). */
  readonly hash: HashName | null;
  /** RFC 7296 §3.10 / RFC 7427 §4 Hash Algorithm Identifier for SIGNATURE_HASH_ALGORITHMS (Ed25519: 5, Identity). */
  readonly hashAlgorithmId: number;
  /** Key types (KeyObject.asymmetricKeyType) this scheme accepts. */
  readonly keyTypes: readonly string[];
  /** The AlgorithmIdentifier DER bytes sent in the AUTH payload. */
  readonly algorithmIdentifier: Uint8Array;
}

const hex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

/**
 * RFC 7427 Appendix A. A.4.3 (RSASSA-PSS with SHA-256) is printed in the RFC with a trailerField
 * and lengths 0x46/0x39; the RFC's errata drop the trailer (DEFAULT) and fix the lengths to
 * 0x41/0x34, which is what strongSwan and libreswan send. We send the corrected form and accept
 * both on input (see ALSO_ACCEPTED).
 */
export const SIGNATURE_SCHEMES: readonly SignatureScheme[] = [
  {
    name: 'ecdsa-with-sha256',
    hash: 'sha256',
    hashAlgorithmId: 2,
    keyTypes: ['ec'],
    algorithmIdentifier: hex('300a06082a8648ce3d040302'), // A.3.2
  },
  {
    name: 'ecdsa-with-sha384',
    hash: 'sha384',
    hashAlgorithmId: 3,
    keyTypes: ['ec'],
    algorithmIdentifier: hex('300a06082a8648ce3d040303'), // A.3.3
  },
  {
    name: 'ecdsa-with-sha512',
    hash: 'sha512',
    hashAlgorithmId: 4,
    keyTypes: ['ec'],
    algorithmIdentifier: hex('300a06082a8648ce3d040304'), // A.3.4
  },
  {
    name: 'sha256WithRSAEncryption',
    hash: 'sha256',
    hashAlgorithmId: 2,
    keyTypes: ['rsa'],
    algorithmIdentifier: hex('300d06092a864886f70d01010b0500'), // A.1.2
  },
  {
    name: 'sha384WithRSAEncryption',
    hash: 'sha384',
    hashAlgorithmId: 3,
    keyTypes: ['rsa'],
    algorithmIdentifier: hex('300d06092a864886f70d01010c0500'), // A.1.3
  },
  {
    name: 'sha512WithRSAEncryption',
    hash: 'sha512',
    hashAlgorithmId: 4,
    keyTypes: ['rsa'],
    algorithmIdentifier: hex('300d06092a864886f70d01010d0500'), // A.1.4
  },
  {
    name: 'rsassa-pss-sha256',
    hash: 'sha256',
    hashAlgorithmId: 2,
    keyTypes: ['rsa', 'rsa-pss'],
    // A.4.3 (errata form): id-RSASSA-PSS { hashAlgorithm sha256, maskGenAlgorithm mgf1SHA256, saltLength 32 }
    algorithmIdentifier: hex(
      '304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a864886f70d010108' +
        '300d06096086480165030402010500a203020120',
    ),
  },
  {
    name: 'ed25519',
    hash: null,
    hashAlgorithmId: 5,
    keyTypes: ['ed25519'],
    algorithmIdentifier: hex('300506032b6570'), // RFC 8420 §2 / RFC 8410 id-Ed25519
  },
];

/** RFC 7427 A.4.3 exactly as printed (with trailerField 1), accepted as RSASSA-PSS SHA-256 too. */
const ALSO_ACCEPTED: readonly { der: Uint8Array; name: SignatureSchemeName }[] = [
  {
    der: hex(
      '304606092a864886f70d01010a3039a00f300d06096086480165030402010500a11c301a06092a864886f70d010108' +
        '300d06096086480165030402010500a203020120a303020101',
    ),
    name: 'rsassa-pss-sha256',
  },
];

export function signatureScheme(name: SignatureSchemeName): SignatureScheme {
  const s = SIGNATURE_SCHEMES.find((x) => x.name === name);
  if (s === undefined) throw new LocalUsageError('IKEGATE_ERR_CRYPTO_UNSUPPORTED', `unknown scheme ${name}`);
  return s;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

/** The scheme whose AlgorithmIdentifier is exactly `der`, or undefined (peer input: never throws). */
export function schemeFromAlgorithmIdentifier(der: Uint8Array): SignatureScheme | undefined {
  const s = SIGNATURE_SCHEMES.find((x) => equal(x.algorithmIdentifier, der));
  if (s !== undefined) return s;
  const alt = ALSO_ACCEPTED.find((x) => equal(x.der, der));
  return alt && signatureScheme(alt.name);
}

function options(scheme: SignatureScheme, key: KeyObject) {
  if (scheme.name === 'rsassa-pss-sha256') {
    return { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
  }
  if (scheme.keyTypes[0] === 'ec') return { key, dsaEncoding: 'der' as const };
  return { key };
}

/**
 * Signs `data` (the RFC 7296 §2.15 octets) with `privateKey`. Throws LocalUsageError
 * (IKEGATE_ERR_CRYPTO_BAD_SIGNATURE_INPUT) when the key type does not fit the scheme.
 */
export function sign(scheme: SignatureScheme, privateKey: KeyObject, data: Uint8Array): Uint8Array {
  if (privateKey.type !== 'private' || !scheme.keyTypes.includes(privateKey.asymmetricKeyType ?? '')) {
    throw new LocalUsageError(
      'IKEGATE_ERR_CRYPTO_BAD_SIGNATURE_INPUT',
      `${scheme.name} cannot sign with a ${privateKey.type} ${privateKey.asymmetricKeyType} key`,
    );
  }
  const sig = nodeSign(scheme.hash, data, options(scheme, privateKey));
  return new Uint8Array(sig.buffer, sig.byteOffset, sig.byteLength);
}

/**
 * Verifies `signature` over `data`. Returns false for a bad signature, a malformed one, or a key
 * that does not fit the scheme; never throws (the signature comes from the peer).
 */
export function verify(
  scheme: SignatureScheme,
  publicKey: KeyObject,
  data: Uint8Array,
  signature: Uint8Array,
): boolean {
  if (!scheme.keyTypes.includes(publicKey.asymmetricKeyType ?? '')) return false;
  try {
    return nodeVerify(scheme.hash, data, options(scheme, publicKey), signature);
  } catch {
    return false;
  }
}
