/**
 * Traces of IKE SAs (issue #13, docs/observability.md "Tracing") with the real OpenTelemetry SDK
 * (its tracer provider and in-memory exporter, registered through `startTracing`) against a real
 * worker, a protocol-core initiator, and for the takeover a real redis-server.
 */
import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { type OutboundFrame, type PeerPath, routeIkeMessage } from '@ikegate/cluster';
import { defaultProvider, EncryptionId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import {
  type EndpointOutput,
  IkeEndpoint,
  type IkePath,
  type IkeSaContext,
  type SaEntry,
} from '@ikegate/ikev2';
import { RedisStore } from '@ikegate/store';
import { Attr, createLogger, Metrics, startTracing, type TracingHandle } from '@ikegate/telemetry';
import { startRedisServer } from '../../../libs/store/src/testing/redis-server.js';
import { type MemberInfo, type Membership, ShardOwner } from './cluster.js';
import { parseIpv4 } from './ipv4.js';
import { type Persistence, Worker } from './worker.js';

const SHARDS = 16;
const LAYOUT = { shardBits: 4 };
const HASH_KEY = new Uint8Array(32).fill(7);
const PSK = new TextEncoder().encode('tracing-test-psk-0123456789');
const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: new Uint8Array([0, 0, 0, 0]),
  endAddress: new Uint8Array([255, 255, 255, 255]),
};
const ike = [
  {
    encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
    prf: [PrfId.HMAC_SHA2_256],
    keyExchange: [KeyExchangeId.CURVE25519],
  },
];
const esp = [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }] }];

const exporter = new InMemorySpanExporter();
/** Names of the spans started (finished or not) since the last test began. */
const started: string[] = [];
const startCounter = {
  onStart: (span: { name: string }) => void started.push(span.name),
  onEnd: () => undefined,
  forceFlush: async () => undefined,
  shutdown: async () => undefined,
};
let tracing: TracingHandle | undefined;
before(async () => {
  tracing = await startTracing({
    role: 'test',
    spanProcessors: [new SimpleSpanProcessor({ exporter }), startCounter],
  });
});
after(async () => tracing?.shutdown());
beforeEach(() => {
  exporter.reset();
  started.length = 0;
});

type Line = Record<string, unknown> & { msg?: string };

function newWorker(id: string, persistence?: Persistence) {
  const out = new PassThrough();
  const lines: Line[] = [];
  out.on('data', (d: Buffer) => {
    for (const l of d.toString().trim().split('\n')) if (l) lines.push(JSON.parse(l) as Line);
  });
  const toPeer: OutboundFrame[] = [];
  const log = createLogger({ destination: out, level: 'debug', name: id });
  const metrics = new Metrics({ processMetrics: false });
  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: {
        localId: 'gw.example.org',
        ikeProposals: ike,
        espProposals: esp,
        localTs: [any],
        remoteTs: [any],
      },
      matchPeer: (peerId) =>
        peerId.endsWith('@example.org')
          ? { name: 'road-warriors', psk: PSK, localTs: [any], remoteTs: [any] }
          : undefined,
      layout: LAYOUT,
      ikeLifetimeSeconds: 3600,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 60,
      dpdSeconds: 0,
      ...(persistence ? { persistence } : {}),
    },
    { send: (f) => (toPeer.push(f), 'sent') },
    log,
    metrics,
  );
  return { worker, lines, toPeer, log, metrics };
}

/** A protocol-core initiator (one IkeEndpoint, any number of SAs) wired to a worker by calls. */
function peer(w: { worker: Pick<Worker, 'deliver'>; toPeer: OutboundFrame[] }, psk = PSK) {
  const path: PeerPath = {
    connection: 'udp:4500:192.0.2.10:4500',
    transport: 'udp',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '192.0.2.10', port: 4500 },
  };
  const ctx: IkeSaContext = {
    provider: defaultProvider,
    random: (n) => new Uint8Array(randomBytes(n)),
    allocateIkeSpi: () => new Uint8Array(randomBytes(8)),
    allocateChildSpi: () => new Uint8Array([0x10, ...randomBytes(3)]),
    policy: {
      localId: 'carol@example.org',
      localIdType: 3,
      ikeProposals: ike,
      espProposals: esp,
      localTs: [any],
      remoteTs: [any],
    },
    psk: () => psk,
  };
  const endpoint = new IkeEndpoint<undefined>({
    provider: defaultProvider,
    random: (n) => new Uint8Array(randomBytes(n)),
    policy: ctx.policy,
    ikeSpi: () => new Uint8Array(randomBytes(8)),
    responderContext: () => ctx,
  });
  const myPath: IkePath = {
    id: 'to-gateway',
    transport: 'udp',
    local: { address: parseIpv4('192.0.2.10'), port: 4500 },
    remote: { address: parseIpv4('192.0.2.1'), port: 4500 },
  };
  let target = w;
  const run = (out: readonly EndpointOutput<undefined>[]) => {
    for (const o of out) {
      if (o.kind !== 'transmit') continue;
      const d = routeIkeMessage(o.bytes, path.remote.address, HASH_KEY, LAYOUT);
      assert.equal(d.kind, 'shard');
      target.worker.deliver({ kind: 'ike', path, bytes: o.bytes, shard: d.kind === 'shard' ? d.shard : 0 });
    }
    // Bounded: each round answers one request.
    for (let i = 0; i < 16 && target.toPeer.length > 0; i++) {
      const f = target.toPeer.shift()!;
      if (f.kind === 'ike') run(endpoint.receive(f.bytes, myPath, 0, Date.now()));
    }
  };
  const sas: SaEntry<undefined>[] = [];
  return {
    initiate() {
      const r = endpoint.initiate(ctx, myPath, 0, Date.now());
      sas.push(r.sa);
      run(r.out);
      return r.sa;
    },
    rekeyChild(sa: SaEntry<undefined>) {
      run(endpoint.command(sa, { kind: 'rekey-child', spi: sa.state.children[0]!.inboundSpi }, Date.now()));
    },
    /** Answers what the worker sent by itself (its own requests). */
    pump: () => run([]),
    retarget(to: { worker: Pick<Worker, 'deliver'>; toPeer: OutboundFrame[] }) {
      target = to;
    },
    sas,
  };
}

const spans = () => exporter.getFinishedSpans();
const named = (name: string, of: readonly ReadableSpan[] = spans()) => of.filter((s) => s.name === name);
const parentId = (s: ReadableSpan) => s.parentSpanContext?.spanId;

test('tracing: each IKE SA setup is one trace, an ike.sa.setup root with IKE_SA_INIT and IKE_AUTH exchange spans, outcome ok; log lines of the setup carry its trace_id (RFC 7296 §1.2)', async () => {
  const w = newWorker('w');
  const p = peer(w);
  p.initiate();
  p.initiate();
  assert.equal(p.sas.filter((s) => s.state.status === 'established').length, 2);

  const setups = named('ike.sa.setup');
  assert.equal(setups.length, 2, 'one setup span per IKE SA');
  assert.equal(started.filter((n) => n === 'ike.sa.setup').length, 2, 'the start counter sees them');
  assert.notEqual(setups[0]!.spanContext().traceId, setups[1]!.spanContext().traceId, 'one trace each');
  for (const setup of setups) {
    const traceId = setup.spanContext().traceId;
    assert.equal(parentId(setup), undefined, 'the setup span is the root');
    assert.equal(setup.kind, SpanKind.SERVER);
    assert.equal(
      setup.status.code,
      SpanStatusCode.OK === setup.status.code ? SpanStatusCode.OK : SpanStatusCode.UNSET,
    );
    assert.equal(setup.attributes[Attr.ikeOutcome], 'ok');
    assert.equal(setup.attributes[Attr.ikeRole], 'responder');
    assert.equal(setup.attributes[Attr.ikeTransport], 'udp');
    assert.equal(setup.attributes[Attr.ikePeerId], 'carol@example.org');
    assert.equal(setup.attributes[Attr.ikePeerName], 'road-warriors');
    assert.match(String(setup.attributes[Attr.ikeSpiInitiator]), /^[0-9a-f]{16}$/);
    assert.match(String(setup.attributes[Attr.ikeSpiResponder]), /^[0-9a-f]{16}$/);
    const children = spans().filter((s) => s.spanContext().traceId === traceId && s !== setup);
    assert.deepEqual(children.map((s) => s.name).sort(), [
      'ike.exchange IKE_AUTH',
      'ike.exchange IKE_SA_INIT',
    ]);
    for (const c of children) {
      assert.equal(parentId(c), setup.spanContext().spanId);
      assert.equal(c.attributes[Attr.ikeOutcome], 'ok');
      assert.equal(c.attributes[Attr.ikeExchangeRole], 'responder');
      assert.equal(c.attributes[Attr.ikeRetransmissions], 0);
      assert.notEqual(c.status.code, SpanStatusCode.ERROR);
    }
    const init = children.find((c) => c.name === 'ike.exchange IKE_SA_INIT')!;
    const auth = children.find((c) => c.name === 'ike.exchange IKE_AUTH')!;
    assert.equal(init.attributes[Attr.ikeMessageId], 0);
    assert.equal(auth.attributes[Attr.ikeMessageId], 1);
    // The log lines written while the exchange was handled carry the trace's ids.
    const established = w.lines.find((l) => l.msg === 'ike-sa-established' && l.trace_id === traceId);
    assert.ok(established, `an ike-sa-established line with trace_id ${traceId}: ${JSON.stringify(w.lines)}`);
    assert.equal(established.span_id, auth.spanContext().spanId);
  }
  // No secret reaches a span: the PSK, in any encoding, is in no attribute.
  const text = JSON.stringify(spans().map((s) => s.attributes));
  assert.ok(!text.includes(Buffer.from(PSK).toString()) && !text.includes(Buffer.from(PSK).toString('hex')));
  await w.worker.close(0);
});

test('tracing: a failed authentication (wrong PSK) ends the IKE_AUTH span and the setup span with status ERROR and the reason (RFC 7296 §2.15, §2.21.2)', async () => {
  const w = newWorker('w');
  const p = peer(w, new TextEncoder().encode('not-the-right-psk-0123456789'));
  p.initiate();
  const setup = named('ike.sa.setup');
  assert.equal(setup.length, 1);
  assert.equal(setup[0]!.status.code, SpanStatusCode.ERROR);
  assert.equal(setup[0]!.status.message, 'authentication_failed');
  const auth = named('ike.exchange IKE_AUTH');
  assert.equal(auth.length, 1);
  assert.equal(auth[0]!.spanContext().traceId, setup[0]!.spanContext().traceId);
  assert.equal(auth[0]!.status.code, SpanStatusCode.ERROR);
  assert.equal(auth[0]!.attributes[Attr.ikeOutcome], 'authentication_failed');
  assert.equal(auth[0]!.attributes[Attr.ikeRefusedBy], 'us');
  const init = named('ike.exchange IKE_SA_INIT');
  assert.equal(init[0]!.attributes[Attr.ikeOutcome], 'ok', 'IKE_SA_INIT itself succeeded');
  const rejected = w.lines.find((l) => l.msg === 'ike-rejected');
  assert.equal(
    rejected?.trace_id,
    auth[0]!.spanContext().traceId,
    'the rejection log line carries the trace id',
  );
  await w.worker.close(0);
});

test("tracing: a rekey is a CREATE_CHILD_SA span of its own trace, linked to the setup span; the peer's and ours (RFC 7296 §2.8)", async () => {
  const w = newWorker('w');
  const p = peer(w);
  const sa = p.initiate();
  const setup = named('ike.sa.setup')[0]!;
  exporter.reset();

  p.rekeyChild(sa);
  let rekeys = named('ike.exchange CREATE_CHILD_SA');
  assert.equal(rekeys.length, 1);
  const theirs = rekeys[0]!;
  assert.equal(theirs.attributes[Attr.ikeExchangeRole], 'responder');
  assert.equal(theirs.attributes[Attr.ikePurpose], 'rekey-child');
  assert.equal(theirs.attributes[Attr.ikeOutcome], 'ok');
  assert.equal(parentId(theirs), undefined, 'a trace of its own');
  assert.notEqual(theirs.spanContext().traceId, setup.spanContext().traceId);
  assert.equal(theirs.links[0]?.context.spanId, setup.spanContext().spanId, 'linked to the setup');

  exporter.reset();
  const spi = w.worker.list()[0]!.spi;
  assert.ok(w.worker.command(spi, 'rekey-children'));
  p.pump();
  rekeys = named('ike.exchange CREATE_CHILD_SA');
  assert.equal(rekeys.length, 1);
  const ours = rekeys[0]!;
  assert.equal(ours.attributes[Attr.ikeExchangeRole], 'initiator');
  assert.equal(ours.kind, SpanKind.CLIENT);
  assert.equal(ours.attributes[Attr.ikePurpose], 'rekey-child');
  assert.equal(ours.attributes[Attr.ikeOutcome], 'ok');
  assert.equal(ours.attributes[Attr.ikeSpi], spi);
  await w.worker.close(0);
});

/** Membership in memory (the store under test is Redis). */
class Members implements Membership {
  readonly records = new Map<string, MemberInfo>();
  async heartbeat(info: MemberInfo): Promise<void> {
    this.records.set(info.id, info);
  }
  async leave(id: string): Promise<void> {
    this.records.delete(id);
  }
  async list(): Promise<MemberInfo[]> {
    return [...this.records.values()];
  }
}

test("tracing: a takeover of a dead worker's shards gives one ike.shard.takeover span per shard whose adopted-SA count is what the new owner holds in it; adoption log lines carry its trace_id (issue #11 takeover, real Redis)", async (t) => {
  const redis = await startRedisServer();
  if (typeof redis === 'string') {
    if (process.env.CI) assert.fail(`CI must run this: ${redis}`);
    t.skip(redis);
    return;
  }
  const kek = { current: { id: 1, key: new Uint8Array(32).fill(3) } };
  const stores = [0, 1].map(
    () => new RedisStore({ connection: { host: '127.0.0.1', port: redis.port }, kek, shardCount: SHARDS }),
  );
  const members = new Members();
  const ownerRefs: { owner?: ShardOwner }[] = [{}, {}];
  const nodes = ['wA', 'wB'].map((id, i) => {
    const ref = ownerRefs[i]!;
    const n = newWorker(id, {
      dirty: (spi, shard) => ref.owner?.dirty(spi, shard),
      gone: (spi, shard) => ref.owner?.gone(spi, shard),
      durable: (spi) => ref.owner?.durable(spi),
    });
    ref.owner = new ShardOwner({
      workerId: id,
      relay: '',
      admin: '',
      store: stores[i]!,
      members,
      worker: n.worker,
      shardCount: SHARDS,
      leaseTtlMs: 60_000,
      log: n.log,
      metrics: n.metrics,
      watchPeers: false,
    });
    return { ...n, owner: ref.owner };
  });
  const [a, b] = nodes as [(typeof nodes)[0], (typeof nodes)[0]];
  try {
    await a.owner.tick();
    assert.equal(a.owner.owned.size, SHARDS);
    const p = peer(a);
    const N = 6;
    for (let i = 0; i < N; i++) p.initiate();
    assert.equal(a.worker.list().filter((s) => s.status === 'established').length, N);
    await a.owner.flush();
    // wA dies: its record is gone, its leases still live. wB takes every shard from it.
    members.records.delete('wA');
    exporter.reset();
    await b.owner.tick();
    assert.equal(b.owner.owned.size, SHARDS);
    const takeovers = named('ike.shard.takeover');
    assert.ok(takeovers.length > 0);
    let total = 0;
    for (const s of takeovers) {
      const shard = s.attributes[Attr.shard] as number;
      const adopted = s.attributes[Attr.shardAdopted] as number;
      assert.equal(adopted, b.worker.sasInShard(shard).length, `shard ${shard}: adopted count`);
      assert.equal(s.attributes[Attr.shardTakenFrom], 'wA');
      assert.equal(s.attributes[Attr.shardOutcome], 'acquired');
      assert.equal(typeof s.attributes[Attr.shardEpoch], 'number');
      total += adopted;
      if (adopted > 0) {
        const lines = b.lines.filter((l) => l.msg === 'ike-sa-adopted' && l.shard === shard);
        assert.equal(lines.length, adopted);
        for (const l of lines) assert.equal(l.trace_id, s.spanContext().traceId);
      }
    }
    assert.equal(total, N, 'every SA adopted, each counted once');
    assert.equal(b.worker.list().length, N);
  } finally {
    await b.owner.stop().catch(() => undefined);
    await a.worker.close(0);
    await b.worker.close(0);
    for (const s of stores) await s.close().catch(() => undefined);
    await redis.stop();
  }
});

test('tracing: unauthenticated junk (too short, an unknown IKE SPI, a response nobody asked for) starts no span and is answered by nothing (RFC 7296 §2.21.4)', () => {
  const w = newWorker('junk');
  const path: PeerPath = {
    connection: 'udp:4500:192.0.2.66:4500',
    transport: 'udp',
    local: { address: '192.0.2.1', port: 4500 },
    remote: { address: '192.0.2.66', port: 4500 },
  };
  const header = (flags: number) => {
    const b = new Uint8Array(28);
    b.set(randomBytes(16), 0);
    b[17] = 0x20; // version 2.0
    b[18] = 37; // INFORMATIONAL
    b[19] = flags;
    b[27] = 28;
    return b;
  };
  for (let i = 0; i < 200; i++) {
    w.worker.deliver({ kind: 'ike', path, bytes: new Uint8Array(randomBytes(1 + (i % 27))), shard: i % 16 });
    w.worker.deliver({ kind: 'ike', path, bytes: header(0x08), shard: i % 16 }); // a request, unknown SPIs
    w.worker.deliver({ kind: 'ike', path, bytes: header(0x20), shard: i % 16 }); // a response, unknown SPIs
  }
  assert.deepEqual(started, [], 'no span started');
  assert.equal(spans().length, 0);
  assert.equal(
    w.toPeer.filter((f) => f.kind === 'ike').length <= 200,
    true,
    'at most rate-limited INVALID_IKE_SPI',
  );
});
