/**
 * The relay over mutual TLS (issue #11, "a cluster plane nobody else can join"): who may open an
 * edge stream to a worker, and which edge id each certificate may claim.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, describe, test } from 'node:test';
import type { InboundFrame, OutboundFrame, PeerPath } from '@ikegate/cluster';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { makeTestPki } from '@ikegate/testkit';
import { RELAY_FLOW_CONTROL_WINDOW, RelayClient, RelayServer, type RelayTls } from './relay.js';

const log = createLogger({ destination: new PassThrough(), level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'ikegate-relay-tls-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const pki = makeTestPki(dir);
const rogue = makeTestPki(dir, 'rogue-ca');
function material(p: { certificate: string; key: string }, ca = pki.ca): RelayTls {
  return { ca: readFileSync(ca), certificate: readFileSync(p.certificate), key: readFileSync(p.key) };
}
const workerTls = material(pki.issue('w1', 'worker:w1'));
const edgeA = material(pki.issue('edge-a', 'edge:edge-a'));
const edgeB = material(pki.issue('edge-b', 'edge:edge-b'));
const sharedEdge1 = material(pki.issue('edge-shared-1', 'edge'));
const sharedEdge2 = material(pki.issue('edge-shared-2', 'edge'));
const notAnEdge = material(pki.issue('w2', 'worker:w2'));
const rogueEdge = material(rogue.issue('rogue-edge', 'edge:edge-a'), rogue.ca);

const path: PeerPath = {
  connection: 'tcp:1',
  transport: 'tcp',
  local: { address: '192.0.2.1', port: 4500 },
  remote: { address: '198.51.100.7', port: 40000 },
};
const frame = (b: number): InboundFrame => ({ kind: 'ike', path, bytes: new Uint8Array([b]), shard: 1 });

interface Harness {
  readonly server: RelayServer;
  readonly port: number;
  readonly atWorker: InboundFrame[];
  readonly metrics: Metrics;
}

async function worker(tls: RelayTls = workerTls): Promise<Harness> {
  const metrics = new Metrics({ processMetrics: false });
  const server = new RelayServer({ workerId: 'w1', log, metrics, tls });
  const atWorker: InboundFrame[] = [];
  server.attach({ deliver: (f) => atWorker.push(f), connectionClosed: () => undefined });
  const port = await server.start('127.0.0.1', 0);
  return { server, port, atWorker, metrics };
}

function edge(
  h: Harness,
  edgeId: string,
  tls: RelayTls | undefined,
  workerId = 'w1',
  onFrame?: (f: OutboundFrame) => void,
) {
  return new RelayClient({
    edgeId,
    workerId,
    target: `127.0.0.1:${h.port}`,
    log,
    metrics: new Metrics({ processMetrics: false }),
    onFrame: onFrame ?? (() => undefined),
    ...(tls ? { tls } : {}),
  });
}

async function until(check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await sleep(20);
  return check();
}

async function refusals(h: Harness, reason: string): Promise<number> {
  const text = await h.metrics.registry.metrics();
  const m = new RegExp(`ikegate_drops_total\\{layer="relay",reason="${reason}"\\} (\\d+)`).exec(text);
  return m ? Number(m[1]) : 0;
}

describe('relay over mutual TLS (issue #11: a cluster plane nobody else can join)', () => {
  test('an edge with a certificate from the relay CA naming its id (CN edge:<id>) relays frames; the worker answers it', async () => {
    const h = await worker();
    const back: OutboundFrame[] = [];
    const c = edge(h, 'edge-a', edgeA, 'w1', (f) => back.push(f));
    try {
      c.deliver(frame(1));
      assert.ok(await until(() => h.atWorker.length === 1), 'frame reached the worker');
      assert.deepEqual(h.server.edgeIds, ['edge-a']);
      h.server.edgeLink.send({ kind: 'ike', path: h.atWorker[0]!.path, bytes: new Uint8Array([2]) });
      assert.ok(await until(() => back.length === 1), 'answer reached the edge');
    } finally {
      c.close();
      await h.server.close();
    }
  });

  test('refused: no client certificate (plaintext or TLS without one), a certificate from another CA, or a certificate that is not an edge', async () => {
    const h = await worker();
    const plain = edge(h, 'edge-a', undefined);
    const rogueC = edge(h, 'edge-a', rogueEdge);
    const wrongKind = edge(h, 'edge-a', notAnEdge);
    try {
      for (const c of [plain, rogueC, wrongKind]) c.deliver(frame(9));
      await sleep(1500);
      assert.equal(h.atWorker.length, 0, 'no frame from any of them reached the worker');
      assert.deepEqual(h.server.edgeIds, []);
      assert.ok((await refusals(h, 'not_an_edge_certificate')) >= 1, 'a worker certificate is not an edge');
    } finally {
      for (const c of [plain, rogueC, wrongKind]) c.close();
      await h.server.close();
    }
  });

  test('refused: a certificate for edge-b claiming edge-a (edge_id_mismatch); edge-a keeps its stream and its frames', async () => {
    const h = await worker();
    const real = edge(h, 'edge-a', edgeA);
    let impostor: RelayClient | undefined;
    try {
      real.deliver(frame(1));
      assert.ok(await until(() => h.atWorker.length === 1));
      impostor = edge(h, 'edge-a', edgeB);
      impostor.deliver(frame(2));
      await sleep(1000);
      assert.ok((await refusals(h, 'edge_id_mismatch')) >= 1);
      assert.deepEqual(
        h.atWorker.map((f) => f.bytes[0]),
        [1],
        "the impostor's frame never arrived",
      );
      // The worker still answers through the real edge-a.
      real.deliver(frame(3));
      assert.ok(await until(() => h.atWorker.length === 2));
    } finally {
      real.close();
      impostor?.close();
      await h.server.close();
    }
  });

  test('a shared edge certificate (CN edge) binds the id to that certificate while its stream lives: another certificate claiming it is refused (edge_id_conflict), the same one may reconnect', async () => {
    const h = await worker();
    const first = edge(h, 'edge-x', sharedEdge1);
    let second: RelayClient | undefined;
    let again: RelayClient | undefined;
    try {
      first.deliver(frame(1));
      assert.ok(await until(() => h.atWorker.length === 1));
      second = edge(h, 'edge-x', sharedEdge2);
      second.deliver(frame(2));
      await sleep(1000);
      assert.ok((await refusals(h, 'edge_id_conflict')) >= 1);
      assert.equal(h.atWorker.length, 1);
      // The same certificate again (a reconnect) replaces the stream.
      again = edge(h, 'edge-x', sharedEdge1);
      again.deliver(frame(3));
      assert.ok(await until(() => h.atWorker.length === 2));
    } finally {
      first.close();
      second?.close();
      again?.close();
      await h.server.close();
    }
  });

  test('an edge refuses a worker whose certificate names another worker (no man in the middle with a worker certificate)', async () => {
    const h = await worker(notAnEdge); // serves with CN worker:w2
    const c = edge(h, 'edge-a', edgeA, 'w1');
    try {
      c.deliver(frame(1));
      await sleep(1500);
      assert.equal(h.atWorker.length, 0);
    } finally {
      c.close();
      await h.server.close();
    }
  });
});

test('relay over mutual TLS, HTTP/2 windows (RFC 9113 §6.9.2, §6.5.2): the worker end grants RELAY_FLOW_CONTROL_WINDOW on a TLS session too', async () => {
  const h = await worker();
  const session = http2.connect(`https://127.0.0.1:${h.port}`, {
    ca: edgeA.ca,
    cert: edgeA.certificate,
    key: edgeA.key,
    servername: 'ikegate-relay',
    checkServerIdentity: () => undefined,
  });
  session.on('error', () => undefined);
  try {
    assert.ok(await until(() => session.remoteSettings?.initialWindowSize === RELAY_FLOW_CONTROL_WINDOW));
    assert.ok(await until(() => session.state.remoteWindowSize === RELAY_FLOW_CONTROL_WINDOW));
  } finally {
    session.destroy();
    await h.server.close();
  }
});
