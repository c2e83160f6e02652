/** Minimal IPv4/ICMP helpers for the TUN tests (not exported from the package). */

/** RFC 1071 Internet checksum of `data` (one's complement of the one's-complement sum). */
export function internetChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (data.length % 2 === 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export function ipv4ToString(b: Uint8Array, off: number): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

export interface EchoRequestInfo {
  src: string;
  dst: string;
  /** IPv4 header length in bytes. */
  ihl: number;
}

/** Returns addresses if `pkt` is a well-formed IPv4 ICMP echo request (type 8, code 0), else undefined. */
export function parseEchoRequest(pkt: Uint8Array): EchoRequestInfo | undefined {
  if (pkt.length < 20 || pkt[0]! >> 4 !== 4) return undefined;
  const ihl = (pkt[0]! & 0x0f) * 4;
  const total = (pkt[2]! << 8) | pkt[3]!;
  if (ihl < 20 || total > pkt.length || total < ihl + 8) return undefined;
  if (pkt[9] !== 1) return undefined; // protocol ICMP
  if (((pkt[6]! & 0x1f) << 8) | pkt[7]! || pkt[6]! & 0x20) return undefined; // fragments
  if (pkt[ihl] !== 8 || pkt[ihl + 1] !== 0) return undefined;
  return { src: ipv4ToString(pkt, 12), dst: ipv4ToString(pkt, 16), ihl };
}

/**
 * Builds the echo reply to an echo request: addresses swapped, ICMP type 0, TTL 64, both checksums
 * recomputed. Returns a new array; the request is not modified.
 */
export function makeEchoReply(req: Uint8Array): Uint8Array {
  const info = parseEchoRequest(req);
  if (!info) throw new Error('not an IPv4 ICMP echo request');
  const total = (req[2]! << 8) | req[3]!;
  const out = req.slice(0, total);
  const { ihl } = info;
  out.set(req.subarray(16, 20), 12);
  out.set(req.subarray(12, 16), 16);
  out[8] = 64;
  out[10] = 0;
  out[11] = 0;
  const ipSum = internetChecksum(out.subarray(0, ihl));
  out[10] = ipSum >> 8;
  out[11] = ipSum & 0xff;
  out[ihl] = 0;
  out[ihl + 2] = 0;
  out[ihl + 3] = 0;
  const icmpSum = internetChecksum(out.subarray(ihl, total));
  out[ihl + 2] = icmpSum >> 8;
  out[ihl + 3] = icmpSum & 0xff;
  return out;
}
