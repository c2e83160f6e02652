/**
 * RFC 7427 §3 Digital Signature authentication (Auth Method 14).
 *
 *  | ASN.1 Length (1 octet) | AlgorithmIdentifier (ASN.1 DER, that many octets) | Signature Value ~
 *
 * The AlgorithmIdentifier names the scheme (RFC 7427 Appendix A); the signature is over the
 * signed octets of RFC 7296 §2.15. A peer's AUTH that cannot be parsed, or names a scheme we do
 * not know, fails authentication (AUTHENTICATION_FAILED): it was already inside an authenticated
 * SK payload, so it is the peer's authentication that is wrong, not the message syntax.
 */
import type { KeyObject } from 'node:crypto';
import {
  SIGNATURE_SCHEMES,
  type SignatureScheme,
  schemeFromAlgorithmIdentifier,
  sign,
  verify,
} from '@ikegate/crypto';
import { NotifyError } from '../codec/constants.js';
import { RemoteProtocolError } from '../errors.js';

/** AUTH data for method 14: length | AlgorithmIdentifier | signature. */
export function signatureAuthData(
  scheme: SignatureScheme,
  privateKey: KeyObject,
  octets: Uint8Array,
): Uint8Array {
  const sig = sign(scheme, privateKey, octets);
  const ai = scheme.algorithmIdentifier;
  const out = new Uint8Array(1 + ai.length + sig.length);
  out[0] = ai.length;
  out.set(ai, 1);
  out.set(sig, 1 + ai.length);
  return out;
}

function authFailed(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_AUTH_FAILED', why, NotifyError.AUTHENTICATION_FAILED);
}

/** Splits method-14 AUTH data. @throws RemoteProtocolError (AUTHENTICATION_FAILED) */
export function parseSignatureAuthData(data: Uint8Array): { scheme: SignatureScheme; signature: Uint8Array } {
  if (data.length < 1) throw authFailed('empty AUTH data');
  const aiLength = data[0]!;
  if (aiLength === 0 || 1 + aiLength >= data.length)
    throw authFailed(`AlgorithmIdentifier of ${aiLength} octets`);
  const scheme = schemeFromAlgorithmIdentifier(data.subarray(1, 1 + aiLength));
  if (scheme === undefined) throw authFailed('unknown signature algorithm');
  return { scheme, signature: data.subarray(1 + aiLength) };
}

/**
 * Verifies method-14 AUTH data against the peer's public key (from its validated certificate).
 * @throws RemoteProtocolError (AUTHENTICATION_FAILED) when it does not verify
 */
export function verifySignatureAuth(
  publicKey: KeyObject,
  data: Uint8Array,
  octets: Uint8Array,
): SignatureScheme {
  const { scheme, signature } = parseSignatureAuthData(data);
  if (!scheme.keyTypes.includes(publicKey.asymmetricKeyType ?? ''))
    throw authFailed(`${scheme.name} does not fit the key`);
  if (!verify(scheme, publicKey, octets, signature)) throw authFailed('signature does not verify');
  return scheme;
}

/**
 * Our scheme for a private key, given the hash algorithms the peer announced in
 * SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4): the first scheme of our preference list whose key type
 * matches and whose hash the peer accepts; undefined if none.
 */
export function chooseSignatureScheme(
  privateKey: KeyObject,
  peerHashes: readonly number[],
): SignatureScheme | undefined {
  const type = privateKey.asymmetricKeyType ?? '';
  const curve = privateKey.asymmetricKeyDetails?.namedCurve;
  const preferredHash = curve === 'secp384r1' ? 3 : curve === 'secp521r1' ? 4 : 2;
  const fits = SIGNATURE_SCHEMES.filter(
    (s) => s.keyTypes.includes(type) && peerHashes.includes(s.hashAlgorithmId),
  );
  return fits.find((s) => s.hashAlgorithmId === preferredHash) ?? fits[0];
}
