/**
 * Does the peer's ID payload name the subject of its certificate? (RFC 7296 §3.5, RFC 4945
 * §3.1 and §5.1.2): ID_FQDN against dNSName, ID_RFC822_ADDR against rfc822Name, ID_IPV4_ADDR /
 * ID_IPV6_ADDR against iPAddress subjectAltNames. Comparison of names is case-insensitive.
 * ID_DER_ASN1_DN is not matched yet (node exposes the subject only as text): it returns false.
 */
import type { X509Certificate } from 'node:crypto';
import { subjectAltNames } from '@ikegate/crypto';
import { IdType } from '../codec/constants.js';

function ipv6Text(b: Uint8Array): string {
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return words.join(':');
}

function normalizeIpv6(text: string): string {
  // expand "::" so both sides compare in the same full form
  const [head = '', tail] = text.toLowerCase().split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const fill = tail === undefined ? [] : new Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((w) => Number.parseInt(w, 16).toString(16)).join(':');
}

export function idMatchesCertificate(idType: number, idData: Uint8Array, cert: X509Certificate): boolean {
  const san = subjectAltNames(cert);
  const text = () => new TextDecoder().decode(idData).toLowerCase();
  switch (idType) {
    case IdType.ID_FQDN:
      return san.dns.some((d) => d.toLowerCase() === text());
    case IdType.ID_RFC822_ADDR:
      return san.email.some((e) => e.toLowerCase() === text());
    case IdType.ID_IPV4_ADDR:
      return idData.length === 4 && san.ip.includes(Array.from(idData).join('.'));
    case IdType.ID_IPV6_ADDR:
      return (
        idData.length === 16 &&
        san.ip.some((ip) => ip.includes(':') && normalizeIpv6(ip) === normalizeIpv6(ipv6Text(idData)))
      );
    default:
      return false;
  }
}
