import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { OutboundFrame, PeerPath } from '@ikegate/cluster';
import { type CryptoProvider, defaultProvider, EncryptionId } from '@ikegate/crypto';
import { espSuite, InboundSa, OutboundSa } from '@ikegate/esp';
import type { InstallChildAction, SaEntry, TrafficSelector } from '@ikegate/ikev2';
import { createLogger, Metrics } from '@ikegate/telemetry';
import fc from 'fast-check';
import { DataPlane, SweepQuota } from './data-plane.js';
import { ipv4ToNumber, parseIpv4 } from './ipv4.js';
import { icmp } from './testing/packets.js';
import { type ChildRecord, NO_CHILDREN, type SaRecord } from './records.js';
import type { WorkerSettings } from './types.js';

const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: parseIpv4('0.0.0.0'),
  endAddress: parseIpv4('255.255.255.255'),
};
const PATH: PeerPath = {
  connection: 'udp:4500:192.0.2.10:4500',
  transport: 'udp',
  local: { address: '192.0.2.1', port: 4500 },
  remote: { address: '192.0.2.10', port: 4500 },
};
const AES256GCM = { id: EncryptionId.AES_GCM_16, keyBits: 256 };
const SUITE = { encryption: EncryptionId.AES_GCM_16, keyBits: 256 };

/** One child SA and the peer's side of it. */
interface Peer {
  readonly child: ChildRecord;
  readonly vip: string;
  readonly toUs: OutboundSa;
  readonly fromUs: InboundSa;
  readonly seal: () => Uint8Array;
}

/**
 * A data plane with no idle timer (the tests call sweepIdle), one SA record and `children` child
 * SAs installed as the responder, each with virtual IP 10.9.0.(2 + i); for each, the peer's ESP
 * SAs (its outbound is our inbound).
 */
function setup(
  children = 1,
  esn = false,
  tsRemote?: (vip: Uint8Array) => TrafficSelector[],
  provider: CryptoProvider = defaultProvider,
  /** dataplane.coldChildAfterSeconds in ms: 0 (default here) never cold, and children start hot. */
  coldChildAfterMs = 0,
) {
  const metrics = new Metrics({ processMetrics: false });
  const sent: OutboundFrame[] = [];
  const written: Uint8Array[] = [];
  const checkpoints: SaRecord[] = [];
  const moved: PeerPath[] = [];
  const lost: ChildRecord[] = [];
  const dp = new DataPlane(
    { provider, coldChildAfterMs } as WorkerSettings,
    { send: (f) => (sent.push(f), 'sent') },
    createLogger({ level: 'silent' }),
    metrics,
    {
      pathChanged: (_r, path) => void moved.push(path),
      rekeyNeeded: () => undefined,
      checkpoint: (r) => checkpoints.push(r),
      childLost: (_r, child) => void lost.push(child),
    },
    Date.now,
  );
  dp.attachDevice({ write: (p) => (written.push(p.slice()), true) });
  const rec: SaRecord = {
    entry: { spis: ['00112233445566778899aabbccddeeff'] } as unknown as SaEntry<SaRecord>,
    id: 1,
    shard: 0,
    path: PATH,
    children: NO_CHILDREN,
    createdAt: 0,
  };
  const peers: Peer[] = [];
  for (let i = 0; i < children; i++) {
    const keys = {
      encrI: new Uint8Array(randomBytes(36)),
      integI: new Uint8Array(0),
      encrR: new Uint8Array(randomBytes(36)),
      integR: new Uint8Array(0),
    };
    const action: InstallChildAction = {
      kind: 'install-child',
      inboundSpi: Uint8Array.of(0x10, 0, 0, i + 1),
      outboundSpi: Uint8Array.of(0x20, 0, 0, i + 1),
      encryption: AES256GCM,
      esn,
      keys: { ...keys, encrI: keys.encrI.slice(), encrR: keys.encrR.slice() },
      weInitiated: false,
      tsLocal: [any],
      tsRemote: tsRemote ? tsRemote(Uint8Array.of(10, 9, 0, 2 + i)) : [any],
      virtualIp: Uint8Array.of(10, 9, 0, 2 + i),
    };
    const child = dp.install(rec, action);
    const vip = `10.9.0.${2 + i}`;
    const toUs = new OutboundSa({
      spi: 0x10000001 + i,
      esn,
      suite: espSuite(defaultProvider, SUITE, keys.encrI),
    });
    const fromUs = new InboundSa({
      spi: 0x20000001 + i,
      esn,
      suite: espSuite(defaultProvider, SUITE, keys.encrR),
    });
    const seal = () => {
      const r = toUs.encapsulate(icmp(vip, '10.2.0.7'));
      assert.equal(r.kind, 'packet');
      return r.kind === 'packet' ? r.packet.slice() : new Uint8Array();
    };
    peers.push({ child, vip, toUs, fromUs, seal });
  }
  const deliver = (bytes: Uint8Array, path = PATH) => dp.inbound({ kind: 'esp', path, bytes, shard: 0 });
  const figure = async (name: string) =>
    Number(
      new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(await metrics.render())?.[1] ?? 0,
    );
  const drops = (layer: string, reason: string) =>
    figure(`ikegate_drops_total{layer="${layer}",reason="${reason}"}`);
  /** The sequence number of each ESP packet we sent, decapsulated by the peer `i`. */
  const received = (i = 0) =>
    sent.splice(0).map((f) => {
      assert.equal(peers[i]!.fromUs.decapsulate(f.bytes).kind, 'inner', 'the peer opens it');
      return Buffer.from(f.bytes).readUInt32BE(4);
    });
  /** Waits (bounded) for the inbound checkpoint the last packets made due (INBOUND_CHECKPOINT_MS). */
  const checkpointed = async () => {
    const n = checkpoints.length;
    for (let i = 0; i < 200 && checkpoints.length === n; i++) await sleep(10);
    assert.ok(checkpoints.length > n, 'the inbound checkpoint was written');
  };
  return {
    dp,
    rec,
    peers,
    sent,
    written,
    checkpoints,
    moved,
    lost,
    deliver,
    figure,
    drops,
    received,
    checkpointed,
  };
}

const zero = (b: Uint8Array) => b.every((x) => x === 0);

/** A snapshot's child with `keys`, SPI 0x10000009 and virtual IP 10.9.0.50, at the given counters. */
function adoptedSpec(keys: { inKeys: Uint8Array; outKeys: Uint8Array }, seqOut: bigint, seqIn: bigint) {
  return {
    inboundSpi: 0x10000009,
    outboundSpi: 0x20000001,
    encryption: AES256GCM,
    inKeys: keys.inKeys,
    outKeys: keys.outKeys,
    tsLocal: [any],
    tsRemote: [any],
    virtualIp: ipv4ToNumber(parseIpv4('10.9.0.50')),
    seqOut,
    seqIn,
  };
}

test('data plane, cold children: an idle child goes cold at the second sweep visit without a packet; its next packet rebuilds it, the outbound sequence goes on at the next number (RFC 4106 §3.1: the nonce is never reused), inbound replays stay refused (RFC 4303 §3.4.3), and the slot that held its keys is zeroed (issue #14)', async () => {
  const s = setup();
  const p = s.peers[0]!;
  const [p1, p2, p3] = [p.seal(), p.seal(), p.seal()];
  s.deliver(p1);
  s.deliver(p2);
  s.deliver(p3);
  assert.equal(s.written.length, 3);
  s.dp.outbound(icmp('10.2.0.7', p.vip));
  s.dp.outbound(icmp('10.2.0.7', p.vip));
  assert.deepEqual(s.received(), [1, 2]);
  // Sent by the peer but still in flight when the child goes cold.
  const p4 = p.seal();
  const p5 = p.seal();
  s.deliver(p5);
  assert.equal(s.written.length, 4);
  await s.checkpointed();

  assert.equal(s.dp.sweepIdle(10), 0, 'the first visit only notes the packet count');
  assert.ok(p.child.inbound, 'hot');
  assert.equal(s.dp.sweepIdle(10), 1, 'no packet since: cold');
  assert.equal(p.child.inbound, undefined);
  assert.equal(p.child.outbound, undefined);
  assert.equal(s.dp.coldCount, 1);
  assert.equal(await s.figure('ikegate_esp_cold_child_sas'), 1);
  const slot = p.child.coldSlab!.view(p.child.coldSlot);
  assert.ok(!zero(slot), 'the slot holds its keys');

  // Replays, and p4 (below the highest seen, never received): refused from the slot's counter,
  // without a rebuild.
  s.deliver(p3);
  s.deliver(p1);
  s.deliver(p4);
  s.deliver(p5); // the highest seen itself
  assert.equal(await s.drops('esp', 'replay'), 4);
  assert.equal(s.written.length, 4);
  assert.equal(p.child.inbound, undefined, 'still cold');
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 0);
  const p6 = p.seal();
  s.deliver(p6);
  assert.equal(s.written.length, 5, 'a new packet passes');
  assert.ok(p.child.inbound, 'rebuilt by it');
  assert.ok(zero(slot), 'the slot was zeroed when it was given back');
  assert.equal(s.dp.coldCount, 0);
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 1);
  s.deliver(p3);
  assert.equal(await s.drops('esp', 'replay'), 5, 'the rebuilt window refuses what the cold child had');
  await s.checkpointed();

  // Cold again, then our side sends first: sequence number 3, the one after the last sent.
  s.dp.sweepIdle(10);
  assert.equal(s.dp.sweepIdle(10), 1);
  s.dp.outbound(icmp('10.2.0.7', p.vip));
  assert.deepEqual(s.received(), [3]);
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 2);
  assert.equal(await s.figure('ikegate_esp_cold_child_sas'), 0);
});

test('data plane, cold children: a child that carried a packet either way between visits stays hot; one that goes cold while its inbound checkpoint waits is checkpointed from its slot (issue #14, issue #11)', async () => {
  const s = setup(3);
  const [a, b, c] = s.peers as [Peer, Peer, Peer];
  s.dp.sweepIdle(3);
  s.deliver(a.seal()); // in: a's inbound checkpoint is now due on the timer
  s.deliver(a.seal());
  s.dp.outbound(icmp('10.2.0.7', b.vip)); // out
  assert.equal(s.dp.sweepIdle(3), 1, 'only c, which carried nothing');
  assert.equal(c.child.inbound, undefined);
  assert.ok(b.child.inbound);
  assert.ok(a.child.inbound);
  assert.equal(s.dp.sweepIdle(3), 2, 'a and b now');
  assert.equal(s.checkpoints.length, 0);
  await s.checkpointed();
  assert.equal(a.child.checkpointedIn, 2n, "the highest sequence number, from a's slot");
  assert.equal(a.child.inbound, undefined, 'still cold');
  assert.equal(s.dp.coldCount, 3);
});

test('data plane, cold children: the sweep visits at most the given number of children per call, each at most once, and goes on where it stopped (issue #14)', () => {
  const s = setup(5);
  assert.equal(s.dp.sweepIdle(100), 0, 'one visit each, though asked for 100');
  assert.equal(s.dp.sweepIdle(2), 2);
  assert.equal(s.dp.sweepIdle(2), 2);
  assert.equal(s.dp.sweepIdle(2), 1, 'the fifth, then the first again (already cold)');
  assert.equal(s.dp.coldCount, 5);
  assert.equal(s.dp.sweepIdle(0), 0);
});

test("data plane, cold children: the snapshot's keys and counters are read from a cold child's slot without rebuilding it, equal to the hot child's (issue #14, issue #11 checkpoints)", async () => {
  const s = setup();
  const p = s.peers[0]!;
  s.deliver(p.seal());
  s.deliver(p.seal());
  s.dp.outbound(icmp('10.2.0.7', p.vip));
  await s.checkpointed();
  const hot = s.dp.exportEsp(p.child);
  assert.equal(hot.seqIn, 2n);
  assert.equal(hot.seqOut, 1n);
  s.dp.sweepIdle(1);
  s.dp.sweepIdle(1);
  assert.equal(s.dp.coldCount, 1);
  const cold = s.dp.exportEsp(p.child);
  assert.deepEqual(cold, hot);
  assert.equal(s.dp.coldCount, 1, 'still cold');
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 0);
  cold.inKeys.fill(0);
  assert.deepEqual(s.dp.exportEsp(p.child).inKeys, hot.inKeys, 'a copy, not a view of the slot');
});

test('data plane, cold children: removing a cold child zeroes and gives back its slot (issue #14)', async () => {
  const s = setup(2);
  const [a, b] = s.peers as [Peer, Peer];
  s.dp.sweepIdle(2);
  s.dp.sweepIdle(2);
  const slab = a.child.coldSlab!;
  const slot = slab.view(a.child.coldSlot);
  assert.equal(slab.used, 2);
  assert.equal(s.dp.remove(s.rec, a.child.inboundSpi, 'test'), true);
  assert.ok(zero(slot));
  assert.equal(slab.used, 1);
  assert.equal(s.dp.coldCount, 1);
  assert.equal(await s.figure('ikegate_esp_cold_child_sas'), 1);
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 0, 'not rebuilt to be removed');
  s.dp.remove(s.rec, b.child.inboundSpi, 'test');
  assert.equal(slab.used, 0);
  assert.equal(s.dp.coldCount, 0);
});

test('data plane, cold children: a forged packet for a cold child is dropped as auth_failed and moves no counter; the child is cold again at its next idle visits (RFC 4303 §3.4.3, issue #14)', async () => {
  const s = setup();
  const p = s.peers[0]!;
  s.deliver(p.seal());
  await s.checkpointed();
  s.dp.sweepIdle(1);
  s.dp.sweepIdle(1);
  const before = s.dp.exportEsp(p.child);
  const forged = p.seal();
  forged[forged.length - 1]! ^= 1; // the ICV
  s.deliver(forged);
  assert.equal(await s.drops('esp', 'auth_failed'), 1);
  assert.deepEqual(s.dp.exportEsp(p.child), before);
  assert.equal(s.dp.sweepIdle(1), 1, 'no authenticated packet since its last visit: cold at once');
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 1);
});

test("data plane, cold children: a frame with a cold child's SPI too short to open (header, IV, trailer, ICV) is dropped as short without rebuilding the child; one of exactly the shortest length is opened, and fails its ICV (RFC 4303 §3.4.3, §2; issue #14)", async () => {
  const s = setup();
  const p = s.peers[0]!;
  s.deliver(p.seal());
  s.dp.sweepIdle(1);
  s.dp.sweepIdle(1);
  assert.equal(p.child.inbound, undefined, 'cold');
  // SPI, a sequence number above the highest seen, then junk: 8 + 8 (IV) + 2 (trailer) + 16 (ICV)
  // = 34 octets is the shortest AES-GCM packet.
  const junk = (length: number) => {
    const b = new Uint8Array(length).fill(0xa5);
    b.set([0x10, 0, 0, 1, 0, 0, 0, 9]);
    return b;
  };
  for (const length of [8, 20, 33]) s.deliver(junk(length));
  assert.equal(await s.drops('esp', 'short'), 3);
  assert.equal(p.child.inbound, undefined, 'still cold');
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 0, 'no rebuild');
  s.deliver(junk(34));
  assert.equal(await s.drops('esp', 'short'), 3);
  assert.equal(await s.drops('esp', 'auth_failed'), 1, 'long enough: rebuilt and opened');
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 1);
});

test('data plane, cold children: a cold child whose state does not rebuild is removed and reported once, so its IKE SA deletes it (RFC 7296 §1.4.1); the packet is dropped as cold_state (issue #14)', async () => {
  let refuse = false;
  const provider: CryptoProvider = Object.create(defaultProvider, {
    aead: { value: (id: number, bits: number) => (refuse ? undefined : defaultProvider.aead(id, bits)) },
  });
  const s = setup(2, false, undefined, provider);
  const [a, b] = [s.peers[0]!, s.peers[1]!];
  s.dp.sweepIdle(2);
  s.dp.sweepIdle(2);
  assert.equal(s.dp.coldCount, 2);
  const slot = a.child.coldSlab!.view(a.child.coldSlot);
  assert.ok(!zero(slot));
  refuse = true;
  s.deliver(a.seal());
  assert.equal(await s.drops('esp', 'cold_state'), 1);
  assert.ok(zero(slot), 'the slot that held its keys was zeroed and given back');
  assert.equal(a.child.coldSlab, undefined);
  assert.deepEqual(s.lost, [a.child]);
  assert.equal(s.dp.coldCount, 1, 'its slot was given back');
  assert.ok(!s.rec.children.includes(a.child), 'gone from its SA');
  s.deliver(a.seal());
  assert.equal(await s.drops('esp', 'unknown_spi'), 1, 'its SPI routes nowhere now');
  assert.equal(s.lost.length, 1, 'reported once');
  refuse = false;
  s.deliver(b.seal());
  assert.equal(s.written.length, 1, 'the other child is untouched');
});

test('data plane, cold children: the RFC 6311 §4.3 skip of the outbound counter reaches a cold child', () => {
  const s = setup();
  const p = s.peers[0]!;
  s.dp.sweepIdle(1);
  s.dp.sweepIdle(1);
  assert.equal(s.dp.skipOutbound(s.rec, 1000n), 1);
  assert.equal(p.child.outbound, undefined, 'moved in its slot, nothing built');
  assert.equal(s.dp.skipOutbound(s.rec, 999n), 0, 'never backwards');
  assert.equal(s.dp.skipOutbound(s.rec, 2n ** 40n), 1, 'capped at 2^32 - 1 without ESN');
  assert.equal(s.dp.exportEsp(p.child).seqOut, 0xffff_ffffn);
  const t = setup();
  t.dp.sweepIdle(1);
  t.dp.sweepIdle(1);
  assert.equal(t.dp.skipOutbound(t.rec, 1000n), 1);
  t.dp.outbound(icmp('10.2.0.7', t.peers[0]!.vip));
  assert.deepEqual(t.received(), [1001]);
});

test("data plane, cold children: a child added with an inbound SPI another child holds replaces it; the old one's slot is given back (zeroed on release) (issue #14)", () => {
  const s = setup(1, false, undefined, defaultProvider, 3_600_000);
  try {
    const old = s.peers[0]!.child;
    const slab = old.coldSlab!;
    const keys = s.dp.exportEsp(old);
    const again = s.dp.add(
      s.rec,
      {
        inboundSpi: old.inboundSpi,
        outboundSpi: 0x20000077,
        encryption: AES256GCM,
        inKeys: keys.inKeys,
        outKeys: keys.outKeys,
        tsLocal: [any],
        tsRemote: [any],
        seqOut: 0n,
        seqIn: 0n,
      },
      false,
    );
    assert.equal(s.dp.coldCount, 1);
    assert.equal(old.coldSlab, undefined, "the old child's slot was given back");
    assert.equal(slab.used, 1, 'one slot in use: the new child takes the one given back');
    assert.deepEqual(s.rec.children, [again]);
    assert.ok(s.dp.remove(s.rec, old.inboundSpi, 'test'));
    assert.equal(s.dp.coldCount, 0);
  } finally {
    s.dp.stop();
  }
});

test('data plane, cold children (property): any interleaving of packets both ways and sweeps delivers every fresh packet, and the outbound sequence numbers run 1, 2, 3, ... with no reuse or gap (RFC 4303 §3.3.3, RFC 4106 §3.1)', () => {
  fc.assert(
    fc.property(fc.array(fc.constantFrom('in', 'out', 'sweep'), { maxLength: 60 }), (ops) => {
      const s = setup();
      const p = s.peers[0]!;
      let ins = 0;
      const seqs: number[] = [];
      for (const op of ops) {
        if (op === 'in') {
          s.deliver(p.seal());
          ins++;
        } else if (op === 'out') {
          s.dp.outbound(icmp('10.2.0.7', p.vip));
          seqs.push(...s.received());
        } else s.dp.sweepIdle(1);
      }
      assert.equal(s.written.length, ins);
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => i + 1),
      );
      s.dp.stop();
    }),
    { numRuns: 150 },
  );
});

test('data plane, cold children: with extended sequence numbers a cold child is rebuilt for every packet (the high half is inferred first) and refuses replays after (RFC 4303 §3.4.3, Appendix A)', async () => {
  const s = setup(1, true);
  const p = s.peers[0]!;
  const p1 = p.seal();
  s.deliver(p1);
  assert.equal(s.written.length, 1);
  await s.checkpointed();
  s.dp.sweepIdle(1);
  assert.equal(s.dp.sweepIdle(1), 1);
  s.deliver(p1);
  assert.equal(await s.drops('esp', 'replay'), 1);
  assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 1, 'rebuilt to check it');
  s.deliver(p.seal());
  assert.equal(s.written.length, 2);
  s.dp.outbound(icmp('10.2.0.7', p.vip));
  assert.deepEqual(s.received(), [1]);
  s.dp.stop();
});

test('data plane, cold children: the sweep quota visits every child once per period, however few they are: fractions carry over from tick to tick (issue #14)', () => {
  const one = new SweepQuota(1000, 60_000);
  const ticks = Array.from({ length: 600 }, () => one.next(1));
  assert.ok(ticks.every((n) => n <= 1));
  const visits = ticks.reduce((a, b) => a + b, 0);
  assert.ok(visits >= 9 && visits <= 10, `one child: ${visits} visits in 600 ticks of 1 s, not one a tick`);
  const many = new SweepQuota(1000, 60_000);
  const pass = Array.from({ length: 60 }, () => many.next(100_000)).reduce((a, b) => a + b, 0);
  assert.ok(pass >= 99_990 && pass <= 100_000, `100,000 children: ${pass} visits in one period`);
  assert.equal(new SweepQuota(20, 200).next(0), 0);
  const capped = new SweepQuota(1000, 1000);
  assert.equal(capped.next(5), 5, 'at most every child once a tick');
});

test("data plane: an inner packet must come from the child's remote selectors; a road warrior's (its virtual IP alone) is checked against its address, a narrower one (a protocol) by its ranges (RFC 4301 §5.2)", async () => {
  const host = (vip: Uint8Array, ipProtocol = 0) => [
    { ...any, ipProtocol, startAddress: vip, endAddress: vip },
  ];
  /** UDP (the echo request's octets, protocol 17) from `port`. */
  const udp = (src: string, port = 2048) => {
    const p = icmp(src, '10.2.0.7');
    p[9] = 17;
    p[20] = port >> 8;
    p[21] = port & 255;
    return p;
  };
  for (const [what, ts, from, passes] of [
    ['its address', (v: Uint8Array) => host(v), '10.9.0.2', true],
    ['another address', (v: Uint8Array) => host(v), '10.9.0.3', false],
    ['ICMP, the selector UDP only', (v: Uint8Array) => host(v, 17), '10.9.0.2', false],
    [
      'two selectors, the second one',
      (v: Uint8Array) => [...host(Uint8Array.of(10, 9, 9, 9)), ...host(v)],
      '10.9.0.2',
      true,
    ],
    [
      'ports 1024-65535, from port 80',
      (v: Uint8Array) => [{ ...host(v)[0]!, startPort: 1024 }],
      '10.9.0.2',
      false,
    ],
    [
      'ports 0-1023, from port 2048',
      (v: Uint8Array) => [{ ...host(v)[0]!, endPort: 1023 }],
      '10.9.0.2',
      false,
    ],
    [
      'a range from its address up, from inside it',
      (v: Uint8Array) => [{ ...host(v)[0]!, endAddress: Uint8Array.of(10, 9, 0, 9) }],
      '10.9.0.5',
      true,
    ],
    [
      'its address and another: from the other',
      (v: Uint8Array) => [...host(v), ...host(Uint8Array.of(10, 9, 9, 9))],
      '10.9.9.9',
      true,
    ],
  ] as const) {
    const s = setup(1, false, ts);
    const p = s.peers[0]!;
    const inner = what.startsWith('ports')
      ? udp(from, what.endsWith('port 80') ? 80 : 2048)
      : icmp(from, '10.2.0.7');
    const r = p.toUs.encapsulate(inner);
    assert.equal(r.kind, 'packet');
    if (r.kind === 'packet') s.deliver(r.packet.slice());
    assert.equal(s.written.length, passes ? 1 : 0, what);
    assert.equal(await s.drops('esp', 'ts_violation'), passes ? 0 : 1, what);
    if (what === 'ICMP, the selector UDP only') {
      const u = p.toUs.encapsulate(udp('10.9.0.2'));
      if (u.kind === 'packet') s.deliver(u.packet.slice());
      assert.equal(s.written.length, 1, 'UDP from its address passes');
    }
    s.dp.stop();
  }
  // Road warriors hold no ranges of their own: every such child shares one (empty) list.
  const two = setup(2, false, (v) => host(v));
  assert.equal(two.peers[0]!.child.tsRemote, two.peers[1]!.child.tsRemote);
  assert.equal(two.peers[0]!.child.tsRemote.length, 0);
  two.dp.stop();
});

test('data plane: a child adopted from a snapshot sends past its stored counter by TAKEOVER_SEQUENCE_MARGIN and its inbound window restarts at the stored counter (RFC 6311 §4.3 spirit: no sequence number, so no AES-GCM nonce, is used twice)', async () => {
  const s = setup();
  const p = s.peers[0]!;
  const old = s.dp.exportEsp(p.child);
  const rec: SaRecord = { ...s.rec, id: 2, children: NO_CHILDREN };
  const adopted = s.dp.add(rec, adoptedSpec(old, 5n, 1n), true);
  s.dp.outbound(icmp('10.2.0.7', '10.9.0.50'));
  assert.deepEqual(s.received(), [5 + 2 ** 20 + 1]);
  assert.equal(s.dp.exportEsp(adopted).seqIn, 1n, 'the inbound window restarts at the stored counter');
  s.dp.stop();
});

test("data plane, cold children: after the stream closed and the peer came back on a new one, a cold child's first authenticated packet there is delivered and moves the SA; a forged one on a new path moves nothing (RFC 9329 §6, issue #14)", async () => {
  const s = setup();
  const p = s.peers[0]!;
  s.dp.sweepIdle(1);
  s.dp.sweepIdle(1);
  assert.equal(s.dp.coldCount, 1);
  const next: PeerPath = { ...PATH, connection: 'tcp:4500:192.0.2.10:40001:2', transport: 'tcp' };
  const forged = p.seal();
  forged[forged.length - 1]! ^= 1;
  s.deliver(forged, next);
  assert.deepEqual(s.moved, [], 'an unauthenticated packet moves no SA');
  s.deliver(p.seal(), next);
  assert.equal(s.written.length, 1);
  assert.deepEqual(s.moved, [next]);
  s.dp.stop();
});

test('data plane, cold children: with children going cold (coldChildAfterMs > 0) a new child starts cold, its keys in a slot; its first packet builds it and is delivered, our first packet out is sequence number 1; a replay or a short frame before that builds nothing (RFC 4303 §3.3.3, §3.4.3; issue #14)', async () => {
  const s = setup(2, false, undefined, defaultProvider, 3_600_000);
  const [a, b] = [s.peers[0]!, s.peers[1]!];
  try {
    assert.equal(s.dp.coldCount, 2, 'both start cold');
    assert.equal(a.child.inbound, undefined);
    assert.equal(await s.figure('ikegate_esp_cold_child_sas'), 2);
    const first = a.seal();
    s.deliver(first.subarray(0, 20));
    assert.equal(await s.drops('esp', 'short'), 1);
    assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 0, 'nothing built for it');
    s.deliver(first);
    assert.equal(s.written.length, 1, 'delivered');
    assert.ok(a.child.inbound, 'built by its first packet');
    assert.equal(await s.figure('ikegate_esp_child_thaws_total'), 1);
    s.deliver(first);
    assert.equal(await s.drops('esp', 'replay'), 1);
    s.dp.outbound(icmp('10.2.0.7', b.vip));
    assert.deepEqual(s.received(1), [1], 'the other child, built by our packet, starts at 1');
    assert.equal(s.dp.coldCount, 0);
  } finally {
    s.dp.stop();
  }
});

test('data plane, cold children: a child adopted from a snapshot starts cold and, built by its first packet, sends past its stored counter by TAKEOVER_SEQUENCE_MARGIN and refuses what the old owner had seen (RFC 6311 §4.3 spirit, issue #11, issue #14)', async () => {
  const s = setup(1, false, undefined, defaultProvider, 3_600_000);
  try {
    const old = s.dp.exportEsp(s.peers[0]!.child);
    const adopted = s.dp.add({ ...s.rec, id: 2, children: NO_CHILDREN }, adoptedSpec(old, 5n, 7n), true);
    assert.equal(adopted.inbound, undefined, 'cold');
    assert.deepEqual(
      { seqIn: s.dp.exportEsp(adopted).seqIn, seqOut: s.dp.exportEsp(adopted).seqOut },
      { seqIn: 7n, seqOut: 5n + 2n ** 20n },
    );
    s.dp.outbound(icmp('10.2.0.7', '10.9.0.50'));
    assert.deepEqual(s.received(), [5 + 2 ** 20 + 1]);
  } finally {
    s.dp.stop();
  }
});

test('data plane, cold children: a child that starts cold is refused at install, as a built one would be, when its keys do not fit its suite or its suite is not offered (issue #14)', () => {
  const s = setup(0, false, undefined, defaultProvider, 3_600_000);
  const spec = (inKeys: Uint8Array, outKeys: Uint8Array, encryption = AES256GCM) => ({
    inboundSpi: 0x10000042,
    outboundSpi: 0x20000042,
    encryption,
    inKeys,
    outKeys,
    tsLocal: [any],
    tsRemote: [any],
    seqOut: 0n,
    seqIn: 0n,
  });
  try {
    const k36 = new Uint8Array(36);
    assert.throws(() => s.dp.add(s.rec, spec(k36, new Uint8Array(20)), false), /36 octets each way/);
    assert.throws(() => s.dp.add(s.rec, spec(new Uint8Array(20), new Uint8Array(20)), false), /36 octets/);
    assert.throws(
      () => s.dp.add(s.rec, spec(k36, k36, { id: 9999, keyBits: 256 } as unknown as typeof AES256GCM), false),
      /not offered/,
    );
    assert.equal(s.dp.childCount, 0, 'nothing indexed');
    assert.equal(s.dp.coldCount, 0, 'no slot taken');
  } finally {
    s.dp.stop();
  }
});
