/**
 * NAT detection (RFC 7296 §2.23): NAT_DETECTION_SOURCE_IP and NAT_DETECTION_DESTINATION_IP carry
 *   SHA-1( SPIi | SPIr | IP | Port )
 * over the addresses and ports of the transport as the sender sees them. In IKE_SA_INIT requests
 * SPIr is zero. Over TCP (RFC 9329 §3.x) the ports are the TCP connection's ports; the hashing is
 * the same. A received SOURCE_IP list that contains no hash of the packet's source means the peer
 * is behind a NAT; a DESTINATION_IP that is not the hash of the packet's destination means we are.
 */
import type { CryptoProvider } from '@ikegate/crypto';
import { equalConstantTime } from './bytes.js';
import { parseIpAddress } from './ip-address.js';

/** Octets of NAT detection data (SHA-1 output). */
export const NAT_DETECTION_HASH_LENGTH = 20;

/** An address as text ("192.0.2.1", "2001:db8::1") or 4/16 octets, and a transport port. */
export interface TransportEndpoint {
  readonly address: string | Uint8Array;
  readonly port: number;
}

const addressBytes = (a: string | Uint8Array) => (typeof a === 'string' ? parseIpAddress(a) : a);

/**
 * SHA-1(SPIi | SPIr | IP | Port) (RFC 7296 §2.23). `spir` is 8 zero octets in an IKE_SA_INIT
 * request. Returns a fresh 20-octet array.
 * @throws LocalUsageError for an address string that does not parse
 */
export function natDetectionHash(
  provider: CryptoProvider,
  spii: Uint8Array,
  spir: Uint8Array,
  endpoint: TransportEndpoint,
): Uint8Array {
  const port = Uint8Array.of((endpoint.port >>> 8) & 0xff, endpoint.port & 0xff);
  return provider.hash('sha1', spii, spir, addressBytes(endpoint.address), port);
}

/** The notify data we send: SOURCE_IP over our (local) endpoint, DESTINATION_IP over the peer's. */
export function buildNatDetection(
  provider: CryptoProvider,
  spii: Uint8Array,
  spir: Uint8Array,
  local: TransportEndpoint,
  remote: TransportEndpoint,
): { readonly source: Uint8Array; readonly destination: Uint8Array } {
  return {
    source: natDetectionHash(provider, spii, spir, local),
    destination: natDetectionHash(provider, spii, spir, remote),
  };
}

export interface NatDetectionResult {
  /** False when the peer sent no NAT_DETECTION_* notify: nothing can be concluded (and no NAT-T). */
  readonly peerSupportsNatDetection: boolean;
  /** Our address/port was translated on the way (DESTINATION_IP mismatch): we send keepalives. */
  readonly localBehindNat: boolean;
  /** The peer's address/port was translated (no SOURCE_IP matched). */
  readonly remoteBehindNat: boolean;
}

/**
 * Evaluates the NAT detection notifies of a received message.
 * @param local the packet's destination (our endpoint as the packet arrived)
 * @param remote the packet's source (the peer's endpoint as seen by us)
 * @param sources every NAT_DETECTION_SOURCE_IP data received (there may be several, §2.23)
 * @param destination the NAT_DETECTION_DESTINATION_IP data, if any
 * Malformed data (not 20 octets) simply does not match. Never throws for peer input.
 */
export function evaluateNatDetection(
  provider: CryptoProvider,
  spii: Uint8Array,
  spir: Uint8Array,
  local: TransportEndpoint,
  remote: TransportEndpoint,
  sources: readonly Uint8Array[],
  destination: Uint8Array | undefined,
): NatDetectionResult {
  if (sources.length === 0 && destination === undefined) {
    return { peerSupportsNatDetection: false, localBehindNat: false, remoteBehindNat: false };
  }
  const src = natDetectionHash(provider, spii, spir, remote);
  const dst = natDetectionHash(provider, spii, spir, local);
  return {
    peerSupportsNatDetection: true,
    remoteBehindNat: sources.length > 0 && !sources.some((s) => equalConstantTime(s, src)),
    localBehindNat: destination !== undefined && !equalConstantTime(destination, dst),
  };
}
