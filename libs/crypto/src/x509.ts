/**
 * Small X.509 helpers over node's X509Certificate, for IKEv2 certificate authentication
 * (RFC 7296 §3.6 CERT, §3.7 CERTREQ, RFC 4945 profile): load PEM/DER, verify a chain to trust
 * anchors at an injected time, read subject and subjectAltName, and the SHA-1 of a CA's
 * SubjectPublicKeyInfo that CERTREQ carries.
 *
 * Chain verification checks, per link: the issuer's name matches and its key verifies the
 * signature (X509Certificate.checkIssued + verify), the issuer is a CA (basicConstraints), and every
 * certificate is within its validity at `now`. It does not check revocation, name constraints,
 * policies or key usage beyond basicConstraints; the caller's policy layer does what it needs.
 * No clock is read here: `now` is a parameter (STYLE.md rule 1).
 */
import { createHash, X509Certificate } from 'node:crypto';

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Parses one certificate from PEM text or DER octets. Returns undefined for anything that is not a
 * certificate, never throws (CERT payloads come from the peer).
 */
export function loadCertificate(data: string | Uint8Array): X509Certificate | undefined {
  try {
    return new X509Certificate(typeof data === 'string' ? data : Buffer.from(data));
  } catch {
    return undefined;
  }
}

/** Every certificate in a PEM bundle, in order; blocks that do not parse are skipped. */
export function loadCertificates(pem: string): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const block of pem.match(PEM_BLOCK) ?? []) {
    const c = loadCertificate(block);
    if (c !== undefined) out.push(c);
  }
  return out;
}

/** DER octets of a certificate (what a CERT payload with encoding 4 carries). */
export function certificateDer(cert: X509Certificate): Uint8Array {
  return new Uint8Array(cert.raw);
}

export type ChainVerification =
  | { readonly kind: 'valid'; readonly chain: readonly X509Certificate[] }
  | { readonly kind: 'invalid'; readonly reason: ChainFailure; readonly detail: string };

export type ChainFailure =
  'expired' | 'not-yet-valid' | 'no-issuer' | 'bad-signature' | 'issuer-not-ca' | 'too-long';

/** RFC 5280 does not cap path length; we do, so a peer cannot make us walk a long list. */
export const MAX_CHAIN_LENGTH = 8;

function within(cert: X509Certificate, now: Date): ChainFailure | undefined {
  const t = now.getTime();
  if (t < Date.parse(cert.validFrom)) return 'not-yet-valid';
  if (t > Date.parse(cert.validTo)) return 'expired';
  return undefined;
}

function sameCertificate(a: X509Certificate, b: X509Certificate): boolean {
  return a.raw.equals(b.raw);
}

/**
 * Builds and verifies a path from `leaf` through `intermediates` (any order, as received in CERT
 * payloads) to one of `trustAnchors`, at time `now`. Returns the chain leaf-first, ending with the
 * anchor. Never throws for bad certificates.
 */
export function verifyChain(
  leaf: X509Certificate,
  intermediates: readonly X509Certificate[],
  trustAnchors: readonly X509Certificate[],
  now: Date,
): ChainVerification {
  const chain: X509Certificate[] = [leaf];
  let current = leaf;
  for (let depth = 0; depth < MAX_CHAIN_LENGTH; depth++) {
    const time = within(current, now);
    if (time !== undefined) return { kind: 'invalid', reason: time, detail: current.subject };
    if (trustAnchors.some((a) => sameCertificate(a, current))) return { kind: 'valid', chain };
    const anchor = trustAnchors.find((a) => current.checkIssued(a));
    const candidates = anchor !== undefined ? [anchor] : intermediates.filter((c) => current.checkIssued(c));
    if (candidates.length === 0) return { kind: 'invalid', reason: 'no-issuer', detail: current.issuer };
    const issuer = candidates.find((c) => safeVerify(current, c));
    if (issuer === undefined) return { kind: 'invalid', reason: 'bad-signature', detail: current.subject };
    if (!issuer.ca) return { kind: 'invalid', reason: 'issuer-not-ca', detail: issuer.subject };
    chain.push(issuer);
    if (trustAnchors.some((a) => sameCertificate(a, issuer))) {
      const t = within(issuer, now);
      return t === undefined
        ? { kind: 'valid', chain }
        : { kind: 'invalid', reason: t, detail: issuer.subject };
    }
    current = issuer;
  }
  return { kind: 'invalid', reason: 'too-long', detail: `more than ${MAX_CHAIN_LENGTH} certificates` };
}

function safeVerify(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

/** The subject DN as node prints it (one "attr=value" per line). */
export function subjectOf(cert: X509Certificate): string {
  return cert.subject;
}

export interface SubjectAltNames {
  readonly dns: readonly string[];
  readonly ip: readonly string[];
  readonly email: readonly string[];
  readonly uri: readonly string[];
}

/** subjectAltName entries by kind (RFC 4945 §5.1.2: IDs are matched against these). */
export function subjectAltNames(cert: X509Certificate): SubjectAltNames {
  const dns: string[] = [];
  const ip: string[] = [];
  const email: string[] = [];
  const uri: string[] = [];
  for (const raw of (cert.subjectAltName ?? '').split(', ')) {
    const i = raw.indexOf(':');
    if (i < 0) continue;
    const kind = raw.slice(0, i);
    let value = raw.slice(i + 1);
    // Node quotes values that contain separators as JSON strings.
    if (value.startsWith('"')) {
      try {
        value = JSON.parse(value) as string;
      } catch {
        continue;
      }
    }
    if (kind === 'DNS') dns.push(value);
    else if (kind === 'IP Address') ip.push(value);
    else if (kind === 'email') email.push(value);
    else if (kind === 'URI') uri.push(value);
  }
  return { dns, ip, email, uri };
}

/** SHA-1 of the DER SubjectPublicKeyInfo: the CA identifier in CERTREQ and "Hash and URL" (RFC 7296 §3.7). */
export function subjectPublicKeyInfoSha1(cert: X509Certificate): Uint8Array {
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return new Uint8Array(createHash('sha1').update(spki).digest());
}
