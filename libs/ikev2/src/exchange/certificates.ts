/**
 * Certificate authentication (RFC 7296 §3.6-3.8, RFC 7427 Digital Signature, method 14).
 *
 * IKE_SA_INIT: whoever has a certificate or trust anchors announces SIGNATURE_HASH_ALGORITHMS
 * (RFC 7427 §4); a responder with trust anchors adds a CERTREQ naming them (SHA-1 of each anchor's
 * SubjectPublicKeyInfo, §3.7), an initiator sends its CERTREQ in IKE_AUTH. IKE_AUTH: our CERT
 * payloads (X509_CERT_SIGNATURE, DER, end entity first) and AUTH method 14 over the §2.15 signed
 * octets; the peer's chain is verified against our anchors at `ctx.now`, its ID must match the end
 * entity certificate, and its AUTH must verify with that certificate's key. Any failure is an
 * authentication failure (AUTHENTICATION_FAILED), never an exception.
 */
import type { X509Certificate } from 'node:crypto';
import {
  certificateDer,
  loadCertificate,
  loadCertificates,
  subjectPublicKeyInfoSha1,
  verifyChain,
} from '@ikegate/crypto';
import {
  chooseSignatureScheme,
  idMatchesCertificate,
  signatureAuthData,
  verifySignatureAuth,
} from '../auth/index.js';
import {
  AuthMethod,
  type CertPayload,
  CertEncoding,
  decodeSignatureHashAlgorithms,
  encodeSignatureHashAlgorithms,
  type IdPayload,
  NotifyError,
  NotifyStatus,
  type Payload,
  PayloadType,
  SignatureHashAlgorithm,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { concat } from '../codec/protect.js';
import type { IkeSaContext } from '../sa/types.js';
import { findNotify, notify } from '../sa/work.js';

const OUR_HASHES = [
  SignatureHashAlgorithm.SHA2_256,
  SignatureHashAlgorithm.SHA2_384,
  SignatureHashAlgorithm.SHA2_512,
  SignatureHashAlgorithm.IDENTITY,
];

function authFailed(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_AUTH_FAILED', why, NotifyError.AUTHENTICATION_FAILED);
}

function usesCertificates(ctx: IkeSaContext): boolean {
  return ctx.certificate !== undefined || (ctx.trustAnchors?.length ?? 0) > 0;
}

/** CERTREQ naming our trust anchors, if we have any. */
export function certReqPayloads(ctx: IkeSaContext): Payload[] {
  const anchors = ctx.trustAnchors ?? [];
  if (anchors.length === 0) return [];
  return [
    {
      type: PayloadType.CERTREQ,
      critical: false,
      encoding: CertEncoding.X509_CERT_SIGNATURE,
      data: concat(anchors.map((a) => subjectPublicKeyInfoSha1(a))),
    },
  ];
}

/** What IKE_SA_INIT carries for certificate authentication (`responder`: also CERTREQ). */
export function certInitPayloads(ctx: IkeSaContext, responder: boolean): Payload[] {
  if (!usesCertificates(ctx)) return [];
  return [
    notify(NotifyStatus.SIGNATURE_HASH_ALGORITHMS, encodeSignatureHashAlgorithms(OUR_HASHES)),
    ...(responder ? certReqPayloads(ctx) : []),
  ];
}

/** The hash algorithms of the peer's SIGNATURE_HASH_ALGORITHMS (RFC 7427 §4), if it sent one. */
export function peerSignatureHashes(payloads: readonly Payload[]): number[] | undefined {
  const n = findNotify(payloads, NotifyStatus.SIGNATURE_HASH_ALGORITHMS);
  if (!n) return undefined;
  try {
    return decodeSignatureHashAlgorithms(n.data);
  } catch (e) {
    if (e instanceof RemoteProtocolError) return undefined;
    throw e;
  }
}

/** Our CERT payloads and AUTH (method 14) over `octets`. */
export function ourSignatureAuth(
  ctx: IkeSaContext,
  octets: Uint8Array,
  peerHashes: readonly number[] | undefined,
): Payload[] {
  const c = ctx.certificate!;
  const chain = loadCertificates(c.chainPem);
  if (chain.length === 0) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'no certificate in chainPem');
  // Without SIGNATURE_HASH_ALGORITHMS from the peer, SHA2-256 is the safe assumption.
  const scheme = chooseSignatureScheme(c.privateKey, peerHashes ?? [SignatureHashAlgorithm.SHA2_256]);
  if (!scheme) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'no signature scheme the peer accepts');
  return [
    ...chain.map((cert): CertPayload => ({
      type: PayloadType.CERT,
      critical: false,
      encoding: CertEncoding.X509_CERT_SIGNATURE,
      data: certificateDer(cert),
    })),
    {
      type: PayloadType.AUTH,
      critical: false,
      method: AuthMethod.DIGITAL_SIGNATURE,
      data: signatureAuthData(scheme, c.privateKey, octets),
    },
  ];
}

/**
 * Verifies the peer's certificate chain, ID binding and method-14 AUTH over `octets`.
 * @throws RemoteProtocolError (AUTHENTICATION_FAILED)
 */
export function verifyPeerSignature(
  ctx: IkeSaContext,
  payloads: readonly Payload[],
  id: IdPayload,
  authData: Uint8Array,
  octets: Uint8Array,
  /** The identity the ID payload claims, as text (which peer's anchors apply). */
  peerId: string,
): void {
  const anchors = ctx.trustAnchorsFor ? ctx.trustAnchorsFor(peerId) : (ctx.trustAnchors ?? []);
  if (anchors.length === 0) throw authFailed(`no trust anchors for certificate authentication of ${peerId}`);
  if (ctx.now === undefined) throw authFailed('no time to validate certificates at');
  const certs: X509Certificate[] = [];
  for (const p of payloads) {
    if (p.type !== PayloadType.CERT || 'unknown' in p) continue;
    const cp = p as CertPayload;
    if (cp.encoding !== CertEncoding.X509_CERT_SIGNATURE) continue;
    const cert = loadCertificate(cp.data);
    if (!cert) throw authFailed('undecodable CERT');
    certs.push(cert);
  }
  const [leaf, ...rest] = certs;
  if (!leaf) throw authFailed('no CERT');
  const chain = verifyChain(leaf, rest, anchors, new Date(ctx.now));
  if (chain.kind !== 'valid') throw authFailed(`certificate chain: ${chain.reason}`);
  if (!idMatchesCertificate(id.idType, id.data, leaf)) throw authFailed('ID does not match the certificate');
  verifySignatureAuth(leaf.publicKey, authData, octets);
}
