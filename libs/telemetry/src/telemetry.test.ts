import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { createLogger, Metrics, REDACTED_FIELDS, RejectionLog, tlsFailureReason } from './index.js';
import { redactSecrets } from './logger.js';

test('logger: one JSON line per event, secrets redacted at any logged depth (STYLE: never keys in logs)', async () => {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ destination: out, name: 'test' });
  log.info({ spi: 'aabb', psk: 'topsecret', child: { keys: 'k', key: 'x' } }, 'ike-sa-established');
  await new Promise((r) => setImmediate(r));
  const lines = chunks.join('').trim().split('\n');
  assert.equal(lines.length, 1);
  const line = JSON.parse(lines[0]!) as Record<string, unknown>;
  assert.equal(line.msg, 'ike-sa-established');
  assert.equal(line.spi, 'aabb');
  assert.equal(line.level, 'info');
  assert.ok(!lines[0]!.includes('topsecret'));
  assert.deepEqual(line.child, { keys: '[redacted]', key: '[redacted]' });
});

test('metrics: counters render in the Prometheus exposition format with bounded labels', async () => {
  const m = new Metrics({ processMetrics: false });
  m.drops.inc({ layer: 'iketcp', reason: 'bad_prefix' });
  m.frames.inc({ transport: 'tcp', kind: 'ike', direction: 'in' }, 3);
  const text = await m.render();
  assert.match(text, /ikegate_drops_total\{layer="iketcp",reason="bad_prefix"\} 1/);
  assert.match(text, /ikegate_frames_total\{transport="tcp",kind="ike",direction="in"\} 3/);
  assert.match(m.contentType, /text\/plain/);
});

test('TLS handshake failures map to a bounded reason label (RFC 9329 §8 listener; metric hygiene)', () => {
  const cases: [string | undefined, string, string][] = [
    ['ERR_TLS_HANDSHAKE_TIMEOUT', 'TLS handshake timeout', 'timeout'],
    ['ECONNRESET', 'socket hang up', 'reset'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'wrong version number', 'protocol'],
    ['ERR_SSL_TLSV1_ALERT_UNKNOWN_CA', 'tlsv1 alert unknown ca', 'protocol'],
    [undefined, 'something else entirely', 'other'],
  ];
  for (const [code, message, reason] of cases) assert.equal(tlsFailureReason(code, message), reason, message);
});

test('cluster shard series: from the control process source at each scrape; absent (no crash, no stale value) while the store fails or hangs past the deadline', async () => {
  const m = new Metrics({ processMetrics: false });
  let fail = false;
  m.clusterShards = async () => {
    if (fail) throw new Error('redis down');
    return { count: 1024, unowned: 7 };
  };
  let text = await m.render();
  assert.match(text, /^ikegate_cluster_shards\{store="redis"\} 1024$/m);
  assert.match(text, /^ikegate_cluster_shards_without_owner\{store="redis"\} 7$/m);
  fail = true;
  text = await m.render();
  assert.doesNotMatch(text, /^ikegate_cluster_shards(_without_owner)?[{ ]/m);
  // A store that never answers: the scrape ends at the deadline, without the series.
  m.clusterShards = () => new Promise(() => undefined);
  m.clusterShardsDeadlineMs = 50;
  text = await m.render();
  assert.doesNotMatch(text, /^ikegate_cluster_shards(_without_owner)?[{ ]/m);
  assert.match(text, /^ikegate_build_info\{/m, 'the rest of the scrape is there');
});

test('hot counters (per-packet paths, issue #14): every increment made before a scrape is in it, through render(), registry.metrics() and counter.get(); bad increments throw as prom-client does', async () => {
  const m = new Metrics({ processMetrics: false });
  const espIn = m.hot(m.espPackets, 'in');
  const bytesIn = m.hot(m.espBytes, 'in');
  assert.equal(m.hot(m.espPackets, 'in'), espIn, 'one child per label values');
  for (let i = 0; i < 1000; i++) {
    espIn.inc();
    bytesIn.inc(1400);
  }
  assert.match(await m.render(), /^ikegate_esp_packets_total\{direction="in"\} 1000$/m);
  espIn.inc(5);
  assert.match(await m.registry.metrics(), /^ikegate_esp_packets_total\{direction="in"\} 1005$/m);
  bytesIn.inc(100);
  const got = await m.espBytes.get();
  assert.deepEqual(
    got.values.map((v) => [v.labels, v.value]),
    [[{ direction: 'in' }, 1_400_100]],
  );
  // Nothing pending is counted twice.
  assert.match(await m.render(), /^ikegate_esp_inner_bytes_total\{direction="in"\} 1400100$/m);
  assert.throws(() => espIn.inc(-1), TypeError);
  assert.throws(() => espIn.inc(Number.NaN), TypeError);
  assert.throws(() => espIn.inc(Number.POSITIVE_INFINITY), TypeError);
  assert.match(await m.render(), /^ikegate_esp_packets_total\{direction="in"\} 1005$/m);
});

test('logger: secrets are redacted in nested objects, arrays and child-logger bindings, without changing what the caller passed (STYLE: never keys in logs; issue #14: no wildcard redact paths)', async () => {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ destination: out, name: 'test' }).child({ peer: 'rw', secret: 'bound-secret' });
  const passed = {
    spi: 'aabb',
    sas: [{ spi: 'cc', keys: { skD: 'k1' } }, { a: { b: { password: 'deep-secret' } } }],
    bytes: new Uint8Array([1, 2, 3]),
    nested: { privateKey: 'pk', ok: 1 },
  };
  const copy = structuredClone(passed);
  log.warn(passed, 'x');
  log.child({ psk: 'grandchild-secret' }).warn('y');
  await new Promise((r) => setImmediate(r));
  const text = chunks.join('');
  for (const s of ['k1', 'deep-secret', 'bound-secret', '"pk"', 'grandchild-secret'])
    assert.ok(!text.includes(s), s);
  const [first, second] = text.trim().split('\n');
  assert.equal((JSON.parse(second!) as Record<string, unknown>).psk, '[redacted]');
  const line = JSON.parse(first!) as Record<string, unknown>;
  assert.equal(line.peer, 'rw');
  assert.equal(line.secret, '[redacted]');
  assert.deepEqual(line.sas, [{ spi: 'cc', keys: '[redacted]' }, { a: { b: { password: '[redacted]' } } }]);
  assert.deepEqual(line.nested, { privateKey: '[redacted]', ok: 1 });
  assert.deepEqual(passed, copy, "the caller's object is not changed");
  // Every listed name, at the top level; an object without any is passed through as it is.
  for (const f of REDACTED_FIELDS)
    assert.deepEqual(redactSecrets({ [f]: 'x', y: 1 }), { [f]: '[redacted]', y: 1 });
  const clean = { a: 1, b: { c: [1, 2] } };
  assert.equal(redactSecrets(clean), clean);
});

test('metrics.follow: a count kept elsewhere (a TUN reader thread drops) reaches ikegate_drops_total at each scrape, as what it gained since the last read (issue #14)', async () => {
  const m = new Metrics({ processMetrics: false });
  let source = 0;
  m.follow(m.drops, ['tun', 'read_ring_full'], () => source);
  assert.match(await m.render(), /^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} 0$/m);
  source = 7;
  assert.match(await m.render(), /^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} 7$/m);
  source = 10;
  m.hot(m.drops, 'tun', 'read_ring_full').inc(1);
  assert.match(await m.render(), /^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} 11$/m);
  source = 2; // a new device that has dropped 2 so far: both are new
  assert.match(await m.render(), /^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} 13$/m);
  source = 5;
  assert.match(await m.render(), /^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} 16$/m);
});

test('metrics.follow: a source that cannot be read at a scrape (undefined: /proc unreadable, too many open files) is skipped, not taken for 0, so its next read does not count it all again (issue #14)', async () => {
  const m = new Metrics({ processMetrics: false });
  let source: number | undefined = 100;
  m.follow(m.drops, ['udp', 'receive_buffer_full'], () => source);
  assert.match(await m.render(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 100$/m);
  source = undefined;
  assert.match(await m.render(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 100$/m);
  source = 104;
  assert.match(await m.render(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 104$/m);
});

test('metrics.follow: stopping a follow reads the source a last time (what it gained since the scrape is counted) and never again, while other sources of the same series go on (a closed socket is not read at every scrape, nor kept alive)', async () => {
  const m = new Metrics({ processMetrics: false });
  let a = 3;
  let b = 10;
  let readsOfA = 0;
  const stopA = m.follow(m.drops, ['udp', 'receive_buffer_full'], () => (readsOfA++, a));
  m.follow(m.drops, ['udp', 'receive_buffer_full'], () => b);
  assert.match(await m.render(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 13$/m);
  a = 5;
  stopA();
  const reads = readsOfA;
  assert.equal(reads, 2, 'read once by the scrape, once when stopped');
  a = 1000;
  b = 12;
  assert.match(await m.render(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 17$/m);
  assert.equal(readsOfA, reads, 'not read after it was stopped');
  stopA(); // idempotent
  assert.equal(readsOfA, reads);
});

test('RejectionLog: the first rejection of each layer/reason is logged at once, then at most one line per interval for it, saying how many were not logged since (a flood is not a log flood)', () => {
  const lines: Record<string, unknown>[] = [];
  const out = new PassThrough();
  out.on('data', (d: Buffer) => {
    for (const l of d.toString().trim().split('\n')) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  const log = createLogger({ destination: out, level: 'info' });
  let now = 1_000;
  const r = new RejectionLog(log, 10_000, () => now);
  for (let i = 0; i < 500; i++) r.note('udp', 'source_port_zero', { remote: `192.0.2.${i % 250}` });
  r.note('edge', 'connection_limit', { remote: '192.0.2.1' });
  now += 9_999;
  r.note('udp', 'source_port_zero');
  now += 1;
  r.note('udp', 'source_port_zero', { remote: '192.0.2.9' });
  now += 10_000;
  r.note('udp', 'source_port_zero');
  log.flush();
  const got = lines.map((l) => [l['msg'], l['layer'], l['reason'], l['remote'], l['suppressed']]);
  assert.deepEqual(got, [
    ['rejected', 'udp', 'source_port_zero', '192.0.2.0', undefined],
    ['rejected', 'edge', 'connection_limit', '192.0.2.1', undefined],
    ['rejected', 'udp', 'source_port_zero', '192.0.2.9', 500],
    ['rejected', 'udp', 'source_port_zero', undefined, undefined],
  ]);
});

test("logger: an Error's own fields and its cause are redacted too, and the error keeps its type, message and stack (STYLE: never keys in logs)", async () => {
  const out = new PassThrough();
  const chunks: string[] = [];
  out.on('data', (c: Buffer) => chunks.push(c.toString()));
  const log = createLogger({ destination: out, name: 'test' });
  const err = Object.assign(new TypeError('boom'), {
    password: 'e-secret',
    options: { key: 'opt-secret' },
    code: 'E1',
  });
  log.error({ err }, 'failed');
  await new Promise((r) => setImmediate(r));
  const text = chunks.join('');
  for (const s of ['e-secret', 'opt-secret']) assert.ok(!text.includes(s), s);
  const line = JSON.parse(text.trim()) as { err: Record<string, unknown> };
  assert.equal(line.err.type, 'TypeError');
  assert.equal(line.err.message, 'boom');
  assert.match(String(line.err.stack), /TypeError: boom/);
  assert.equal(line.err.code, 'E1');
  assert.equal(line.err.password, '[redacted]');
  assert.equal(err.password, 'e-secret', "the caller's error is not changed");
  // The cause (not enumerable) is walked too, for a serializer that writes it.
  const withCause = redactSecrets(new Error('outer', { cause: { psk: 'cause-secret', why: 'x' } }));
  assert.ok(withCause instanceof Error);
  assert.equal(withCause.message, 'outer');
  assert.deepEqual(withCause.cause, { psk: '[redacted]', why: 'x' });
});
