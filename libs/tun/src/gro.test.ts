import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import { fold, GRO_MAX_PACKET, GRO_MAX_SEGMENTS, onesSum, TcpCoalescer, VNET_HDR_LEN } from './gro.js';
import { ShmRing, ShmRingReader } from './ring.js';

const ACK = 0x10;
const PSH = 0x08;

/** RFC 1071 by octet pairs: the reference onesSum's fast path is checked against. */
function referenceSum(d: Uint8Array, from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i += 2) s += (d[i]! << 8) | (i + 1 < to ? d[i + 1]! : 0);
  return s;
}

interface Segment {
  v6?: boolean;
  src?: number;
  dst?: number;
  sport?: number;
  dport?: number;
  seq: number;
  ack?: number;
  flags?: number;
  window?: number;
  /** TCP options (a multiple of 4 octets). */
  options?: number[];
  payload: Uint8Array;
  id?: number;
  df?: boolean;
  ttl?: number;
  tos?: number;
  flowLabel?: number;
  badChecksum?: boolean;
  /** IPv4 options (a multiple of 4 octets). */
  ipOptions?: number[];
  /** IPv4 More Fragments. */
  mf?: boolean;
  /** The IP protocol / next header (default TCP). */
  protocol?: number;
  /** The low bits of TCP's byte 12 (reserved, AE). */
  reserved?: number;
}

/** An IPv4 or IPv6 TCP segment with valid checksums (unless badChecksum). */
function segment(s: Segment): Uint8Array {
  const options = s.options ?? [];
  const ipOptions = s.ipOptions ?? [];
  const iph = s.v6 ? 40 : 20 + ipOptions.length;
  const tcph = 20 + options.length;
  const p = new Uint8Array(iph + tcph + s.payload.length);
  const v = new DataView(p.buffer);
  if (s.v6) {
    v.setUint32(0, (6 << 28) | ((s.tos ?? 0) << 20) | (s.flowLabel ?? 0));
    v.setUint16(4, tcph + s.payload.length);
    p[6] = s.protocol ?? 6;
    p[7] = s.ttl ?? 64;
    p.set([0x20, 0x01, 0x0d, 0xb8], 8);
    v.setUint32(20, s.src ?? 7);
    p.set([0x20, 0x01, 0x0d, 0xb8], 24);
    v.setUint32(36, s.dst ?? 1);
  } else {
    p[0] = 0x40 | (iph / 4);
    p[1] = s.tos ?? 0;
    v.setUint16(2, p.length);
    v.setUint16(4, s.id ?? 0);
    p[6] = (s.df === false ? 0 : 0x40) | (s.mf ? 0x20 : 0);
    p[8] = s.ttl ?? 64;
    p[9] = s.protocol ?? 6;
    v.setUint32(12, s.src ?? 0x0a7d0007);
    v.setUint32(16, s.dst ?? 0x0a7d0001);
    p.set(ipOptions, 20);
    v.setUint16(10, ~fold(onesSum(p, 0, iph)) & 0xffff);
  }
  v.setUint16(iph, s.sport ?? 40000);
  v.setUint16(iph + 2, s.dport ?? 5201);
  v.setUint32(iph + 4, s.seq >>> 0);
  v.setUint32(iph + 8, s.ack ?? 77);
  p[iph + 12] = ((tcph / 4) << 4) | (s.reserved ?? 0);
  p[iph + 13] = s.flags ?? ACK;
  v.setUint16(iph + 14, s.window ?? 502);
  p.set(options, iph + 20);
  p.set(s.payload, iph + tcph);
  setTcpChecksum(p, s.v6 === true, iph);
  if (s.badChecksum) p[iph + 16]! ^= 0x40;
  return p;
}

function pseudo(p: Uint8Array, v6: boolean, iph = v6 ? 40 : 20): number {
  const len = p.length - iph;
  return v6 ? onesSum(p, 8, 40, 6 + len) : onesSum(p, 12, 20, 6 + len);
}

function setTcpChecksum(p: Uint8Array, v6: boolean, iph = v6 ? 40 : 20): void {
  p[iph + 16] = 0;
  p[iph + 17] = 0;
  const c = ~fold(onesSum(p, iph, p.length, pseudo(p, v6, iph))) & 0xffff;
  p[iph + 16] = c >>> 8;
  p[iph + 17] = c & 0xff;
}

/**
 * What the kernel makes of a record (net/ipv4/tcp_offload.c, tcp_gso_segment): without GSO the
 * packet; with it, gso_size-octet segments, each with the first one's headers, its own sequence
 * number and lengths, IPv4 IDs counting up from the first, PSH only on the last, full checksums.
 */
function resegment(record: Uint8Array): Uint8Array[] {
  const hdr = record.subarray(0, VNET_HDR_LEN);
  const pkt = record.subarray(VNET_HDR_LEN);
  if (hdr[1] === 0) {
    assert.deepEqual([...hdr], new Array(VNET_HDR_LEN).fill(0), 'a plain record has an all-zero header');
    return [pkt.slice()];
  }
  const hv = new DataView(hdr.buffer, hdr.byteOffset, VNET_HDR_LEN);
  const v6 = hdr[1] === 4;
  const iph = v6 ? 40 : 20;
  assert.equal(hdr[0], 1, 'NEEDS_CSUM');
  assert.equal(hdr[1], v6 ? 4 : 1, 'gso_type');
  assert.equal(hv.getUint16(6, true), iph, 'csum_start');
  assert.equal(hv.getUint16(8, true), 16, 'csum_offset');
  const pv = new DataView(pkt.buffer, pkt.byteOffset, pkt.byteLength);
  // The record itself: its length fields, IPv4 header checksum, the partial TCP checksum.
  if (v6) assert.equal(pv.getUint16(4), pkt.length - 40);
  else {
    assert.equal(pv.getUint16(2), pkt.length);
    assert.equal(fold(onesSum(pkt, 0, 20)), 0xffff, 'IPv4 header checksum');
  }
  assert.equal(pv.getUint16(iph + 16), fold(pseudo(pkt, v6)), 'TCP checksum field: the pseudo-header sum');
  const headers = hv.getUint16(2, true);
  const gso = hv.getUint16(4, true);
  assert.equal(headers, iph + (pkt[iph + 12]! >>> 4) * 4, 'hdr_len');
  const payload = pkt.subarray(headers);
  assert.ok(payload.length > gso, 'more than one segment');
  const out: Uint8Array[] = [];
  for (let off = 0, k = 0; off < payload.length; off += gso, k++) {
    const part = payload.subarray(off, Math.min(off + gso, payload.length));
    const last = off + gso >= payload.length;
    const s = new Uint8Array(headers + part.length);
    s.set(pkt.subarray(0, headers));
    s.set(part, headers);
    const v = new DataView(s.buffer);
    v.setUint32(iph + 4, (pv.getUint32(iph + 4) + off) >>> 0);
    if (!last) s[iph + 13]! &= ~PSH;
    if (v6) v.setUint16(4, s.length - 40);
    else {
      v.setUint16(2, s.length);
      v.setUint16(4, (pv.getUint16(4) + k) & 0xffff);
      v.setUint16(10, 0);
      v.setUint16(10, ~fold(onesSum(s, 0, 20)) & 0xffff);
    }
    setTcpChecksum(s, v6);
    out.push(s);
  }
  return out;
}

/** Runs `writes` through a coalescer on a ring of `capacity`; returns each record as written. */
function coalesce(
  writes: Uint8Array[],
  o: { capacity?: number; flushEvery?: (i: number) => boolean } = {},
): { records: Uint8Array[]; g: TcpCoalescer; accepted: boolean[] } {
  const ring = new ShmRing(o.capacity ?? 1 << 22);
  const reader = new ShmRingReader(ring.ctlBuffer, ring.dataBuffer);
  const g = new TcpCoalescer(ring);
  const records: Uint8Array[] = [];
  const drain = () => {
    while (reader.take()) {
      records.push(reader.data.slice(reader.at, reader.at + reader.length));
      reader.release();
    }
  };
  const accepted = writes.map((w, i) => {
    const ok = g.write(w);
    if (o.flushEvery?.(i)) g.flush();
    drain();
    return ok;
  });
  g.flush();
  drain();
  return { records, g, accepted };
}

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

/** `count` in-sequence segments of `size` octets from sequence number `seq`. */
function flow(count: number, size: number, o: Partial<Segment> = {}, seq = 1000): Uint8Array[] {
  return Array.from({ length: count }, (_, k) =>
    segment({ ...o, seq: seq + k * size, id: (o.id ?? 100) + k, payload: bytes(size, k) }),
  );
}

describe('TCP coalescing of TUN writes (gro.ts; GRO rules of net/ipv4/tcp_offload.c)', () => {
  test('onesSum (RFC 1071): the 32-bit fast path equals octet pairs at every alignment, length and start', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.nat(7),
        fc.nat(200),
        fc.nat(200),
        (data, shift, from, trim) => {
          const buf = new Uint8Array(data.length + 8);
          buf.set(data, shift);
          const d = buf.subarray(shift, shift + data.length);
          const a = Math.min(from, d.length);
          const b = Math.max(a, d.length - trim);
          assert.equal(fold(onesSum(d, a, b)), fold(referenceSum(d, a, b)));
        },
      ),
      { numRuns: 500 },
    );
  });

  test('20 in-sequence IPv4 segments of one flow become one GSO record (virtio_net_hdr NEEDS_CSUM, GSO_TCPV4, hdr_len, gso_size, csum_start/offset) that segments back into exactly the 20', () => {
    const input = flow(20, 1000, { options: [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2] });
    const { records, g } = coalesce(input);
    assert.equal(records.length, 1);
    const hv = new DataView(records[0]!.buffer);
    assert.deepEqual([records[0]![0], records[0]![1]], [1, 1]);
    assert.equal(hv.getUint16(2, true), 20 + 32);
    assert.equal(hv.getUint16(4, true), 1000);
    assert.equal(records[0]!.length, VNET_HDR_LEN + 52 + 20_000);
    assert.deepEqual(resegment(records[0]!), input);
    assert.equal(g.counters.merged, 19);
  });

  test('IPv6 (RFC 8200 pseudo-header): one GSO_TCPV6 record, payload length set, segments back into the input', () => {
    const input = flow(8, 1200, { v6: true, flowLabel: 0x12345 });
    const { records } = coalesce(input);
    assert.equal(records.length, 1);
    assert.equal(records[0]![1], 4);
    assert.deepEqual(resegment(records[0]!), input);
  });

  test('PSH goes on the last segment and ends the record; a shorter segment ends it; a larger one after a shorter one starts anew', () => {
    const a = flow(3, 1000);
    const psh = segment({ seq: 4000, flags: ACK | PSH, id: 103, payload: bytes(1000, 9) });
    const after = segment({ seq: 5000, id: 104, payload: bytes(1000, 10) });
    const short = segment({ seq: 6000, id: 105, payload: bytes(300, 11) });
    const larger = segment({ seq: 6300, id: 106, payload: bytes(1000, 12) });
    const input = [...a, psh, after, short, larger];
    const { records } = coalesce(input);
    assert.equal(records.length, 3);
    assert.equal(records[0]![VNET_HDR_LEN + 20 + 13], ACK | PSH, 'the record carries PSH');
    assert.deepEqual(records.flatMap(resegment), input);
    assert.equal(resegment(records[0]!).length, 4);
    assert.equal(resegment(records[1]!).length, 2, 'after, then the shorter one, ends it');
  });

  test('not merged (each written alone, unchanged), though next in sequence: SYN, FIN, RST, URG, ECE, CWR, the AE bit; no payload; IPv4 options; a fragment; not TCP; a gap; another port, address, ack, window, options, TTL, ToS, DF; IPv6 traffic class, flow label, hop limit; without DF an ID out of step', () => {
    const base = { seq: 1000, id: 1, payload: bytes(500, 1) };
    const next = { seq: 1500, id: 2, payload: bytes(500, 2) };
    const head = segment(base);
    const v6 = { ...base, v6: true };
    const v6next = { ...next, v6: true };
    const cases: Record<string, Uint8Array[]> = {
      syn: [segment({ ...base, flags: 0x02 | ACK }), segment(next)],
      fin: [head, segment({ ...next, flags: 0x01 | ACK })],
      rst: [head, segment({ ...next, flags: 0x04 | ACK })],
      urg: [head, segment({ ...next, flags: 0x20 | ACK })],
      ece: [head, segment({ ...next, flags: 0x40 | ACK })],
      cwr: [head, segment({ ...next, flags: 0x80 | ACK })],
      ae: [head, segment({ ...next, reserved: 0x01 })],
      empty: [head, segment({ ...next, payload: new Uint8Array(0) })],
      // An ack whose octets, read 4 octets early, would pass for a TCP header (doff 5, ACK).
      ipOptions: [
        segment({ ...base, ipOptions: [1, 1, 1, 1], ack: 0x50100000 }),
        segment({ ...next, ipOptions: [1, 1, 1, 1], ack: 0x50100000 }),
      ],
      fragment: [segment({ ...base, mf: true }), segment({ ...next, mf: true })],
      notTcp: [segment({ ...base, protocol: 17 }), segment({ ...next, protocol: 17 })],
      gap: [head, segment({ ...next, seq: 1501 })],
      port: [head, segment({ ...next, sport: 40001 })],
      address: [head, segment({ ...next, dst: 0x0a7d0002 })],
      ack: [head, segment({ ...next, ack: 78 })],
      window: [head, segment({ ...next, window: 503 })],
      options: [segment({ ...base, options: [1, 1, 1, 1] }), segment({ ...next, options: [1, 1, 1, 0] })],
      ttl: [head, segment({ ...next, ttl: 63 })],
      tos: [head, segment({ ...next, tos: 4 })],
      df: [head, segment({ ...next, df: false })],
      id: [segment({ ...base, df: false }), segment({ ...next, df: false, id: 5 })],
      trafficClass: [segment(v6), segment({ ...v6next, tos: 4 })],
      flowLabel: [segment(v6), segment({ ...v6next, flowLabel: 9 })],
      hopLimit: [segment(v6), segment({ ...v6next, ttl: 63 })],
    };
    for (const [name, input] of Object.entries(cases)) {
      const { records, g } = coalesce(input);
      assert.equal(records.length, input.length, name);
      records.forEach((r, i) => assert.deepEqual(r.subarray(VNET_HDR_LEN), input[i], name));
      assert.ok(
        records.every((r) => r[1] === 0),
        name,
      );
      assert.equal(g.counters.merged, 0, name);
      assert.equal(g.counters.badChecksum, 0, `${name}: refused by its rule, not by a checksum`);
    }
    // The same pairs without the difference are merged (so each case above tests its rule).
    assert.equal(coalesce([head, segment(next)]).records.length, 1);
    assert.equal(coalesce([segment(v6), segment(v6next)]).records.length, 1);
    assert.equal(
      coalesce([segment({ ...base, df: false }), segment({ ...next, df: false })]).records.length,
      1,
    );
    // Without DF, IDs one apart across a longer run too.
    assert.equal(coalesce(flow(5, 500, { df: false })).records.length, 1);
  });

  test('with DF the IPv4 IDs need not be one apart (RFC 6864 §4.1): merged, and the kernel numbers the segments it makes from the first', () => {
    const input = [
      segment({ seq: 1, id: 1, payload: bytes(800, 1) }),
      segment({ seq: 801, id: 900, payload: bytes(800, 2) }),
    ];
    const { records } = coalesce(input);
    assert.equal(records.length, 1);
    const renumbered = input[1]!.slice();
    new DataView(renumbered.buffer).setUint16(4, 2);
    renumbered[10] = 0;
    renumbered[11] = 0;
    new DataView(renumbered.buffer).setUint16(10, ~fold(onesSum(renumbered, 0, 20)) & 0xffff);
    assert.deepEqual(resegment(records[0]!), [input[0], renumbered]);
  });

  test('a record holds at most GRO_MAX_SEGMENTS segments: 150 tiny segments make 3 records, and segment back into the 150', () => {
    const input = flow(150, 10);
    const { records } = coalesce(input);
    assert.equal(records.length, Math.ceil(150 / GRO_MAX_SEGMENTS));
    assert.deepEqual(records.flatMap(resegment), input);
  });

  test('a segment whose own TCP checksum is wrong is never merged: written alone, counted, and the flow goes on merging after it', () => {
    const input = flow(6, 800);
    input[3] = segment({ seq: 1000 + 3 * 800, id: 103, payload: bytes(800, 3), badChecksum: true });
    const { records, g } = coalesce(input);
    assert.equal(g.counters.badChecksum, 1);
    assert.equal(records.length, 3);
    assert.deepEqual(records[1]!.subarray(VNET_HDR_LEN), input[3], 'the bad one as it came');
    assert.deepEqual(records.flatMap(resegment), [...input.slice(0, 3), input[3], ...input.slice(4)]);
    // Nor one whose IPv4 header checksum is wrong (the merged header's is computed afresh).
    const badIp = flow(3, 500);
    badIp[1]![10]! ^= 0x01;
    const ip = coalesce(badIp);
    assert.equal(ip.g.counters.badChecksum, 1);
    assert.deepEqual(ip.records[1]!.subarray(VNET_HDR_LEN), badIp[1], 'written alone, as it came');
    // A bad first segment does not open a record either.
    const first = coalesce([
      segment({ seq: 1, payload: bytes(100, 1), badChecksum: true }),
      ...flow(2, 100, {}, 101),
    ]);
    assert.equal(first.records.length, 2);
  });

  test('a record stops at GRO_MAX_PACKET octets (IP total length is 16 bits); the next segment opens the next record', () => {
    const input = flow(70, 1400);
    const { records } = coalesce(input);
    assert.ok(records.every((r) => r.length - VNET_HDR_LEN <= GRO_MAX_PACKET));
    assert.equal(records.length, 2);
    assert.deepEqual(records.flatMap(resegment), input);
  });

  test('a ring without room for the largest record writes segments alone; a full ring refuses (false) and holds nothing half-written', () => {
    // 200 KiB: room for a 64-KiB record only now and then as it fills.
    const input = flow(40, 1000);
    const small = coalesce(input, { capacity: 140_000 });
    assert.deepEqual(small.records.flatMap(resegment), input);
    const ring = new ShmRing(140_000);
    const g = new TcpCoalescer(ring);
    let accepted = 0;
    for (const p of flow(400, 1000)) if (g.write(p)) accepted++;
    g.flush();
    assert.ok(accepted > 0 && accepted < 400, `${accepted} taken`);
    const reader = new ShmRingReader(ring.ctlBuffer, ring.dataBuffer);
    const out: Uint8Array[] = [];
    while (reader.take()) {
      out.push(...resegment(reader.data.slice(reader.at, reader.at + reader.length)));
      reader.release();
    }
    assert.equal(out.length, accepted, 'every segment taken is in the ring, whole');
  });

  test('property: a bulk flow (any count, payload size, IPv4 or IPv6) is merged as far as the limits allow: records = what 64 segments and 65,525 octets permit, and they segment back into the input', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 200 }),
        fc.integer({ min: 1, max: 1460 }),
        fc.boolean(),
        (n, size, v6) => {
          const input = flow(n, size, { v6 });
          const { records } = coalesce(input);
          const headers = (v6 ? 40 : 20) + 20;
          const perRecord = Math.min(GRO_MAX_SEGMENTS, Math.floor((GRO_MAX_PACKET - headers) / size));
          assert.equal(records.length, Math.ceil(n / perRecord));
          assert.deepEqual(records.flatMap(resegment), input);
        },
      ),
      { numRuns: 200 },
    );
  });

  test('property: any mix of flows, IPv4/IPv6, flags, sizes, reordering, bad checksums and flush points comes out as the same packets in the same order', () => {
    const arbSegment = fc.record({
      flowIndex: fc.nat(2),
      v6: fc.boolean(),
      size: fc.integer({ min: 0, max: 1500 }),
      flags: fc.constantFrom(ACK, ACK, ACK, ACK | PSH, 0x02, 0x01 | ACK),
      skip: fc.constantFrom(0, 0, 0, 0, 1, -1),
      bad: fc.constantFrom(false, false, false, false, false, true),
    });
    fc.assert(
      fc.property(fc.array(arbSegment, { maxLength: 80 }), fc.array(fc.nat(80)), (specs, flushes) => {
        const next = [1000, 50_000, 900_000];
        const ids = [0, 0, 0];
        const input = specs.map((s) => {
          const seq = next[s.flowIndex]! + s.skip;
          next[s.flowIndex] = seq + s.size;
          return segment({
            v6: s.v6 && s.flowIndex === 1,
            sport: 40000 + s.flowIndex,
            seq,
            flags: s.flags,
            id: ids[s.flowIndex]!++,
            df: s.flowIndex !== 2,
            payload: bytes(s.size, seq),
            badChecksum: s.bad,
          });
        });
        const flushAt = new Set(flushes);
        const { records } = coalesce(input, { flushEvery: (i) => flushAt.has(i) });
        assert.deepEqual(records.flatMap(resegment), input);
      }),
      { numRuns: 300 },
    );
  });
});
