import { test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { InboundFrame, OutboundFrame, PeerPath } from '@ikegate/cluster';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { relayDefinition } from './wire.js';
import { RELAY_FLOW_CONTROL_WINDOW, RelayClient, RelayServer, unqualify } from './relay.js';

const log = createLogger({ destination: new PassThrough(), level: 'silent' });

const path = (connection: string, transport: PeerPath['transport'] = 'tcp'): PeerPath => ({
  connection,
  transport,
  local: { address: '192.0.2.1', port: 4500 },
  remote: { address: '198.51.100.7', port: 40000 },
});

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out');
    await sleep(10);
  }
}

test('relay.proto: the loaded schema has the fields the TypeScript shapes use (proto <-> wire.ts)', () => {
  const def = relayDefinition();
  const fields = (name: string) =>
    (def[name] as { type: { field: { name: string }[] } }).type.field.map((f) => f.name).sort();
  assert.deepEqual(fields('ikegate.v1.Frame'), ['attempt', 'closeAfter', 'data', 'kind', 'path', 'shard']);
  assert.deepEqual(fields('ikegate.v1.PeerPath'), ['connection', 'local', 'remote', 'transport']);
  assert.deepEqual(fields('ikegate.v1.EdgeMessage'), ['closed', 'credit', 'edgeId', 'frames']);
  assert.deepEqual(fields('ikegate.v1.WorkerMessage'), ['bounced', 'credit', 'frames', 'workerId']);
  assert.ok(def['ikegate.v1.FrameRelay'], 'service FrameRelay');
});

test('relay over gRPC: frames edge -> worker keep kind, bytes, shard and path (qualified by edge); answers (with closeAfter, RFC 9329 §6.3) and bounced frames come back to the edge unqualified', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const server = new RelayServer({ workerId: 'w1', log, metrics });
  const atWorker: InboundFrame[] = [];
  const closed: PeerPath[] = [];
  server.attach({ deliver: (f) => atWorker.push(f), connectionClosed: (p) => closed.push(p) });
  const port = await server.start('127.0.0.1', 0);
  const atEdge: OutboundFrame[] = [];
  const bounced: InboundFrame[] = [];
  const client = new RelayClient({
    edgeId: 'edge-a',
    target: `127.0.0.1:${port}`,
    log,
    metrics,
    onFrame: (f) => atEdge.push(f),
    onBounce: (f) => bounced.push(f),
  });
  try {
    client.deliver({ kind: 'ike', path: path('tcp:7'), bytes: new Uint8Array([1, 2, 3]), shard: 513 });
    client.deliver({
      kind: 'esp',
      path: path('udp:4500:x', 'udp'),
      bytes: new Uint8Array(1400).fill(9),
      shard: 2,
    });
    client.connectionClosed(path('tcp:7'));
    await until(() => atWorker.length === 2 && closed.length === 1);
    assert.equal(atWorker[0]!.kind, 'ike');
    assert.equal(atWorker[0]!.shard, 513);
    assert.deepEqual([...atWorker[0]!.bytes], [1, 2, 3]);
    assert.equal(atWorker[0]!.path.connection, 'edge-a|tcp:7');
    assert.equal(atWorker[1]!.path.transport, 'udp');
    assert.equal(atWorker[1]!.bytes.length, 1400);
    assert.equal(closed[0]!.connection, 'edge-a|tcp:7');
    assert.equal(unqualify(atWorker[0]!.path)?.edgeId, 'edge-a');
    assert.equal(
      server.edgeLink.send({ kind: 'ike', path: atWorker[0]!.path, bytes: new Uint8Array([7]) }),
      'sent',
    );
    await until(() => atEdge.length === 1);
    assert.equal(atEdge[0]!.path.connection, 'tcp:7');
    assert.deepEqual([...atEdge[0]!.bytes], [7]);
    assert.equal(
      server.edgeLink.send({ kind: 'ike', path: path('other-edge|tcp:1'), bytes: new Uint8Array([7]) }),
      'no-connection',
    );
    // RFC 9329 §6.3: a COOKIE request goes out and the edge closes the stream; the relay carries
    // the instruction (worker -> edge only) and frames without one arrive without the field.
    assert.equal(
      server.edgeLink.send({
        kind: 'ike',
        path: atWorker[0]!.path,
        bytes: new Uint8Array([8]),
        closeAfter: 'cookie',
      }),
      'sent',
    );
    await until(() => atEdge.length === 2);
    assert.equal(atEdge[1]!.closeAfter, 'cookie');
    assert.deepEqual([...atEdge[1]!.bytes], [8]);
    assert.equal('closeAfter' in atEdge[0]!, false);
    // A frame for a shard the worker no longer owns goes back to its edge, shard and attempt kept.
    server.edgeLink.bounce!({ ...atWorker[0]!, attempt: 2 });
    await until(() => bounced.length === 1);
    assert.equal(bounced[0]!.shard, 513);
    assert.equal(bounced[0]!.attempt, 2);
    assert.equal(bounced[0]!.path.connection, 'tcp:7');
    assert.deepEqual([...bounced[0]!.bytes], [1, 2, 3]);
  } finally {
    client.close();
    await server.close();
  }
});

test('relay flow control: 20,000 frames in order with batching and credit; a bounded queue drops ESP, never grows without limit', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const server = new RelayServer({ workerId: 'w1', log, metrics });
  const seen: number[] = [];
  server.attach({
    deliver: (f) => seen.push(new DataView(f.bytes.buffer, f.bytes.byteOffset).getUint32(0)),
    connectionClosed: () => undefined,
  });
  const port = await server.start('127.0.0.1', 0);
  const client = new RelayClient({
    edgeId: 'edge-b',
    target: `127.0.0.1:${port}`,
    log,
    metrics,
    onFrame: () => undefined,
    maxQueue: 25_000,
  });
  try {
    for (let i = 0; i < 20_000; i++) {
      const b = new Uint8Array(64);
      new DataView(b.buffer).setUint32(0, i);
      client.deliver({ kind: 'esp', path: path('tcp:1'), bytes: b, shard: 0 });
    }
    await until(() => seen.length === 20_000, 20_000);
    assert.ok(
      seen.every((v, i) => v === i),
      'in order',
    );
  } finally {
    client.close();
    await server.close();
  }
  // A client whose worker never answers: its queue is bounded and the excess is counted.
  const lonely = new RelayClient({
    edgeId: 'edge-c',
    target: '127.0.0.1:1',
    log,
    metrics,
    onFrame: () => undefined,
    maxQueue: 100,
  });
  try {
    for (let i = 0; i < 50_000; i++)
      lonely.deliver({ kind: 'esp', path: path('tcp:2'), bytes: new Uint8Array(8), shard: 0 });
    await sleep(50);
    assert.match(
      await metrics.render(),
      /ikegate_drops_total\{layer="relay",reason="relay_queue_full"\} [1-9]|reason="worker_unreachable"\} [1-9]/,
    );
  } finally {
    lonely.close();
  }
});

test('relay worker side: espCongested says so exactly when send() would refuse an ESP frame as congested (the edge queue at maxQueue), so the worker drops before encrypting; IKE still goes; not congested once flushed', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const server = new RelayServer({ workerId: 'w1', log, metrics, maxQueue: 4 });
  server.attach({ deliver: () => undefined, connectionClosed: () => undefined });
  const port = await server.start('127.0.0.1', 0);
  const atEdge: OutboundFrame[] = [];
  const client = new RelayClient({
    edgeId: 'edge-d',
    target: `127.0.0.1:${port}`,
    log,
    metrics,
    onFrame: (f) => atEdge.push(f),
  });
  try {
    await until(() => server.edgeIds.includes('edge-d'));
    const link = server.edgeLink;
    const p = path('edge-d|tcp:9');
    const esp = { kind: 'esp' as const, path: p, bytes: new Uint8Array(8) };
    assert.equal(link.espCongested?.(p, 8), false);
    // Within one turn of the event loop nothing is flushed: the queue fills.
    for (let i = 0; i < 4; i++) assert.equal(link.send(esp), 'sent');
    assert.equal(link.espCongested?.(p, 8), true, 'at maxQueue');
    assert.equal(link.send(esp), 'congested', 'what espCongested foretold');
    assert.equal(link.send({ ...esp, kind: 'ike' }), 'sent', 'IKE has twice the room');
    assert.equal(
      link.espCongested?.(path('edge-x|tcp:1'), 8),
      false,
      'an unknown edge: send says no-connection',
    );
    await until(() => atEdge.length === 5);
    assert.equal(link.espCongested?.(p, 8), false, 'flushed');
  } finally {
    client.close();
    await server.close();
  }
});

test('relay HTTP/2 windows (RFC 9113 §6.9.2, §6.5.2): the worker end advertises RELAY_FLOW_CONTROL_WINDOW for its streams and opens its connection window to it, so an edge is not held to 64 KiB per round trip', async () => {
  const metrics = new Metrics({ processMetrics: false });
  const server = new RelayServer({ workerId: 'w1', log, metrics });
  const port = await server.start('127.0.0.1', 0);
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    await until(() => session.remoteSettings?.initialWindowSize === RELAY_FLOW_CONTROL_WINDOW);
    await until(() => session.state.remoteWindowSize === RELAY_FLOW_CONTROL_WINDOW);
  } finally {
    session.destroy();
    await server.close();
  }
});

test('relay HTTP/2 windows (RFC 9113 §6.9.2, §6.5.2): the edge end advertises RELAY_FLOW_CONTROL_WINDOW and opens its connection window to it, so answers from a worker are not held to 64 KiB per round trip', async () => {
  const h2 = http2.createServer();
  const sessions: http2.ServerHttp2Session[] = [];
  h2.on('session', (s) => sessions.push(s));
  h2.on('stream', () => {});
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  const { port } = h2.address() as AddressInfo;
  const metrics = new Metrics({ processMetrics: false });
  const client = new RelayClient({
    edgeId: 'edge-a',
    target: `127.0.0.1:${port}`,
    log,
    metrics,
    onFrame: () => {},
    onBounce: () => {},
  });
  try {
    await until(() => sessions[0]?.remoteSettings?.initialWindowSize === RELAY_FLOW_CONTROL_WINDOW);
    await until(() => sessions[0]!.state.remoteWindowSize === RELAY_FLOW_CONTROL_WINDOW);
  } finally {
    client.close();
    for (const s of sessions) s.destroy();
    await new Promise((resolve) => h2.close(resolve));
  }
});
