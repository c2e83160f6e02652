import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  decodeEdgeMessage,
  decodeWorkerMessage,
  encodeEdgeMessage,
  encodeWorkerMessage,
  MAX_MESSAGE_ENTRIES,
  RelayCodecError,
} from './codec.js';
import {
  type EdgeMessage,
  pathFromWire,
  relayDefinition,
  type WireFrame,
  type WirePath,
  type WorkerMessage,
} from './wire.js';

/** proto-loader's own (protobufjs) serializers: what a worker or edge of an older release runs. */
const reference = (
  relayDefinition()['ikegate.v1.FrameRelay'] as unknown as {
    Relay: {
      requestSerialize(m: unknown): Buffer;
      requestDeserialize(b: Buffer): EdgeMessage;
      responseSerialize(m: unknown): Buffer;
      responseDeserialize(b: Buffer): WorkerMessage;
    };
  }
).Relay;

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const text = fc.string({ unit: 'grapheme', maxLength: 24 });
// Few connection names, so paths that share one but differ elsewhere meet the encoder's cache.
const connection = fc.constantFrom('', 'tcp:a1:1', 'tcp:a1:2', 'udp:500:x', 'tls:b7:99', 'é|☃');
const endpoint = fc.record({
  address: fc.constantFrom('192.0.2.1', '2001:db8::7', '', '198.51.100.9'),
  port: u32,
});
const path: fc.Arbitrary<WirePath> = fc.record({
  connection,
  transport: fc.constantFrom('TRANSPORT_UNSPECIFIED', 'TRANSPORT_UDP', 'TRANSPORT_TCP', 'TRANSPORT_TLS'),
  local: fc.option(endpoint, { nil: null }),
  remote: fc.option(endpoint, { nil: null }),
});
const frame: fc.Arbitrary<WireFrame> = fc.record({
  kind: fc.constantFrom('FRAME_KIND_UNSPECIFIED', 'FRAME_KIND_IKE', 'FRAME_KIND_ESP'),
  path: fc.option(path, { nil: null }),
  data: fc.uint8Array({ maxLength: 300 }),
  shard: u32,
  attempt: u32,
  closeAfter: text,
});
const edgeMessage: fc.Arbitrary<EdgeMessage> = fc.record({
  edgeId: text,
  frames: fc.array(frame, { maxLength: 6 }),
  closed: fc.array(path, { maxLength: 3 }),
  credit: u32,
});
const workerMessage: fc.Arbitrary<WorkerMessage> = fc.record({
  workerId: text,
  frames: fc.array(frame, { maxLength: 6 }),
  credit: u32,
  bounced: fc.array(frame, { maxLength: 3 }),
});

/** Plain data for deepEqual: Buffers and Uint8Arrays as byte arrays, objects as plain objects. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return [...v];
  if (Array.isArray(v)) return v.map(plain);
  if (v && typeof v === 'object')
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, plain(x)]));
  return v;
}

test('relay codec: an EdgeMessage we write is read back by proto-loader as it was, and one proto-loader writes is read by us as it was (relay.proto, mixed releases in a rolling upgrade)', () => {
  fc.assert(
    fc.property(edgeMessage, (m) => {
      assert.deepEqual(plain(reference.requestDeserialize(encodeEdgeMessage(m))), plain(m));
      assert.deepEqual(plain(decodeEdgeMessage(reference.requestSerialize(m))), plain(m));
      assert.deepEqual(plain(decodeEdgeMessage(encodeEdgeMessage(m))), plain(m));
    }),
    { numRuns: 500 },
  );
});

test('relay codec: a WorkerMessage we write is read back by proto-loader as it was, and one proto-loader writes is read by us as it was (relay.proto)', () => {
  fc.assert(
    fc.property(workerMessage, (m) => {
      assert.deepEqual(plain(reference.responseDeserialize(encodeWorkerMessage(m))), plain(m));
      assert.deepEqual(plain(decodeWorkerMessage(reference.responseSerialize(m))), plain(m));
    }),
    { numRuns: 500 },
  );
});

test('relay codec: unknown fields of every wire type (a newer release) are skipped, at the message, frame and path level (protobuf encoding rules)', () => {
  const len = (n: number) => {
    const out: number[] = [];
    while (n >= 0x80) {
      out.push((n & 0x7f) | 0x80);
      n >>>= 7;
    }
    out.push(n);
    return out;
  };
  const bytes = (n: number, b: Buffer) => Buffer.concat([Buffer.from([(n << 3) | 2, ...len(b.length)]), b]);
  const uint = (n: number, v: number) => Buffer.from([n << 3, ...len(v)]);
  const extra = Buffer.concat([
    Buffer.from([(15 << 3) | 0, 0xac, 0x02]), // varint 300
    Buffer.from([(9 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]), // fixed64
    Buffer.from([(10 << 3) | 2, 3, 0x61, 0x62, 0x63]), // length-delimited
    Buffer.from([(11 << 3) | 5, 1, 2, 3, 4]), // fixed32
    Buffer.from([0xf8, 0x7f, 0x05]), // field 2047, varint 5 (a two-byte tag)
  ]);
  const p: WirePath = {
    connection: 'tcp:a1:1',
    transport: 'TRANSPORT_TCP',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '198.51.100.9', port: 40000 },
  };
  const m: WorkerMessage = {
    workerId: 'w1',
    frames: [
      {
        kind: 'FRAME_KIND_ESP',
        path: p,
        data: new Uint8Array([1, 2, 3]),
        shard: 7,
        attempt: 1,
        closeAfter: '',
      },
    ],
    credit: 9,
    bounced: [],
  };
  const endpoint = (address: string, port: number) =>
    Buffer.concat([extra, bytes(1, Buffer.from(address)), uint(2, port)]);
  const pathBytes = Buffer.concat([
    uint(2, 2),
    extra,
    bytes(4, endpoint('198.51.100.9', 40000)),
    bytes(1, Buffer.from('tcp:a1:1')),
    bytes(3, endpoint('192.0.2.1', 4500)),
  ]);
  const frameBytes = Buffer.concat([
    uint(1, 2),
    extra,
    bytes(2, pathBytes),
    bytes(3, Buffer.from([1, 2, 3])),
    uint(4, 7),
    uint(5, 1),
  ]);
  // Fields out of order, and a repeated scalar (the last one wins): credit 1, then 9.
  const msg = Buffer.concat([
    uint(3, 1),
    extra,
    bytes(1, Buffer.from('w1')),
    bytes(2, frameBytes),
    extra,
    uint(3, 9),
  ]);
  assert.deepEqual(plain(decodeWorkerMessage(msg)), plain(m));
  assert.deepEqual(plain(reference.responseDeserialize(msg)), plain(m), 'proto-loader reads the same');
});

test('relay codec: truncated or malformed messages are refused with RelayCodecError, never another error or a hang (fuzz, 5,000 mutations)', () => {
  const seed = encodeWorkerMessage({
    workerId: 'w1',
    frames: [
      {
        kind: 'FRAME_KIND_IKE',
        path: {
          connection: 'tcp:a1:1',
          transport: 'TRANSPORT_TCP',
          local: { address: '192.0.2.1', port: 4500 },
          remote: { address: '198.51.100.9', port: 1 },
        },
        data: new Uint8Array(40).fill(7),
        shard: 1,
        attempt: 0,
        closeAfter: 'cookie',
      },
    ],
    credit: 3,
    bounced: [],
  });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
        fc
          .tuple(fc.nat(seed.length - 1), fc.integer({ min: 0, max: 255 }), fc.nat(seed.length))
          .map(([at, byte, cut]) => {
            const b = Buffer.from(seed);
            b[at] = byte;
            return b.subarray(0, cut);
          }),
      ),
      (bytes) => {
        for (const decode of [decodeWorkerMessage, decodeEdgeMessage]) {
          try {
            decode(bytes);
          } catch (e) {
            assert.ok(e instanceof RelayCodecError, String(e));
          }
        }
      },
    ),
    { numRuns: 5000 },
  );
  assert.throws(() => decodeWorkerMessage(seed.subarray(0, seed.length - 1)), RelayCodecError);
  assert.throws(() => decodeWorkerMessage(Buffer.from([(1 << 3) | 3])), RelayCodecError, 'group wire type');
});

test('relay codec: frames of one peer path share one decoded path and one PeerPath (no objects per frame for it); another path gets its own', () => {
  const p = (remotePort: number): WirePath => ({
    connection: 'tcp:a1:1',
    transport: 'TRANSPORT_TCP',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '198.51.100.9', port: remotePort },
  });
  const f = (path: WirePath): WireFrame => ({
    kind: 'FRAME_KIND_ESP',
    path,
    data: new Uint8Array(8),
    shard: 0,
    attempt: 0,
    closeAfter: '',
  });
  // The same connection name with another remote port: the encoder's cache must not reuse bytes.
  const m = decodeWorkerMessage(
    encodeWorkerMessage({ workerId: 'w', frames: [f(p(1)), f(p(1)), f(p(2))], credit: 0, bounced: [] }),
  );
  const [a, b, c] = m.frames.map((x) => x.path);
  assert.equal(a, b);
  assert.notEqual(a, c);
  assert.equal(c?.remote?.port, 2);
  assert.equal(pathFromWire(a!), pathFromWire(b!));
  assert.equal(pathFromWire(c!)?.remote.port, 2);
});

test('relay codec: a uint32 field given a negative, fractional, NaN or too large number is written as uint32 (as proto-loader does), never a message whose lengths do not add up', () => {
  const odd = fc.oneof(
    fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
    fc.double({ noDefaultInfinity: true }),
    fc.constant(Number.NaN),
  );
  fc.assert(
    fc.property(odd, odd, odd, (shard, attempt, credit) => {
      const f: WireFrame = {
        kind: 'FRAME_KIND_ESP',
        path: null,
        data: new Uint8Array([1, 2, 3]),
        shard,
        attempt,
        closeAfter: 'x',
      };
      const m: WorkerMessage = { workerId: 'w', frames: [f, f], credit, bounced: [] };
      const ours = decodeWorkerMessage(encodeWorkerMessage(m));
      const theirs = reference.responseDeserialize(reference.responseSerialize(m));
      assert.deepEqual(plain(ours), plain(theirs));
      assert.equal(ours.frames[1]?.shard, shard >>> 0);
    }),
    { numRuns: 500 },
  );
});

test(`relay codec: a message with more than MAX_MESSAGE_ENTRIES (${MAX_MESSAGE_ENTRIES}) frames and paths is refused before they are built (an 8-MB message of empty frames had made 4M objects)`, () => {
  const empties = (n: number) => Buffer.alloc(2 * n, Buffer.from([(2 << 3) | 2, 0]));
  assert.equal(decodeWorkerMessage(empties(MAX_MESSAGE_ENTRIES)).frames.length, MAX_MESSAGE_ENTRIES);
  assert.throws(() => decodeWorkerMessage(empties(MAX_MESSAGE_ENTRIES + 1)), RelayCodecError);
  assert.throws(() => decodeEdgeMessage(empties(MAX_MESSAGE_ENTRIES + 1)), RelayCodecError);
  // bounced and closed entries count too
  const mixed = Buffer.concat([empties(MAX_MESSAGE_ENTRIES), Buffer.from([(4 << 3) | 2, 0])]);
  assert.throws(() => decodeWorkerMessage(mixed), RelayCodecError);
});
