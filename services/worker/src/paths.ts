/**
 * Paths between the edge's view (PeerPath: addresses as text, TLS named) and the IKE engine's
 * (IkePath: addresses as 4 or 16 octets, TLS is TCP to IKE). IPv6 addresses are kept in full —
 * they feed the COOKIE (RFC 7296 §2.6) and NAT detection hashes (§2.23); an IPv4-mapped IPv6
 * address is its IPv4 address.
 */
import type { PeerPath } from '@ikegate/cluster';
import { type IkePath, parseIpAddress } from '@ikegate/ikev2';

const UNSPECIFIED_V6 = new Uint8Array(16);

/** The octets of an address as a socket reports it; an unparsable one (never expected) is ::. */
export function addressBytes(address: string): Uint8Array {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  const zone = a.indexOf('%');
  try {
    return parseIpAddress(zone < 0 ? a : a.slice(0, zone));
  } catch {
    return UNSPECIFIED_V6;
  }
}

export function toIkePath(p: PeerPath): IkePath {
  return {
    id: p.connection,
    transport: p.transport === 'udp' ? 'udp' : 'tcp',
    local: { address: addressBytes(p.local.address), port: p.local.port },
    remote: { address: addressBytes(p.remote.address), port: p.remote.port },
  };
}
