/**
 * Coalescing of TCP segments on their way into the kernel (issue #14): what a NIC's GRO does for
 * received packets, done on TUN writes. Consecutive segments of one TCP flow, handed to
 * TunDevice.write in the same event-loop turn, go into the writer ring as ONE record: the first
 * segment's headers, every segment's payload, and a virtio_net_hdr (the TUN is opened with
 * IFF_VNET_HDR) that tells the kernel it is a GSO packet of `gso_size` segments whose TCP checksum
 * is still to be completed (VIRTIO_NET_HDR_F_NEEDS_CSUM, i.e. CHECKSUM_PARTIAL). The kernel then
 * routes, filters and delivers it once, and a receiving TCP stack acknowledges it once, instead of
 * once per segment: a tunnel's gateway writes and encrypts a fraction of the ACKs it did.
 *
 * The rules are the kernel's GRO rules (net/ipv4/tcp_offload.c, tools/testing/selftests/net/gro.c)
 * and wireguard-go's (tun/offload_linux.go), which this follows:
 * - IPv4 without options, not a fragment, or IPv6 without extension headers; TCP with a payload;
 * - flags ACK, or ACK|PSH on the last segment only (PSH ends the record); any other flag (SYN, FIN,
 *   RST, URG, ECE, CWR) is written alone;
 * - one flow: addresses, ports, ToS/traffic class and flow label, TTL/hop limit, DF; the same
 *   acknowledgement number, window, header length and options (timestamps included); without DF,
 *   IPv4 IDs one apart (the kernel numbers the segments it makes so);
 * - in sequence: each segment starts where the record ends; every segment but the last has the
 *   first one's payload size (`gso_size`), and a shorter one ends the record;
 * - each segment's own TCP checksum (and IPv4 header checksum) is verified before it is merged: the
 *   merged packet's checksums are computed afresh (by the kernel, and here), which would otherwise
 *   hide a segment corrupted before it was encrypted. A segment with a bad checksum is written alone
 *   (and the receiver drops it, as before).
 * A record holds at most GRO_MAX_PACKET octets and GRO_MAX_SEGMENTS segments (a flow of tiny
 * segments must not make the kernel split one write into thousands); a record of one segment is
 * written unchanged.
 *
 * What changes on the way: with DF set, the kernel numbers the IPv4 IDs of the segments it makes
 * from the first one's (RFC 6864 §4.1: the ID of an atomic datagram is not meaningful); the merged
 * header's checksum is computed afresh; and a firewall rule on the receiving host that counts
 * packets or matches on their length (`-m length`, `limit`, `connbytes`) sees one merged packet
 * where a rule in the forwarding path after segmentation sees the segments.
 *
 * Reads: the virtio_net_hdr comes first on every read too. We never enable offloads on the device
 * (TUNSETOFFLOAD), so the kernel checksums and segments what it sends us: the header is all zero.
 */
import { endianness } from 'node:os';
import { MAX_RING_PACKET } from './ring.js';

/** sizeof(struct virtio_net_hdr): the TUN's default header size with IFF_VNET_HDR. */
export const VNET_HDR_LEN = 10;
/** The largest coalesced IP packet: header and packet in one record of the ring. */
export const GRO_MAX_PACKET = MAX_RING_PACKET - VNET_HDR_LEN;
/** The most segments in one record: a bulk flow's 1,400-octet segments fill 65,525 octets first. */
export const GRO_MAX_SEGMENTS = 64;

const NEEDS_CSUM = 1;
const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const TCP = 6;
const ACK = 0x10;
const PSH = 0x08;

const LITTLE_ENDIAN = endianness() === 'LE';

/**
 * The Internet checksum's sum (RFC 1071) of `d[from..to)` as big-endian 16-bit words, unfolded
 * (exact below 2^53, i.e. for any packet). A long run at an even offset from a 4-octet boundary is
 * summed as 32-bit words in host order and swapped back (RFC 1071 §2(B), §2(C)): 3-4x faster than
 * octet pairs, and it is read once per segment merged.
 */
export function onesSum(d: Uint8Array, from: number, to: number, sum = 0): number {
  let s = sum;
  let i = from;
  const lead = (4 - ((d.byteOffset + i) & 3)) & 3;
  if (LITTLE_ENDIAN && to - i >= 64 && (lead & 1) === 0) {
    if (lead === 2) {
      s += (d[i]! << 8) | d[i + 1]!;
      i += 2;
    }
    const words = (to - i) >>> 2;
    const w = new Uint32Array(d.buffer, d.byteOffset + i, words);
    let le = 0;
    for (let k = 0; k < words; k++) le += w[k]!;
    const t = fold(le);
    s += ((t & 0xff) << 8) | (t >>> 8);
    i += words * 4;
  }
  for (; i + 1 < to; i += 2) s += (d[i]! << 8) | d[i + 1]!;
  if (i < to) s += d[i]! << 8;
  return s;
}

/** Folds an unfolded sum to 16 bits (end-around carry). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The sum of a TCP pseudo-header (RFC 9293 §3.1, RFC 8200 §8.1): addresses, protocol, length. */
function pseudoSum(pkt: Uint8Array, v6: boolean, tcpLength: number): number {
  return v6
    ? onesSum(pkt, 8, 40, TCP + (tcpLength >>> 16) + (tcpLength & 0xffff))
    : onesSum(pkt, 12, 20, TCP + tcpLength);
}

/**
 * What write() needs from the writer ring (ShmRing): room for a record in one piece, filled in
 * place at `at` and published by commit.
 */
export interface RecordRing {
  readonly data: Uint8Array;
  readonly at: number;
  reserve(n: number, wrap?: boolean): boolean;
  commit(n: number): void;
}

/** Counters of a coalescer (for TunCounters). */
export interface CoalescerCounters {
  /** Segments merged into a record begun by an earlier one: TUN writes saved. */
  merged: number;
  /** Segments not merged because their own TCP checksum was wrong. */
  badChecksum: number;
}

/**
 * Turns the TCP/IP packets written in one turn into writer-ring records (virtio_net_hdr +
 * packet), merging consecutive segments of a flow. One record is open at a time (the common case
 * is one bulk flow per turn; interleaved flows are written as they come, correct but unmerged).
 * `flush()` publishes the open record; TunDevice calls it at the end of every turn, before it wakes
 * the writer thread, and before anything else goes into the ring.
 */
export class TcpCoalescer {
  readonly counters: CoalescerCounters = { merged: 0, badChecksum: 0 };
  /** Ring offset of the open record's virtio_net_hdr; -1 when none is open. */
  #rec = -1;
  #len = 0;
  #v6 = false;
  #iph = 0;
  #tcph = 0;
  #gsoSize = 0;
  #nextSeq = 0;
  #segments = 0;
  /** A shorter segment or PSH went in: nothing may follow. */
  #ended = false;

  // The packet write() is looking at (set by #parse).
  #pIph = 0;
  #pTcph = 0;
  #pPayload = 0;

  constructor(private readonly ring: RecordRing) {}

  /** Whether a record is being built (published by the next flush). */
  get open(): boolean {
    return this.#rec >= 0;
  }

  /**
   * Puts `pkt` (an IP packet, at most GRO_MAX_PACKET octets) into the ring: merged into the open
   * record, as the start of a new one, or as a record of its own. False, with nothing written,
   * when the ring has no room for it.
   */
  write(pkt: Uint8Array): boolean {
    const candidate = this.#parse(pkt);
    if (candidate && this.#rec >= 0 && this.#fits(pkt)) {
      if (this.#verified(pkt)) {
        this.#append(pkt);
        return true;
      }
      this.flush();
      return this.#plain(pkt);
    }
    this.flush();
    if (candidate && (pkt[this.#pIph + 13]! & PSH) === 0) {
      // Room for the largest record, before the end of the ring (a reservation that wrapped
      // would leave the end unused for a lap); otherwise this one goes alone.
      if (this.#verified(pkt) && this.ring.reserve(MAX_RING_PACKET, false)) {
        this.#begin(pkt);
        return true;
      }
    }
    return this.#plain(pkt);
  }

  /** Publishes the open record, if any. */
  flush(): void {
    const at = this.#rec;
    if (at < 0) return;
    this.#rec = -1;
    const d = this.ring.data;
    const p = at + VNET_HDR_LEN;
    const len = this.#len;
    d.fill(0, at, p);
    if (this.#segments > 1) {
      const iph = this.#iph;
      const v6 = this.#v6;
      // struct virtio_net_hdr, little-endian (tun on a little-endian host, no TUNSETVNETLE).
      const hdrLen = iph + this.#tcph;
      d[at] = NEEDS_CSUM;
      d[at + 1] = v6 ? GSO_TCPV6 : GSO_TCPV4;
      d[at + 2] = hdrLen & 0xff;
      d[at + 3] = hdrLen >>> 8;
      d[at + 4] = this.#gsoSize & 0xff;
      d[at + 5] = this.#gsoSize >>> 8;
      d[at + 6] = iph; // csum_start: the TCP header
      d[at + 8] = 16; // csum_offset: TCP's checksum field
      if (v6) {
        const payload = len - 40;
        d[p + 4] = payload >>> 8;
        d[p + 5] = payload & 0xff;
      } else {
        d[p + 2] = len >>> 8;
        d[p + 3] = len & 0xff;
        d[p + 10] = 0;
        d[p + 11] = 0;
        const c = ~fold(onesSum(d, p, p + iph)) & 0xffff;
        d[p + 10] = c >>> 8;
        d[p + 11] = c & 0xff;
      }
      // CHECKSUM_PARTIAL: the field holds the pseudo-header's sum; the kernel adds the rest.
      const partial = fold(pseudoSum(d.subarray(p), v6, len - iph));
      d[p + iph + 16] = partial >>> 8;
      d[p + iph + 17] = partial & 0xff;
    }
    this.ring.commit(VNET_HDR_LEN + len);
  }

  /** A TCP segment that may be merged: sets #pIph, #pTcph, #pPayload. */
  #parse(pkt: Uint8Array): boolean {
    const n = pkt.length;
    if (n < 40) return false;
    const version = pkt[0]! >>> 4;
    let iph: number;
    if (version === 4) {
      // No options, the whole packet, TCP, not a fragment (MF clear, offset 0).
      if (pkt[0] !== 0x45 || pkt[9] !== TCP || ((pkt[2]! << 8) | pkt[3]!) !== n) return false;
      if ((pkt[6]! & 0x3f) !== 0 || pkt[7] !== 0) return false;
      iph = 20;
    } else if (version === 6) {
      if (n < 60 || pkt[6] !== TCP || ((pkt[4]! << 8) | pkt[5]!) !== n - 40) return false;
      iph = 40;
    } else {
      return false;
    }
    const tcph = (pkt[iph + 12]! >>> 4) * 4;
    if (tcph < 20 || n <= iph + tcph) return false;
    const flags = pkt[iph + 13]!;
    if (flags !== ACK && flags !== (ACK | PSH)) return false;
    this.#pIph = iph;
    this.#pTcph = tcph;
    this.#pPayload = n - iph - tcph;
    return true;
  }

  /** Whether the parsed `pkt` continues the open record (same flow, next in sequence, in size). */
  #fits(pkt: Uint8Array): boolean {
    if (this.#ended || this.#segments >= GRO_MAX_SEGMENTS) return false;
    const iph = this.#pIph;
    if (iph !== this.#iph || this.#pTcph !== this.#tcph) return false;
    const payload = this.#pPayload;
    if (payload > this.#gsoSize || this.#len + payload > GRO_MAX_PACKET) return false;
    if (seqOf(pkt, iph) !== this.#nextSeq) return false;
    const d = this.ring.data;
    const h = this.#rec + VNET_HDR_LEN;
    if (iph === 20) {
      // ToS; DF and the reserved bit; TTL; addresses.
      if (pkt[1] !== d[h + 1] || pkt[6]! >>> 5 !== d[h + 6]! >>> 5 || pkt[8] !== d[h + 8]) return false;
      if (!same(pkt, d, h, 12, 20)) return false;
      // Without DF the ID matters (fragments): it must go up by one per segment, as the kernel's
      // segmentation will number them. With DF it is not meaningful (RFC 6864 §4.1).
      if ((pkt[6]! & 0x40) === 0) {
        const id = (pkt[4]! << 8) | pkt[5]!;
        if (id !== (((d[h + 4]! << 8) | d[h + 5]!) + this.#segments) % 0x10000) return false;
      }
    } else if (!same(pkt, d, h, 0, 4) || pkt[7] !== d[h + 7] || !same(pkt, d, h, 8, 40)) {
      // version, traffic class, flow label; hop limit; addresses
      return false;
    }
    // Ports; acknowledgement number; header length; window; options. (Not the flags: PSH may differ.)
    return (
      same(pkt, d, h, iph, iph + 4) &&
      same(pkt, d, h, iph + 8, iph + 13) &&
      same(pkt, d, h, iph + 14, iph + 16) &&
      same(pkt, d, h, iph + 20, iph + this.#tcph)
    );
  }

  /**
   * Whether the parsed `pkt`'s own checksums hold, TCP's and (IPv4) the header's, as the kernel's
   * GRO checks them (inet_gro_receive): a merged record gets a new IPv4 header checksum, which would
   * hide a bad one. Counts it when they do not.
   */
  #verified(pkt: Uint8Array): boolean {
    const iph = this.#pIph;
    const v6 = iph === 40;
    const ok =
      (v6 || fold(onesSum(pkt, 0, 20)) === 0xffff) &&
      fold(onesSum(pkt, iph, pkt.length, pseudoSum(pkt, v6, pkt.length - iph))) === 0xffff;
    if (!ok) this.counters.badChecksum++;
    return ok;
  }

  #begin(pkt: Uint8Array): void {
    const at = this.ring.at;
    this.ring.data.set(pkt, at + VNET_HDR_LEN);
    this.#rec = at;
    this.#len = pkt.length;
    this.#v6 = this.#pIph === 40;
    this.#iph = this.#pIph;
    this.#tcph = this.#pTcph;
    this.#gsoSize = this.#pPayload;
    this.#nextSeq = (seqOf(pkt, this.#pIph) + this.#pPayload) >>> 0;
    this.#segments = 1;
    this.#ended = false;
  }

  #append(pkt: Uint8Array): void {
    const headers = this.#pIph + this.#pTcph;
    const payload = this.#pPayload;
    const d = this.ring.data;
    const h = this.#rec + VNET_HDR_LEN;
    d.set(pkt.subarray(headers), h + this.#len);
    this.#len += payload;
    this.#nextSeq = (this.#nextSeq + payload) >>> 0;
    this.#segments++;
    this.counters.merged++;
    if ((pkt[this.#pIph + 13]! & PSH) !== 0) {
      // PSH goes on the last segment; the kernel's segmentation clears it on all the others.
      d[h + this.#iph + 13]! |= PSH;
      this.#ended = true;
    }
    if (payload < this.#gsoSize) this.#ended = true;
  }

  /** `pkt` as a record of its own, with an all-zero header. */
  #plain(pkt: Uint8Array): boolean {
    const n = pkt.length;
    if (!this.ring.reserve(VNET_HDR_LEN + n)) return false;
    const at = this.ring.at;
    const d = this.ring.data;
    d.fill(0, at, at + VNET_HDR_LEN);
    d.set(pkt, at + VNET_HDR_LEN);
    this.ring.commit(VNET_HDR_LEN + n);
    return true;
  }
}

function seqOf(pkt: Uint8Array, iph: number): number {
  return ((pkt[iph + 4]! << 24) | (pkt[iph + 5]! << 16) | (pkt[iph + 6]! << 8) | pkt[iph + 7]!) >>> 0;
}

/** Whether pkt[from..to) equals d[h + from..h + to). */
function same(pkt: Uint8Array, d: Uint8Array, h: number, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (pkt[i] !== d[h + i]) return false;
  return true;
}
