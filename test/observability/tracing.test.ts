/**
 * Tracing beyond the worker (issue #13; the IKE and takeover traces are in
 * services/worker/src/tracing.test.ts): a server span per control API call, with the real SDK and
 * its in-memory exporter; and a real `ikegate up` process that exports its spans over OTLP/HTTP to
 * a collector this test runs on 127.0.0.1 when OTEL_EXPORTER_OTLP_ENDPOINT is set, and loads no
 * SDK module at all when it is not.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { Attr, startTracing, type TracingHandle } from '@ikegate/telemetry';
import { freePort } from '@ikegate/testkit';
import { testGateway } from '../../services/control/src/testing/gateway.js';

const IKEGATE_BIN = new URL('../../services/cli/bin/ikegate.mjs', import.meta.url).pathname;
const HOST = '127.0.0.1';

test('tracing: a control API call is one server span "{method} {route}" with the semantic-convention attributes and status, parent of its log lines; no credential in any span', async (t) => {
  const exporter = new InMemorySpanExporter();
  const tracing: TracingHandle | undefined = await startTracing({
    role: 'test',
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const gw = await testGateway();
  t.after(async () => {
    await gw.close();
    await tracing?.shutdown();
  });
  const list = await gw.call('viewer', 'GET', '/v1/sas?limit=5');
  assert.equal(list.status, 200, list.body);
  const created = await gw.call('admin', 'PUT', '/v1/peers/tracy', {
    id: 'tracy@corp.example',
    auth: { psk: 'tracing-psk-0123456789abcdef' },
    pool: 'rw',
  });
  assert.equal(created.status, 201, created.body);
  const refused = await gw.call('none', 'GET', '/v1/peers');
  assert.equal(refused.status, 401);
  await sleep(50); // onResponse runs after the reply is written

  const spans = exporter.getFinishedSpans();
  const get = spans.find((s) => s.name === 'GET /v1/sas');
  assert.ok(get, spans.map((s) => s.name).join(', '));
  assert.equal(get.kind, SpanKind.SERVER);
  assert.equal(get.attributes[Attr.httpMethod], 'GET');
  assert.equal(get.attributes[Attr.httpRoute], '/v1/sas');
  assert.equal(get.attributes[Attr.httpStatus], 200);
  assert.notEqual(get.status.code, SpanStatusCode.ERROR);

  const put = spans.find((s) => s.name === 'PUT /v1/peers/:name');
  assert.ok(put, spans.map((s) => s.name).join(', '));
  assert.equal(put.attributes[Attr.httpStatus], 201);
  assert.equal(put.attributes[Attr.httpRoute], '/v1/peers/:name', 'the route pattern, not the URL');
  // The audit line of that call was written inside its span.
  const audit = gw.logLines
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.msg === 'audit' && l.action === 'PUT /v1/peers/:name');
  assert.equal(audit?.trace_id, put.spanContext().traceId, JSON.stringify(audit));

  const denied = spans.find((s) => s.name === 'GET /v1/peers');
  assert.equal(denied?.attributes[Attr.httpStatus], 401);
  assert.notEqual(
    denied?.status.code,
    SpanStatusCode.ERROR,
    "a 4xx is the client's error, not the server span's",
  );

  // No Authorization value, token or PSK anywhere in any span.
  const text = JSON.stringify(
    spans.map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, links: s.links })),
  );
  for (const token of Object.values(gw.tokens)) assert.ok(!text.includes(token), 'a bearer token leaked');
  assert.ok(!/bearer/i.test(text) && !text.includes('authorization'));
  assert.ok(!text.includes('tracing-psk-0123456789abcdef'));
});

// --- a real `ikegate up` process ----------------------------------------------------------------

/** A minimal OTLP/HTTP collector: every JSON body POSTed to /v1/traces, decoded. */
interface OtlpSpan {
  readonly name: string;
  readonly attributes?: { key: string; value: Record<string, unknown> }[];
}
interface OtlpRequest {
  readonly resourceSpans: {
    resource?: { attributes?: { key: string; value: Record<string, unknown> }[] };
    scopeSpans: { scope?: { name?: string }; spans: OtlpSpan[] }[];
  }[];
}

const received: OtlpRequest[] = [];
const collector = createServer((req: IncomingMessage, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'POST' && req.url === '/v1/traces') {
      try {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpRequest);
      } catch {
        received.push({ resourceSpans: [] });
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});
let collectorPort = 0;
const dir = mkdtempSync(join(tmpdir(), 'ikegate-tracing-'));
before(async () => {
  await new Promise<void>((r) => collector.listen(0, HOST, r));
  const a = collector.address();
  collectorPort = typeof a === 'object' && a ? a.port : 0;
});
after(async () => {
  await new Promise<void>((r) => collector.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

/** Preloaded into the process: at exit, says which OpenTelemetry SDK modules it had loaded. */
const PROBE = `data:text/javascript,${encodeURIComponent(`
import { createRequire } from 'node:module';
const cache = createRequire(process.cwd() + '/').cache;
process.on('exit', () => {
  const sdk = Object.keys(cache).filter((k) => /@opentelemetry[\\\\/](sdk-trace|exporter-trace-otlp-http|context-async-hooks)[\\\\/]/.test(k));
  process.stderr.write('OTEL-SDK-MODULES ' + JSON.stringify(sdk.length) + '\\n');
});`)}`;

async function runUp(env: Record<string, string>): Promise<{ stderr: string; proc: ChildProcess }> {
  const [ike, natT, tcp, tls, control] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const config = join(dir, `up-${control}.yaml`);
  writeFileSync(
    config,
    `identity: { id: gw.example.org }
listen:
  udp: { address: ${HOST}, ikePort: ${ike}, natTPort: ${natT} }
  tcp: { address: ${HOST}, port: ${tcp} }
  tls: { address: ${HOST}, port: ${tls} }
control: { address: ${HOST}, port: ${control} }
proposals:
  ike: [aes256gcm16-prfsha256-x25519]
  esp: [aes256gcm16]
dataplane:
  masquerade: { enabled: false }
log: { level: info }
`,
  );
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !k.startsWith('OTEL_')) clean[k] = v;
  const proc = spawn(
    process.execPath,
    ['--import', PROBE, IKEGATE_BIN, 'up', '--config', config, '--no-tun'],
    {
      env: { ...clean, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  try {
    // Bounded: the process answers /healthz within 30 s or the test fails.
    let up = false;
    for (let i = 0; i < 300 && !up && proc.exitCode === null; i++) {
      up = await fetch(`http://${HOST}:${control}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      if (!up) await sleep(100);
    }
    assert.ok(up, `ikegate up did not serve /healthz: ${stderr}`);
    if (env.OTEL_EXPORTER_OTLP_ENDPOINT) {
      for (let i = 0; i < 100 && !spanNames().includes('GET /healthz'); i++) await sleep(100);
    }
  } finally {
    proc.kill('SIGTERM');
    await Promise.race([exited, sleep(15_000)]);
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  }
  return { stderr, proc };
}

function spanNames(): string[] {
  return received.flatMap((r) =>
    r.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => s.name))),
  );
}

test('tracing: with OTEL_EXPORTER_OTLP_ENDPOINT set, `ikegate up` exports its spans over OTLP/HTTP (service name, version and role in the resource)', async () => {
  received.length = 0;
  const { stderr } = await runUp({
    OTEL_EXPORTER_OTLP_ENDPOINT: `http://${HOST}:${collectorPort}`,
    OTEL_BSP_SCHEDULE_DELAY: '100',
  });
  assert.ok(spanNames().includes('GET /healthz'), `spans received: ${spanNames().join(', ')}; ${stderr}`);
  const resource = received[0]!.resourceSpans[0]!.resource?.attributes ?? [];
  const attr = (k: string) => resource.find((a) => a.key === k)?.value.stringValue;
  assert.equal(attr('service.name'), 'ikegate');
  assert.equal(attr('ikegate.role'), 'up');
  assert.match(String(attr('service.version')), /^\d+\.\d+\.\d+/);
  assert.match(stderr, /OTEL-SDK-MODULES [1-9]/, 'the SDK was loaded (the probe sees it)');
});

test('tracing: without OTEL_EXPORTER_OTLP_ENDPOINT, `ikegate up` loads no OpenTelemetry SDK module and exports nothing', async () => {
  received.length = 0;
  const { stderr } = await runUp({});
  assert.match(stderr, /OTEL-SDK-MODULES 0\b/, stderr);
  assert.equal(received.length, 0);
});
