/**
 * The edge through in-memory binds (@ikegate/transport/testing): no root, no sockets. The test
 * plays the peers (datagrams in, streams connected, written, ended, reset, not read) and the
 * workers (a fake WorkerLink per shard group that records what it is given and may answer through
 * `edge.send`), and reads the edge's decisions from what the peers receive and from the metrics.
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { connect as netConnect } from 'node:net';
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { afterEach, describe, test } from 'node:test';
import {
  DEFAULT_SHARD_BITS,
  type InboundFrame,
  initialRequestShard,
  makeEspSpi,
  makeIkeSpi,
  type OutboundFrame,
  type PeerPath,
  type WorkerLink,
} from '@ikegate/cluster';
import { encodeEspFrame, encodeIkeFrame, IKETCP_PREFIX } from '@ikegate/iketcp';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { SeededRandom, toHex } from '@ikegate/testkit';
import {
  type MemoryResponderBinds,
  memoryResponderBinds,
  type MemoryStreamPeer,
} from '@ikegate/transport/testing';
import { connectionKey, Edge, type EdgeSettings, UDP_PATHS_MAX } from './edge.js';
import { NodeUdpBind } from '@ikegate/transport';

const layout = { shardBits: DEFAULT_SHARD_BITS };
const HASH_KEY = new Uint8Array(32).fill(7);
const WORKERS = 4;
const log = createLogger({ destination: new PassThrough(), level: 'silent' });
const random = new SeededRandom('edge.test');
const rand = (n: number) => random.bytes(n);

// --- fakes and helpers -----------------------------------------------------------------------

interface Delivered {
  readonly kind: 'ike' | 'esp';
  readonly shard: number;
  readonly hex: string;
  readonly path: PeerPath;
}

/** A worker that records what it is given (copied: the views die with the edge's call). */
class FakeWorker implements WorkerLink {
  readonly delivered: Delivered[] = [];
  readonly closed: PeerPath[] = [];
  /** Called after recording; may answer through the edge. */
  answer: ((frame: InboundFrame) => void) | undefined;

  deliver(frame: InboundFrame): void {
    this.delivered.push({ kind: frame.kind, shard: frame.shard, hex: toHex(frame.bytes), path: frame.path });
    this.answer?.(frame);
  }

  connectionClosed(path: PeerPath): void {
    this.closed.push(path);
  }
}

interface Setup {
  readonly edge: Edge;
  readonly binds: MemoryResponderBinds;
  readonly workers: FakeWorker[];
  readonly metrics: Metrics;
  /** The worker that owns `shard` (shard mod 4). */
  worker(shard: number): FakeWorker;
  delivered(): Delivered[];
}

const running: Edge[] = [];
afterEach(async () => {
  for (const e of running.splice(0)) await e.close();
});

async function setup(extra: Partial<EdgeSettings> = {}): Promise<Setup> {
  const binds = memoryResponderBinds();
  const workers = Array.from({ length: WORKERS }, () => new FakeWorker());
  const metrics = new Metrics({ processMetrics: false });
  const edge = new Edge(
    {
      listen: {},
      layout,
      initialHashKey: HASH_KEY,
      route: (shard) => workers[shard % WORKERS],
      workers: () => workers,
      ...extra,
    },
    log,
    metrics,
    binds,
  );
  running.push(edge);
  await edge.start();
  return {
    edge,
    binds,
    workers,
    metrics,
    worker: (shard) => workers[shard % WORKERS]!,
    delivered: () => workers.flatMap((w) => w.delivered),
  };
}

type Labels = Record<string, string>;
interface Readable {
  get(): Promise<{ values: { labels: Partial<Record<string, string | number>>; value: number }[] }>;
}

/** Sum of a counter's (or gauge's) samples whose labels include `labels`. */
async function count(metric: Readable, labels: Labels): Promise<number> {
  const { values } = await metric.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))
    .reduce((sum, v) => sum + v.value, 0);
}

/** Polls `check` every 2 ms; fails after 5 s (every wait is bounded). */
async function until(check: () => boolean, what: string): Promise<void> {
  for (let waited = 0; !check(); waited += 2) {
    if (waited >= 5_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** An IKE message (RFC 7296 §3.1 header, `body` octets after it) with the Length field right. */
function ikeMessage(o: {
  spiI: Uint8Array;
  spiR?: Uint8Array;
  exchange?: number;
  initiator?: boolean;
  response?: boolean;
  body?: number;
}): Uint8Array {
  const m = new Uint8Array(28 + (o.body ?? 0)).fill(0x5a, 28);
  m.set(o.spiI, 0);
  m.set(o.spiR ?? new Uint8Array(8), 8);
  m[16] = 0; // next payload
  m[17] = 0x20; // version 2.0
  m[18] = o.exchange ?? 37; // INFORMATIONAL
  m[19] = ((o.initiator ?? true) ? 0x08 : 0) | (o.response ? 0x20 : 0);
  new DataView(m.buffer).setUint32(24, m.length);
  return m;
}

const IKE_SA_INIT = 34;
const peerSpi = () => Uint8Array.of(0x80, ...rand(7));
/** An IKE_SA_INIT request: responder SPI zero, routed by the keyed hash. */
const initRequest = (spiI = peerSpi(), body = 200) => ikeMessage({ spiI, exchange: IKE_SA_INIT, body });

function espPacket(spi: number, length = 64): Uint8Array {
  const p = new Uint8Array(length).fill(0x33);
  new DataView(p.buffer).setUint32(0, spi);
  new DataView(p.buffer).setUint32(4, 1);
  return p;
}

const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);

/** A peer on a stream that has sent the prefix and `frames`. */
function streamPeer(
  s: Setup,
  frames: Uint8Array[] = [],
  from?: { address?: string; port?: number },
): MemoryStreamPeer {
  const peer = s.binds.tcp.connect(from);
  assert.equal(peer.refused, false);
  peer.write(cat(IKETCP_PREFIX, ...frames));
  return peer;
}

// --- UDP ---------------------------------------------------------------------------------------

describe('edge over UDP (RFC 7296 §2.23, RFC 3948) through in-memory binds', () => {
  test('a datagram from source port 0 (forged: nothing can answer it) is dropped and counted before it makes a path or reaches a worker', async () => {
    const s = await setup();
    s.binds.ike.inject(initRequest(peerSpi()), '198.51.100.7', 0);
    s.binds.natT.inject(cat(new Uint8Array(4), initRequest(peerSpi())), '198.51.100.7', 0);
    assert.deepEqual(s.delivered(), []);
    assert.equal(await count(s.metrics.drops, { layer: 'udp', reason: 'source_port_zero' }), 2);
    s.binds.ike.inject(initRequest(peerSpi()), '198.51.100.7', 500);
    assert.equal(s.delivered().length, 1, 'the same from a real port is routed');
  });

  test('UDP 500: IKE goes to the worker of our SPI (the responder SPI when the I flag is set, the initiator SPI when clear); IKE_SA_INIT by the keyed hash of SPIi and peer IP, never the port (ARCHITECTURE.md routing rule)', async () => {
    const s = await setup();
    const ourSpi = makeIkeSpi(37, rand, layout);
    const fromInitiator = ikeMessage({ spiI: peerSpi(), spiR: ourSpi });
    const weInitiated = ikeMessage({
      spiI: makeIkeSpi(38, rand, layout),
      spiR: peerSpi(),
      initiator: false,
      response: true,
    });
    const spiI = peerSpi();
    s.binds.ike.inject(fromInitiator, '198.51.100.7', 500);
    s.binds.ike.inject(weInitiated, '198.51.100.7', 500);
    s.binds.ike.inject(initRequest(spiI), '198.51.100.7', 500);
    s.binds.ike.inject(initRequest(spiI), '198.51.100.7', 4321); // the same SA from another port
    const hashed = initialRequestShard(spiI, '198.51.100.7', HASH_KEY, layout);
    assert.deepEqual(
      s
        .delivered()
        .map((d) => d.shard)
        .sort((a, b) => a - b),
      [37, 38, hashed, hashed].sort((a, b) => a - b),
    );
    assert.equal(s.worker(37).delivered.find((d) => d.shard === 37)?.hex, toHex(fromInitiator));
    const first = s.worker(37).delivered.find((d) => d.shard === 37)!;
    assert.deepEqual(first.path, {
      connection: 'udp:500:198.51.100.7:500',
      transport: 'udp',
      local: { address: '192.0.2.1', port: 500 },
      remote: { address: '198.51.100.7', port: 500 },
    });
  });

  test('UDP 4500: IKE after the non-ESP marker and ESP by its SPI reach their shards; NAT-keepalives and malformed datagrams are counted, not delivered (RFC 3948 §2.2, §2.3)', async () => {
    const s = await setup();
    const ike = ikeMessage({ spiI: peerSpi(), spiR: makeIkeSpi(5, rand, layout) });
    const esp = espPacket(makeEspSpi(6, rand, layout));
    s.binds.natT.inject(cat(new Uint8Array(4), ike), '198.51.100.8', 4500);
    s.binds.natT.inject(esp, '198.51.100.8', 4500);
    s.binds.natT.inject(Uint8Array.of(0xff), '198.51.100.8', 4500);
    s.binds.natT.inject(Uint8Array.of(1, 2), '198.51.100.8', 4500);
    assert.deepEqual(
      s.delivered().map((d) => `${d.kind}:${d.shard}:${d.hex}`),
      [`ike:5:${toHex(ike)}`, `esp:6:${toHex(esp)}`],
    );
    assert.equal(await count(s.metrics.frames, { transport: 'udp', kind: 'keepalive', direction: 'in' }), 1);
    assert.equal(await count(s.metrics.drops, { layer: 'udp', reason: 'short' }), 1);
  });

  test('UDP: the datagrams of one peer 4-tuple carry one PeerPath object (the relay and the worker find it by identity); another port or address gets its own; the cache is bounded (UDP_PATHS_MAX)', async () => {
    const s = await setup();
    const spi = makeEspSpi(6, rand, layout);
    for (let i = 0; i < 3; i++) s.binds.natT.inject(espPacket(spi), '198.51.100.8', 4500);
    s.binds.natT.inject(espPacket(spi), '198.51.100.8', 4501);
    s.binds.natT.inject(espPacket(spi), '198.51.100.9', 4500);
    const paths = s.delivered().map((d) => d.path);
    assert.equal(paths.length, 5);
    assert.equal(paths[0], paths[1]);
    assert.equal(paths[1], paths[2]);
    assert.notEqual(paths[2], paths[3]);
    assert.notEqual(paths[2], paths[4]);
    assert.deepEqual(
      paths.map((p) => `${p.connection} ${p.remote.address}:${p.remote.port}`),
      [
        ...Array<string>(3).fill('udp:4500:198.51.100.8:4500 198.51.100.8:4500'),
        'udp:4500:198.51.100.8:4501 198.51.100.8:4501',
        'udp:4500:198.51.100.9:4500 198.51.100.9:4500',
      ],
    );
    // As many distinct (spoofed) sources as the cache holds: it starts again, the peer's next
    // datagram gets a new (equal) object.
    for (let i = 0; i < UDP_PATHS_MAX; i++)
      s.binds.natT.inject(Uint8Array.of(0xff), `10.9.${i >> 8}.${i & 255}`, 9);
    s.binds.natT.inject(espPacket(spi), '198.51.100.8', 4500);
    const again = s.delivered().at(-1)!.path;
    assert.notEqual(again, paths[0]);
    assert.deepEqual(again, paths[0]);
  });

  test('answers leave by the port the message came in on: IKE on 4500 gets the non-ESP marker, on 500 none, ESP always from 4500; closeAfter is ignored for UDP (RFC 3948 §2.2, RFC 9329 §6.3)', async () => {
    const s = await setup();
    const path500: PeerPath = {
      connection: 'udp:500:x',
      transport: 'udp',
      local: { address: '192.0.2.1', port: 500 },
      remote: { address: '198.51.100.9', port: 500 },
    };
    const path4500: PeerPath = {
      ...path500,
      local: { address: '192.0.2.1', port: 4500 },
      remote: { address: '198.51.100.9', port: 4501 },
    };
    const ike = ikeMessage({ spiI: peerSpi(), response: true });
    const esp = espPacket(0x4000_0001);
    assert.equal(s.edge.send({ kind: 'ike', path: path500, bytes: ike, closeAfter: 'cookie' }), 'sent');
    assert.equal(s.edge.send({ kind: 'ike', path: path4500, bytes: ike }), 'sent');
    assert.equal(s.edge.send({ kind: 'esp', path: path500, bytes: esp }), 'sent');
    assert.deepEqual(
      s.binds.ike.sent.map((d) => [toHex(d.datagram), d.address, d.port]),
      [[toHex(ike), '198.51.100.9', 500]],
    );
    assert.deepEqual(
      s.binds.natT.sent.map((d) => [toHex(d.datagram), d.port]),
      [
        [toHex(cat(new Uint8Array(4), ike)), 4501],
        [toHex(esp), 500],
      ],
    );
  });

  test('a frame whose shard has no owner is dropped no_owner, or handed to `unrouted` as a copy (ARCHITECTURE.md)', async () => {
    const kept: InboundFrame[] = [];
    const s = await setup({ route: () => undefined });
    s.binds.ike.inject(initRequest(), '198.51.100.7', 500);
    assert.equal(await count(s.metrics.drops, { layer: 'edge', reason: 'no_owner' }), 1);
    const t = await setup({ route: () => undefined, unrouted: (f) => kept.push(f) });
    const peer = streamPeer(t, [encodeIkeFrame(initRequest(peerSpi(), 100))]);
    await until(() => kept.length === 1, 'unrouted frame');
    const before = toHex(kept[0]!.bytes);
    peer.write(encodeIkeFrame(initRequest(peerSpi(), 100))); // the decoder moves on
    await until(() => kept.length === 2, 'second frame');
    assert.equal(toHex(kept[0]!.bytes), before, 'the first frame was copied out of the stream');
  });
});

// --- TCP and TLS ---------------------------------------------------------------------------------

describe('edge over RFC 9329 streams through in-memory binds', () => {
  test('TCP: frames after the "IKETCP" prefix reach the worker of their SPI on the stream’s path; answers are framed back on that stream (RFC 9329 §3, §4)', async () => {
    const s = await setup();
    const ike = ikeMessage({ spiI: peerSpi(), spiR: makeIkeSpi(100, rand, layout) });
    const esp = espPacket(makeEspSpi(101, rand, layout));
    const peer = streamPeer(s, [encodeIkeFrame(ike), encodeEspFrame(esp)], {
      address: '198.51.100.20',
      port: 40001,
    });
    await until(() => s.delivered().length === 2, 'frames delivered');
    const [d1, d2] = [s.worker(100).delivered[0]!, s.worker(101).delivered[0]!];
    assert.deepEqual([d1.kind, d1.shard, d1.hex], ['ike', 100, toHex(ike)]);
    assert.deepEqual([d2.kind, d2.shard, d2.hex], ['esp', 101, toHex(esp)]);
    assert.equal(d1.path.transport, 'tcp');
    assert.equal(d1.path.connection, d2.path.connection);
    assert.deepEqual(d1.path.remote, { address: '198.51.100.20', port: 40001 });
    assert.deepEqual(d1.path.local, { address: '192.0.2.1', port: 4500 });
    const answer = ikeMessage({
      spiI: ike.subarray(0, 8),
      spiR: ike.subarray(8, 16),
      response: true,
      body: 40,
    });
    assert.equal(s.edge.send({ kind: 'ike', path: d1.path, bytes: answer }), 'sent');
    assert.equal(s.edge.send({ kind: 'esp', path: d1.path, bytes: esp }), 'sent');
    await until(() => peer.received().length > 0, 'answer');
    await until(
      () => peer.received().length === encodeIkeFrame(answer).length + encodeEspFrame(esp).length,
      'all',
    );
    assert.equal(
      toHex(peer.received()),
      toHex(cat(encodeIkeFrame(answer), encodeEspFrame(esp))),
      'no prefix from the responder',
    );
    assert.equal(await count(s.metrics.connections, { transport: 'tcp' }), 1);
  });

  test('TLS: the same RFC 9329 stream on the TLS listener, with a tls path; a failed handshake is counted and its slot given back (RFC 9329 §8)', async () => {
    const s = await setup({ maxConnectionsPerAddress: 1 });
    const failed = s.binds.tls.connect({ address: '198.51.100.30' }, { handshake: 'fail' });
    assert.equal(failed.refused, false);
    await until(() => failed.isClosed, 'failed handshake closed');
    assert.equal(await count(s.metrics.drops, { layer: 'tls', reason: 'handshake_failed' }), 1);
    assert.equal(await count(s.metrics.tlsHandshakes, { result: 'failed' }), 1);
    const peer = s.binds.tls.connect({ address: '198.51.100.30' });
    assert.equal(peer.refused, false, 'the failed handshake’s slot was released');
    peer.write(cat(IKETCP_PREFIX, encodeIkeFrame(initRequest())));
    await until(() => s.delivered().length === 1, 'IKE over TLS');
    assert.equal(s.delivered()[0]!.path.transport, 'tls');
    assert.equal(s.delivered()[0]!.path.local.port, 443);
    assert.equal(await count(s.metrics.tlsHandshakes, { result: 'ok' }), 1);
  });

  test('a wrong prefix closes the stream (bad_prefix) and a missing one times out (prefix_timeout), each counted as a drop and a closing/closed event (RFC 9329 §4; PROTOCOL.md)', async () => {
    const s = await setup({ prefixTimeoutMs: 20 });
    const wrong = s.binds.tcp.connect();
    wrong.write(Buffer.from('IKETCX'));
    const slow = s.binds.tcp.connect();
    slow.write(Buffer.from('IKE'));
    await until(() => wrong.isClosed && slow.isClosed, 'both closed');
    assert.equal(await count(s.metrics.drops, { layer: 'iketcp', reason: 'bad_prefix' }), 1);
    for (const reason of ['bad_prefix', 'prefix_timeout']) {
      assert.equal(
        await count(s.metrics.connectionEvents, { transport: 'tcp', event: 'closing', reason }),
        1,
        reason,
      );
      assert.equal(
        await count(s.metrics.connectionEvents, { transport: 'tcp', event: 'closed', reason }),
        1,
        reason,
      );
    }
    assert.equal(s.edge.connectionCount, 0);
    assert.equal(s.delivered().length, 0);
  });

  test('NAT-keepalives and short frames on a stream are dropped and counted, the stream kept; nothing is sent back (RFC 9329 §3)', async () => {
    const s = await setup();
    const keepalive = Uint8Array.of(0, 3, 0xff);
    const peer = streamPeer(s, [
      keepalive,
      keepalive,
      Uint8Array.of(0, 4, 1, 2),
      encodeIkeFrame(initRequest()),
    ]);
    await until(() => s.delivered().length === 1, 'the IKE frame after them');
    assert.equal(await count(s.metrics.drops, { layer: 'iketcp', reason: 'keepalive' }), 2);
    assert.equal(await count(s.metrics.drops, { layer: 'iketcp', reason: 'short_frame' }), 1);
    assert.equal(peer.isClosed, false);
    assert.equal(peer.received().length, 0);
  });

  test('a FIN inside a frame: the partial frame is discarded (truncated), the stream closed peer_closed and every worker told (RFC 9329 §6; PROTOCOL.md)', async () => {
    const s = await setup();
    const peer = streamPeer(s, [
      encodeIkeFrame(initRequest()),
      encodeIkeFrame(initRequest()).subarray(0, 20),
    ]);
    await until(() => s.delivered().length === 1, 'the whole frame');
    const path = s.delivered()[0]!.path;
    peer.end();
    await until(() => s.workers.every((w) => w.closed.length === 1), 'workers told');
    for (const w of s.workers) assert.deepEqual(w.closed, [path]);
    assert.equal(await count(s.metrics.drops, { layer: 'iketcp', reason: 'truncated' }), 1);
    assert.equal(await count(s.metrics.connectionEvents, { event: 'closed', reason: 'peer_closed' }), 1);
    assert.equal(await count(s.metrics.connectionEvents, { event: 'closing' }), 0, 'not our decision');
    assert.equal(s.edge.send({ kind: 'ike', path, bytes: initRequest() }), 'no-connection');
    assert.equal(await count(s.metrics.drops, { layer: 'edge', reason: 'no_connection' }), 1);
  });

  test('a reset from the peer closes the stream with reason reset and tells the workers (RFC 9329 §6)', async () => {
    const s = await setup();
    const peer = streamPeer(s, [encodeIkeFrame(initRequest())]);
    await until(() => s.delivered().length === 1, 'frame');
    peer.reset();
    await until(() => s.workers[0]!.closed.length === 1, 'worker told');
    assert.equal(await count(s.metrics.connectionEvents, { event: 'closed', reason: 'reset' }), 1);
    assert.equal(await count(s.metrics.connections, { transport: 'tcp' }), 0);
  });

  test('caps: past maxConnectionsPerAddress one address is refused while others are admitted; past maxConnections everyone is; a closed stream gives its slot back (PROTOCOL.md abuse bounds)', async () => {
    const s = await setup({ maxConnections: 3, maxConnectionsPerAddress: 2 });
    const a1 = s.binds.tcp.connect({ address: '198.51.100.1' });
    const a2 = s.binds.tcp.connect({ address: '198.51.100.1' });
    const a3 = s.binds.tcp.connect({ address: '198.51.100.1' });
    assert.deepEqual([a1.refused, a2.refused, a3.refused], [false, false, true]);
    const b1 = s.binds.tls.connect({ address: '198.51.100.2' }); // TLS counts against the same caps
    assert.equal(b1.refused, false);
    const c1 = s.binds.tcp.connect({ address: '198.51.100.3' });
    assert.equal(c1.refused, true, 'the total cap');
    assert.equal(
      await count(s.metrics.connectionEvents, {
        transport: 'tcp',
        event: 'refused',
        reason: 'connection_limit',
      }),
      2,
    );
    a1.end();
    await until(() => a1.isClosed, 'a1 closed');
    const c2 = s.binds.tcp.connect({ address: '198.51.100.3' });
    assert.equal(c2.refused, false, 'the slot came back');
    const a4 = s.binds.tcp.connect({ address: '198.51.100.1' });
    assert.equal(a4.refused, true, 'the total cap again');
  });

  test('caps: IPv6 peers count per /64 (one host holds a whole /64), an IPv4-mapped address as its IPv4 address (PROTOCOL.md abuse bounds)', async () => {
    const s = await setup({ maxConnections: 10, maxConnectionsPerAddress: 2 });
    const refused = (address: string) => s.binds.tcp.connect({ address }).refused;
    assert.equal(refused('2001:db8:1:2::1'), false);
    assert.equal(refused('2001:db8:1:2:ffff:ffff:ffff:ffff'), false);
    assert.equal(refused('2001:db8:1:2:a:b:c:d'), true, 'a third address of the same /64');
    assert.equal(refused('2001:db8:1:3::1'), false, 'another /64');
    assert.equal(refused('198.51.100.9'), false);
    assert.equal(refused('::ffff:198.51.100.9'), false);
    assert.equal(refused('::ffff:198.51.100.9'), true, 'the IPv4 address, however written');
    assert.equal(connectionKey('2001:db8:1:2::1%eth0'), connectionKey('2001:db8:1:2::2'));
  });

  test('a peer that repeats IKE_SA_INIT and never reads is closed ike_output_overflow once its unread answers pass maxIkeBuffer; counted as closing/closed and a drop, the workers told (issue #9)', async () => {
    const s = await setup({ maxIkeBuffer: 16 * 1024 });
    for (const w of s.workers) {
      w.answer = (f) => {
        // Every IKE_SA_INIT is answered, as a worker answers retransmissions from its cache.
        s.edge.send({
          kind: 'ike',
          path: f.path,
          bytes: ikeMessage({
            spiI: f.bytes.subarray(0, 8),
            spiR: peerSpi(),
            exchange: IKE_SA_INIT,
            response: true,
            body: 300,
          }),
        });
      };
    }
    const peer = s.binds.tcp.connect();
    peer.stopReading();
    const request = encodeIkeFrame(initRequest(peerSpi(), 250));
    peer.write(IKETCP_PREFIX);
    for (let i = 0; i < 2_000 && !peer.isClosed; i++) {
      peer.write(request);
      if (i % 50 === 49) await new Promise((resolve) => setImmediate(resolve));
    }
    await until(() => peer.isClosed, 'the stream closed');
    const answered = s.delivered().length;
    assert.ok(answered < 200, `closed after ${answered} requests, not 2,000`);
    assert.equal(
      await count(s.metrics.connectionEvents, {
        transport: 'tcp',
        event: 'closing',
        reason: 'ike_output_overflow',
      }),
      1,
    );
    assert.equal(
      await count(s.metrics.connectionEvents, {
        transport: 'tcp',
        event: 'closed',
        reason: 'ike_output_overflow',
      }),
      1,
    );
    assert.equal(await count(s.metrics.drops, { layer: 'edge', reason: 'ike_output_overflow' }), 1);
    await until(() => s.workers.every((w) => w.closed.length === 1), 'workers told');
    assert.equal(s.edge.connectionCount, 0);
  });

  test('ESP to a peer that does not read is dropped past maxWriteBuffer (congested) and the stream kept (RFC 9329 §3)', async () => {
    const s = await setup({ maxWriteBuffer: 4 * 1024 });
    const peer = streamPeer(s, [encodeIkeFrame(initRequest())]);
    await until(() => s.delivered().length === 1, 'frame');
    peer.stopReading();
    const path = s.delivered()[0]!.path;
    const results: string[] = [];
    for (let i = 0; i < 100; i++)
      results.push(s.edge.send({ kind: 'esp', path, bytes: espPacket(0x4000_0001, 1_000) }));
    assert.ok(results.includes('congested'));
    assert.equal(peer.isClosed, false);
    assert.equal(s.edge.connectionCount, 1);
  });

  test('COOKIE over TCP: the answer with closeAfter is written, then the stream ends with that reason; the peer reads the COOKIE then EOF (RFC 9329 §6.3)', async () => {
    const s = await setup();
    const cookie = ikeMessage({ spiI: peerSpi(), exchange: IKE_SA_INIT, response: true, body: 36 });
    const results: string[] = [];
    for (const w of s.workers) {
      w.answer = (f) => {
        results.push(
          s.edge.send({
            kind: 'ike',
            path: f.path,
            bytes: cookie,
            closeAfter: 'cookie',
          } satisfies OutboundFrame),
        );
        results.push(s.edge.send({ kind: 'ike', path: f.path, bytes: cookie }));
      };
    }
    const peer = streamPeer(s, [encodeIkeFrame(initRequest())]);
    await until(() => peer.readEof, 'EOF after the COOKIE');
    assert.deepEqual(results, ['sent', 'no-connection']);
    assert.equal(toHex(peer.received()), toHex(encodeIkeFrame(cookie)));
    await until(() => s.workers.every((w) => w.closed.length === 1), 'workers told');
    assert.equal(
      await count(s.metrics.connectionEvents, { transport: 'tcp', event: 'closing', reason: 'cookie' }),
      1,
    );
    assert.equal(
      await count(s.metrics.connectionEvents, { transport: 'tcp', event: 'closed', reason: 'cookie' }),
      1,
    );
  });

  test('drain: no new TCP stream is accepted, the open ones close (reason drain) spread over the grace period, UDP stays (issue #10; RFC 9329 §6)', async () => {
    const s = await setup();
    const peers = [0, 1, 2].map(() => streamPeer(s, [encodeIkeFrame(initRequest())]));
    await until(() => s.delivered().length === 3, 'frames');
    const open = await s.edge.drain(300);
    assert.equal(open, 3);
    assert.equal(s.edge.draining, true);
    assert.equal(s.binds.tcp.connect().refused, true, 'no new streams');
    await until(() => peers.every((p) => p.isClosed), 'all closed within the grace period');
    assert.equal(await count(s.metrics.connectionEvents, { event: 'closed', reason: 'drain' }), 3);
    assert.ok(
      s.workers.every((w) => w.closed.length === 3),
      'every worker is told of each closed stream: its SAs wait for the peer to reconnect',
    );
    assert.equal(s.binds.ike.inject(initRequest(), '198.51.100.7', 500), true, 'UDP still served');
    assert.equal(await s.edge.drain(300), 0, 'idempotent');
  });

  test('close(): every stream closes with reason shutdown, the workers are told, the binds are released', async () => {
    const s = await setup();
    const peer = streamPeer(s, [encodeIkeFrame(initRequest())]);
    await until(() => s.delivered().length === 1, 'frame');
    await s.edge.close();
    await until(() => peer.isClosed && s.workers[0]!.closed.length === 1, 'closed');
    assert.equal(await count(s.metrics.connectionEvents, { event: 'closed', reason: 'shutdown' }), 1);
    assert.equal(s.binds.ike.inject(initRequest(), '198.51.100.7', 500), false, 'UDP closed');
    assert.equal(s.binds.tcp.connect().refused, true, 'TCP closed');
  });
});

test('edge: a real UDP port asks for listen.udp.receiveBufferBytes; a size the kernel caps (net.core.rmem_max) is logged as udp-receive-buffer-capped, and datagrams the kernel drops at a full buffer are counted as ikegate_drops_total{layer="udp",reason="receive_buffer_full"} (issue #14)', async () => {
  const lines: string[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  const metrics = new Metrics({ processMetrics: false });
  const start = async (receiveBufferBytes: number) => {
    const edge = new Edge(
      {
        listen: { udp: { address: '127.0.0.1', ikePort: 0, natTPort: 0, receiveBufferBytes } },
        layout,
        initialHashKey: HASH_KEY,
        route: () => undefined,
        workers: () => [],
      },
      createLogger({ destination: out, level: 'info' }),
      metrics,
    );
    running.push(edge);
    return { edge, ports: await edge.start() };
  };
  // The edge follows its binds' kernel counters; each follow must end with the edge.
  const follows: { stopped: boolean }[] = [];
  const follow = metrics.follow.bind(metrics);
  metrics.follow = (...a: Parameters<Metrics['follow']>) => {
    const f = { stopped: false };
    follows.push(f);
    const stop = follow(...a);
    return () => ((f.stopped = true), stop());
  };
  const drops = () => count(metrics.drops, { layer: 'udp', reason: 'receive_buffer_full' });
  // Half again net.core.rmem_max: Linux sets rmem_max and reports twice that, more than was asked
  // for, yet capped, and said so.
  const rmemMax = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8').trim());
  const asked = Math.floor(rmemMax * 1.5);
  await start(asked);
  await until(() => lines.some((l) => l.includes('udp-receive-buffer-capped')), 'the capped warning');
  const capped = JSON.parse(lines.find((l) => l.includes('udp-receive-buffer-capped'))!) as Record<
    string,
    number
  >;
  assert.equal(capped['requested'], asked);
  assert.equal(capped['granted'], 2 * rmemMax);
  // A small buffer that a burst overflows while the event loop is busy sending it.
  lines.length = 0;
  const { edge, ports } = await start(4096);
  assert.ok(lines.some((l) => l.includes('"msg":"udp-receive-buffer"') && l.includes('"requested":4096')));
  assert.ok(!lines.some((l) => l.includes('udp-receive-buffer-capped')), 'a small size is granted');
  // The log line says how datagrams are read; the batched path's refused sends are a drop reason.
  const info = JSON.parse(lines.find((l) => l.includes('"msg":"udp-receive-buffer"'))!) as Record<
    string,
    string
  >;
  const path = new NodeUdpBind('127.0.0.1', 0).receivePath;
  assert.equal(info['receivePath'], path);
  if (process.env['CI'] === 'true') assert.equal(path, 'batched', 'CI builds the native UDP addon');
  if (path === 'batched')
    assert.equal(await count(metrics.drops, { layer: 'udp', reason: 'send_failed' }), 0);
  else assert.match(info['dgramBecause'] ?? '', /./);
  // The batched path's send is done with an ESP packet when it returns: the data plane reuses its buffer.
  const udpPath = {
    connection: 'udp',
    transport: 'udp' as const,
    local: { address: '127.0.0.1', port: ports.natT! },
    remote: { address: '127.0.0.1', port: 9 },
  };
  assert.equal(edge.espCopied(udpPath), path === 'batched');
  assert.equal(await drops(), 0);
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.connect(ports.natT!, '127.0.0.1', () => resolve()));
  // Sent in one synchronous run: the edge reads none of them meanwhile.
  const datagram = new Uint8Array(1200).fill(0xff);
  for (let i = 0; i < 200; i++) s.send(datagram);
  await new Promise<void>((resolve) => s.close(() => resolve()));
  assert.ok((await drops()) > 0, 'the kernel drops are counted');
  // Closed, an edge's binds are no longer read at each scrape (nor kept alive by the registry).
  assert.ok(follows.length >= 2 && follows.every((f) => !f.stopped));
  for (const e of running.splice(0)) await e.close();
  assert.deepEqual(
    follows.filter((f) => !f.stopped),
    [],
    'every follow of the closed edges ended',
  );
});

test('drain over a real TCP listener: it stops accepting at once and returns, then closes the open streams within graceMs (reason drain); before, it waited for every stream to end on its own, for ever for an active one', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const edge = new Edge(
    {
      listen: { tcp: { address: '127.0.0.1', port: 0 } },
      layout,
      initialHashKey: HASH_KEY,
      route: () => undefined,
      workers: () => [],
    },
    createLogger({ destination: new PassThrough(), level: 'silent' }),
    metrics,
  );
  running.push(edge);
  const { tcp } = await edge.start();
  const peer = netConnect(tcp!, '127.0.0.1');
  peer.on('error', () => undefined);
  await new Promise((r) => peer.once('connect', r));
  let ended = false;
  peer.on('close', () => (ended = true));
  peer.write(IKETCP_PREFIX);
  await until(() => edge.connectionCount === 1, 'the stream');
  const drained = await Promise.race([
    edge.drain(300).then((n) => `drained ${n}`),
    new Promise((r) => setTimeout(() => r('still draining after 3 s'), 3000)),
  ]);
  assert.equal(drained, 'drained 1');
  await until(() => ended, 'the stream closed by the drain');
  assert.equal(
    await count(metrics.connectionEvents, { transport: 'tcp', event: 'closed', reason: 'drain' }),
    1,
  );
  const refused = netConnect(tcp!, '127.0.0.1');
  const error = await new Promise<string>((r) => {
    refused.once('error', (e: NodeJS.ErrnoException) => r(e.code ?? ''));
    refused.once('connect', () => r('connected'));
  });
  assert.equal(error, 'ECONNREFUSED', 'no longer accepting');
});
