/** IPv4 helpers for the data plane: addresses as unsigned 32-bit numbers, selectors as ranges. */
import type { TrafficSelector } from '@ikegate/ikev2';

export const TS_IPV4_ADDR_RANGE = 7;

export function ipv4ToNumber(a: Uint8Array, offset = 0): number {
  return (
    (((a[offset] ?? 0) << 24) |
      ((a[offset + 1] ?? 0) << 16) |
      ((a[offset + 2] ?? 0) << 8) |
      (a[offset + 3] ?? 0)) >>>
    0
  );
}

/** A 32-bit number as 4 octets, big-endian (an ESP SPI or an IPv4 address on the wire). */
export function u32Octets(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255);
}

export function numberToIpv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function ipv4Text(a: Uint8Array): string {
  return a.length === 4 ? `${a[0]}.${a[1]}.${a[2]}.${a[3]}` : Buffer.from(a).toString('hex');
}

export function parseIpv4(text: string): Uint8Array {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${text}`);
  return Uint8Array.from(parts);
}

/** A numeric IPv4 range of a selector (protocol and ports are checked by `selectorMatches`). */
export interface Ipv4Range {
  readonly start: number;
  readonly end: number;
  readonly protocol: number;
  readonly startPort: number;
  readonly endPort: number;
}

export function ipv4Ranges(selectors: readonly TrafficSelector[]): Ipv4Range[] {
  return selectors
    .filter((s) => s.tsType === TS_IPV4_ADDR_RANGE && s.startAddress.length === 4)
    .map((s) => ({
      start: ipv4ToNumber(s.startAddress),
      end: ipv4ToNumber(s.endAddress),
      protocol: s.ipProtocol,
      startPort: s.startPort,
      endPort: s.endPort,
    }));
}

/**
 * Whether an IPv4 packet's `which` address (source or destination), protocol and port fall in one
 * of the ranges (RFC 4301 §4.4.1 selectors). ICMP and fragments match port ranges only when the
 * range is the full 0-65535 (RFC 4301 §4.4.1.1 OPAQUE handling is not modelled).
 */
export function packetMatches(
  packet: Uint8Array,
  ranges: readonly Ipv4Range[],
  which: 'src' | 'dst',
): boolean {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return false;
  const addr = ipv4ToNumber(packet, which === 'src' ? 12 : 16);
  const protocol = packet[9]!;
  const ihl = (packet[0]! & 15) * 4;
  const hasPorts = (protocol === 6 || protocol === 17) && packet.length >= ihl + 4;
  const port = hasPorts
    ? (packet[ihl + (which === 'src' ? 0 : 2)]! << 8) | packet[ihl + (which === 'src' ? 1 : 3)]!
    : -1;
  for (const r of ranges) {
    if (addr < r.start || addr > r.end) continue;
    if (r.protocol !== 0 && r.protocol !== protocol) continue;
    if (r.startPort === 0 && r.endPort === 65535) return true;
    if (port >= r.startPort && port <= r.endPort) return true;
  }
  return false;
}
