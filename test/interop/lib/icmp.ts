/**
 * Just enough IPv4/ICMP for an interop test to answer pings that arrive through an ESP tunnel:
 * a real ping from strongSwan's side, decapsulated by libs/esp, answered here, encapsulated again.
 * Test-only; the product's data plane writes inner packets to a TUN device instead (issue #4).
 */

/** RFC 1071 Internet checksum over `bytes`. */
export function internetChecksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < bytes.length; i += 2) sum += (bytes[i]! << 8) | bytes[i + 1]!;
  if (bytes.length % 2 === 1) sum += bytes[bytes.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export interface EchoRequest {
  readonly src: string;
  readonly dst: string;
  readonly id: number;
  readonly seq: number;
}

function addr(bytes: Uint8Array, off: number): string {
  return `${bytes[off]}.${bytes[off + 1]}.${bytes[off + 2]}.${bytes[off + 3]}`;
}

/** Parses an IPv4 ICMP echo request; undefined for anything else. */
export function parseEchoRequest(packet: Uint8Array): EchoRequest | undefined {
  if (packet.length < 28 || packet[0]! >> 4 !== 4 || packet[9] !== 1) return undefined;
  const ihl = (packet[0]! & 0x0f) * 4;
  if (packet[ihl] !== 8) return undefined;
  return {
    src: addr(packet, 12),
    dst: addr(packet, 16),
    id: (packet[ihl + 4]! << 8) | packet[ihl + 5]!,
    seq: (packet[ihl + 6]! << 8) | packet[ihl + 7]!,
  };
}

/** The echo reply to an IPv4 echo request: addresses swapped, type 0, both checksums recomputed. */
export function echoReply(request: Uint8Array): Uint8Array {
  const reply = request.slice();
  const ihl = (reply[0]! & 0x0f) * 4;
  reply.copyWithin(12, 16, 20);
  reply.set(request.subarray(12, 16), 16);
  reply[8] = 64;
  reply[10] = 0;
  reply[11] = 0;
  const hc = internetChecksum(reply.subarray(0, ihl));
  reply[10] = hc >> 8;
  reply[11] = hc & 0xff;
  reply[ihl] = 0;
  reply[ihl + 2] = 0;
  reply[ihl + 3] = 0;
  const total = (reply[2]! << 8) | reply[3]!;
  const ic = internetChecksum(reply.subarray(ihl, total));
  reply[ihl + 2] = ic >> 8;
  reply[ihl + 3] = ic & 0xff;
  return reply;
}

/** An IPv4 ICMP echo request from `src` to `dst` (dotted quads) with 32 octets of payload. */
export function echoRequest(src: string, dst: string, id: number, seq: number): Uint8Array {
  const p = new Uint8Array(20 + 8 + 32);
  p[0] = 0x45;
  p[3] = p.length;
  p[8] = 64;
  p[9] = 1;
  p.set(src.split('.').map(Number), 12);
  p.set(dst.split('.').map(Number), 16);
  const hc = internetChecksum(p.subarray(0, 20));
  p[10] = hc >> 8;
  p[11] = hc & 0xff;
  p[20] = 8;
  p[24] = id >> 8;
  p[25] = id & 0xff;
  p[26] = seq >> 8;
  p[27] = seq & 0xff;
  for (let i = 28; i < p.length; i++) p[i] = i;
  const ic = internetChecksum(p.subarray(20));
  p[22] = ic >> 8;
  p[23] = ic & 0xff;
  return p;
}

/** Parses an IPv4 ICMP echo reply; undefined for anything else. */
export function parseEchoReply(packet: Uint8Array): EchoRequest | undefined {
  if (packet.length < 28 || packet[0]! >> 4 !== 4 || packet[9] !== 1) return undefined;
  const ihl = (packet[0]! & 0x0f) * 4;
  if (packet[ihl] !== 0) return undefined;
  return {
    src: addr(packet, 12),
    dst: addr(packet, 16),
    id: (packet[ihl + 4]! << 8) | packet[ihl + 5]!,
    seq: (packet[ihl + 6]! << 8) | packet[ihl + 7]!,
  };
}
