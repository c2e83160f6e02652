/**
 * IKE_AUTH authentication (RFC 7296 §2.15, §3.5, §3.6, §3.8; RFC 7427; RFC 9242 §3.3.2).
 *
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI [| IntAuth]
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR [| IntAuth]
 *   MACedIDForI = prf(SK_pi, RestOfInitIDPayload)   RestOfInitIDPayload = IDType | RESERVED | InitIDData
 *   PSK: AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets> )
 *   RFC 7427: AUTH data = ASN.1 length (1 octet) | AlgorithmIdentifier | signature
 *   RFC 9242: IntAuth_i1 = prf(SK_pi1, IntAuth_i1_A | IntAuth_i1_P)
 *             IntAuth_in = prf(SK_pin, IntAuth_i(n-1) | IntAuth_in_A | IntAuth_in_P)   (and _r with SK_pr)
 *             IntAuth    = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID
 *
 * The PSK, signature-AUTH and ID-vs-SAN primitives live in ../auth (same package, already
 * checked against strongSwan); this file adds the role-named signed octets, IntAuth, ID_DER_ASN1_DN
 * matching and the certificate path check that the IKE_AUTH tasks call. Signing and X.509 path
 * building are @ikegate/crypto's. Peer input never makes anything here throw except
 * RemoteProtocolError (AUTHENTICATION_FAILED), as the ../auth parsers do.
 */
import type { KeyObject, X509Certificate } from 'node:crypto';
import { loadCertificate, type PrfAlgorithm, verifyChain } from '@ikegate/crypto';
import { idMatchesCertificate } from '../auth/identity.js';
import { idPayloadBody, signedOctets } from '../auth/signed-octets.js';
import { CertEncoding, IdType } from '../codec/constants.js';
import type { CertPayload } from '../codec/types.js';
import { LocalUsageError } from '../errors.js';
import { concatBytes, equalConstantTime } from './bytes.js';

export { pskAuthData, verifyPskAuth } from '../auth/psk.js';
export {
  chooseSignatureScheme,
  parseSignatureAuthData,
  signatureAuthData,
  verifySignatureAuth,
} from '../auth/signature.js';
export { idPayloadBody };

/**
 * InitiatorSignedOctets (RFC 7296 §2.15).
 * @param realMessage1 our IKE_SA_INIT request exactly as sent (no non-ESP marker)
 * @param idIPayloadBody ID Type | 3 reserved octets | data (see idPayloadBody)
 * @param intAuth IntAuth from intAuthSuffix when IKE_INTERMEDIATE exchanges took place
 */
export function initiatorSignedOctets(
  prf: PrfAlgorithm,
  realMessage1: Uint8Array,
  nonceR: Uint8Array,
  skPi: Uint8Array,
  idIPayloadBody: Uint8Array,
  intAuth?: Uint8Array,
): Uint8Array {
  return signedOctets(prf, realMessage1, nonceR, skPi, idIPayloadBody, intAuth);
}

/** ResponderSignedOctets (RFC 7296 §2.15): RealMessage2 | NonceIData | prf(SK_pr, IDr body) [| IntAuth]. */
export function responderSignedOctets(
  prf: PrfAlgorithm,
  realMessage2: Uint8Array,
  nonceI: Uint8Array,
  skPr: Uint8Array,
  idRPayloadBody: Uint8Array,
  intAuth?: Uint8Array,
): Uint8Array {
  return signedOctets(prf, realMessage2, nonceI, skPr, idRPayloadBody, intAuth);
}

const IKE_HEADER_LENGTH = 28;
const GENERIC_HEADER_LENGTH = 4;

/**
 * One RFC 9242 §3.3.2 step for an IKE_INTERMEDIATE message (ours or the peer's):
 *   IntAuth_n = prf(SK_p, [IntAuth_(n-1) |] IntAuth_n_A | IntAuth_n_P)
 * @param skP SK_pi for messages sent by the original initiator, SK_pr for the responder's, as in
 *   force when the message was protected
 * @param previous IntAuth of the same side from the previous IKE_INTERMEDIATE, undefined for the first
 * @param messagePrefix the message from the first octet of the IKE header up to and including the
 *   Encrypted payload's generic header (reassembled as unfragmented if it came in SKF fragments);
 *   the IKE header Length and the SK Payload Length are rewritten here to leave out IV, padding,
 *   Pad Length and ICV, as §3.3.2 asks. Only read.
 * @param innerPayloads the decrypted inner payloads (no IV, padding, Pad Length, ICV)
 * @throws LocalUsageError when messagePrefix is shorter than an IKE header plus a generic header
 */
export function intAuthStep(
  prf: PrfAlgorithm,
  skP: Uint8Array,
  previous: Uint8Array | undefined,
  messagePrefix: Uint8Array,
  innerPayloads: Uint8Array,
): Uint8Array {
  if (messagePrefix.length < IKE_HEADER_LENGTH + GENERIC_HEADER_LENGTH) {
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'IntAuth: message prefix too short');
  }
  const a = messagePrefix.slice();
  const total = a.length + innerPayloads.length;
  const v = new DataView(a.buffer, a.byteOffset, a.byteLength);
  v.setUint32(24, total);
  v.setUint16(a.length - 2, GENERIC_HEADER_LENGTH + innerPayloads.length);
  return previous === undefined
    ? prf.compute(skP, a, innerPayloads)
    : prf.compute(skP, previous, a, innerPayloads);
}

/** IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID (RFC 9242 §3.3.2), appended to both signed octets. */
export function intAuthSuffix(
  intAuthI: Uint8Array,
  intAuthR: Uint8Array,
  ikeAuthMessageId: number,
): Uint8Array {
  const mid = new Uint8Array(4);
  new DataView(mid.buffer).setUint32(0, ikeAuthMessageId >>> 0);
  return concatBytes([intAuthI, intAuthR, mid]);
}

/** Reads one DER TLV header; undefined when it does not fit (certificates are peer input). */
function tlv(b: Uint8Array, off: number): { tag: number; start: number; end: number } | undefined {
  if (off + 2 > b.length) return undefined;
  const tag = b[off]!;
  let len = b[off + 1]!;
  let start = off + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > b.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  const end = start + len;
  return end <= b.length ? { tag, start, end } : undefined;
}

/**
 * The DER of a certificate's subject Name (RFC 5280 §4.1: tbsCertificate's sixth field, fifth
 * without the explicit version), or undefined if the structure is not as expected.
 */
export function certificateSubjectDer(certDer: Uint8Array): Uint8Array | undefined {
  const cert = tlv(certDer, 0);
  if (cert === undefined || cert.tag !== 0x30) return undefined;
  const tbs = tlv(certDer, cert.start);
  if (tbs === undefined || tbs.tag !== 0x30) return undefined;
  let off = tbs.start;
  const first = tlv(certDer, off);
  if (first === undefined) return undefined;
  if (first.tag === 0xa0) off = first.end; // [0] EXPLICIT version
  // serialNumber, signature, issuer, validity, then subject
  for (let i = 0; i < 4; i++) {
    const f = tlv(certDer, off);
    if (f === undefined || f.end > tbs.end) return undefined;
    off = f.end;
  }
  const subject = tlv(certDer, off);
  if (subject === undefined || subject.tag !== 0x30 || subject.end > tbs.end) return undefined;
  return certDer.subarray(off, subject.end);
}

/**
 * Does the peer's ID name its certificate? (RFC 7296 §3.5, RFC 4945 §3.1): ID_FQDN ↔ dNSName,
 * ID_RFC822_ADDR ↔ rfc822Name, ID_IPV4_ADDR / ID_IPV6_ADDR ↔ iPAddress, ID_DER_ASN1_DN ↔ the
 * subject's DER octets, compared exactly. Other ID types never match.
 */
export function peerIdMatchesCertificate(idType: number, idData: Uint8Array, cert: X509Certificate): boolean {
  if (idType === IdType.ID_DER_ASN1_DN) {
    const subject = certificateSubjectDer(new Uint8Array(cert.raw));
    return subject !== undefined && equalConstantTime(subject, idData);
  }
  return idMatchesCertificate(idType, idData, cert);
}

export type PeerCertificateCheck =
  | {
      readonly kind: 'valid';
      readonly certificate: X509Certificate;
      readonly publicKey: KeyObject;
      /** Leaf first, ending with the trust anchor. */
      readonly chain: readonly X509Certificate[];
    }
  | {
      readonly kind: 'invalid';
      readonly reason:
        | 'no-certificate'
        | 'unsupported-encoding'
        | 'unparseable'
        | 'id-mismatch'
        | 'expired'
        | 'not-yet-valid'
        | 'no-issuer'
        | 'bad-signature'
        | 'issuer-not-ca'
        | 'too-long';
      readonly detail: string;
    };

/** Most intermediates we look at from one peer (a bound on work; RFC 7296 sets none). */
export const MAX_INTERMEDIATE_CERTIFICATES = 8;

/**
 * Validates the peer's end-entity certificate (the first CERT payload, RFC 7296 §3.6) with the
 * following X.509 CERT payloads as intermediates, against `trustAnchors` at `now`, and checks that
 * the peer's ID payload names it. 'invalid' means answer AUTHENTICATION_FAILED. Never throws for
 * peer input. Revocation is not checked here (see @ikegate/crypto verifyChain).
 */
export function verifyPeerCertificate(
  certPayloads: readonly CertPayload[],
  idType: number,
  idData: Uint8Array,
  trustAnchors: readonly X509Certificate[],
  now: Date,
): PeerCertificateCheck {
  const [first, ...rest] = certPayloads;
  if (first === undefined) return { kind: 'invalid', reason: 'no-certificate', detail: 'no CERT payload' };
  if (first.encoding !== CertEncoding.X509_CERT_SIGNATURE)
    return {
      kind: 'invalid',
      reason: 'unsupported-encoding',
      detail: `certificate encoding ${first.encoding}`,
    };
  const leaf = loadCertificate(first.data);
  if (leaf === undefined) return { kind: 'invalid', reason: 'unparseable', detail: 'end-entity certificate' };
  if (!peerIdMatchesCertificate(idType, idData, leaf))
    return {
      kind: 'invalid',
      reason: 'id-mismatch',
      detail: `ID type ${idType} does not name ${leaf.subject}`,
    };
  const intermediates: X509Certificate[] = [];
  for (const c of rest.slice(0, MAX_INTERMEDIATE_CERTIFICATES)) {
    if (c.encoding !== CertEncoding.X509_CERT_SIGNATURE) continue;
    const x = loadCertificate(c.data);
    if (x !== undefined) intermediates.push(x);
  }
  const r = verifyChain(leaf, intermediates, trustAnchors, now);
  if (r.kind === 'invalid') return { kind: 'invalid', reason: r.reason, detail: r.detail };
  return { kind: 'valid', certificate: leaf, publicKey: leaf.publicKey, chain: r.chain };
}
