/**
 * Paths between the edge's view (PeerPath: addresses as text, TLS named) and the IKE engine's
 * (IkePath: addresses as 4 or 16 octets, TLS is TCP to IKE). IPv6 addresses are kept in full —
 * they feed the COOKIE (RFC 7296 §2.6) and NAT detection hashes (§2.23); an IPv4-mapped IPv6
 * address is its IPv4 address.
 */
import type { PeerPath } from '@ikegate/cluster';
import { type IkePath, parseIpAddress } from '@ikegate/ikev2';

const UNSPECIFIED_V6 = new Uint8Array(16);

/**
 * Address octets by their text, so that paths with the same address share one read-only array:
 * the gateway's own address(es) for every SA, and a peer's between its IKE_SA_INIT and IKE_AUTH
 * paths (the SA's path and its cached response's source): 365 B less per held SA in a 5k-SA
 * heap snapshot (issue #14). Bounded, oldest out first: unauthenticated packets from spoofed
 * addresses can fill it to ADDRESS_CACHE_MAX and no further.
 */
export const ADDRESS_CACHE_MAX = 4096;
const addresses = new Map<string, Uint8Array>();

/** `cache`'s value for `key`, made and kept if missing; past ADDRESS_CACHE_MAX the oldest goes. */
function shared<V>(cache: Map<string, V>, key: string, make: () => V): V {
  let v = cache.get(key);
  if (v === undefined) {
    v = make();
    if (cache.size >= ADDRESS_CACHE_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(key, v);
  }
  return v;
}

/** The octets of an address as a socket reports it (shared; never written to); an unparsable one is ::. */
export function addressBytes(address: string): Uint8Array {
  return shared(addresses, address, () => parseAddress(address));
}

function parseAddress(address: string): Uint8Array {
  const a = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  const zone = a.indexOf('%');
  try {
    return parseIpAddress(zone < 0 ? a : a.slice(0, zone));
  } catch {
    return UNSPECIFIED_V6;
  }
}

/**
 * The gateway's own endpoint as the engine sees it (octets and port): one read-only object per
 * address and port instead of one per SA path (42 B per held SA, 5k-SA scale bench). Local
 * endpoints only, which are the few addresses and ports the edge listens on; bounded like the
 * address cache all the same.
 */
const locals = new Map<string, IkePath['local']>();

function localEndpoint(address: string, port: number): IkePath['local'] {
  return shared(locals, `${port} ${address}`, () => ({ address: addressBytes(address), port }));
}

export function toIkePath(p: PeerPath): IkePath {
  return {
    id: p.connection,
    transport: p.transport === 'udp' ? 'udp' : 'tcp',
    local: localEndpoint(p.local.address, p.local.port),
    remote: { address: addressBytes(p.remote.address), port: p.remote.port },
  };
}
