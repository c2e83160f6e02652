/**
 * The scrape endpoint `ikegate connect --metrics` serves (metrics-http.ts): the Prometheus text
 * format at /metrics, 404 and 405 elsewhere, a bounded number of sockets, and a clear error for an
 * address it cannot bind. Real sockets on loopback, a real Metrics registry.
 */
import assert from 'node:assert/strict';
import { connect as tcpConnect, createServer, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import fc from 'fast-check';
import { createLogger, Metrics } from '@ikegate/telemetry';
import { type MetricsListener, MetricsListenError, parseListen, serveMetrics } from './metrics-http.js';

const HOST = '127.0.0.1';
const log = createLogger({ level: 'silent', name: 'metrics-http-test' });

describe('metrics listener (ikegate connect --metrics)', () => {
  const metrics = new Metrics({ role: 'connect' });
  let listener: MetricsListener;
  const url = (path: string) => `http://${HOST}:${listener.address.port}${path}`;
  after(() => listener?.close());

  test('GET /metrics: 200, the Prometheus text format, the counters as they are now', async () => {
    listener = await serveMetrics(metrics, { host: HOST, port: 0 }, log);
    metrics.drops.inc({ layer: 'udp', reason: 'receive_buffer_full' }, 3);
    const r = await fetch(url('/metrics'));
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await r.text(), /^ikegate_drops_total\{layer="udp",reason="receive_buffer_full"\} 3$/m);
    const q = await fetch(url('/metrics?x=1'));
    assert.equal(q.status, 200, 'a query string is ignored');
    await q.text();
  });

  test('HEAD /metrics: 200 without a body; other methods 405 with Allow; other paths 404', async () => {
    const head = await fetch(url('/metrics'), { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), '');
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const r = await fetch(url('/metrics'), { method, body: method === 'DELETE' ? undefined : 'x' });
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.get('allow'), 'GET, HEAD');
      await r.text();
    }
    for (const path of ['/', '/metricsx', '/v1/sas', '/metrics/']) {
      const r = await fetch(url(path));
      assert.equal(r.status, 404, path);
      await r.text();
    }
  });

  test('at most 16 sockets at once: the 17th is closed by the server while the 16 stay open; a scrape works once they go', async () => {
    // A listener of its own: fetch's pooled keep-alive sockets to the shared one would count too.
    const own = await serveMetrics(new Metrics({ role: 'connect' }), { host: HOST, port: 0 }, log);
    const held: Socket[] = [];
    const closedHeld = new Set<Socket>();
    try {
      for (let i = 0; i < 16; i++) {
        const s = tcpConnect(own.address.port, HOST);
        s.on('close', () => closedHeld.add(s));
        s.on('error', () => undefined);
        await new Promise<void>((resolve) => s.once('connect', () => resolve()));
        s.write('GET /metr'); // an unfinished request keeps the socket
        held.push(s);
      }
      const extra = tcpConnect(own.address.port, HOST);
      extra.on('error', () => undefined);
      const closed = await new Promise<boolean>((resolve) => {
        extra.once('close', () => resolve(true));
        setTimeout(() => resolve(false), 5_000).unref();
      });
      extra.destroy();
      assert.ok(closed, 'the socket over the cap was closed');
      await new Promise((resolve) => setTimeout(resolve, 50)); // a wrong cap would close held ones too
      assert.equal(closedHeld.size, 0, 'the 16 held sockets are still open');
    } finally {
      for (const s of held) s.destroy();
    }
    try {
      for (let i = 0; i < 100; i++) {
        try {
          const r = await fetch(`http://${HOST}:${own.address.port}/metrics`);
          assert.equal(r.status, 200);
          await r.text();
          return;
        } catch {
          await new Promise((resolve) => setTimeout(resolve, 20)); // the server has not seen the closes yet
        }
      }
      assert.fail('no scrape answered after the held sockets closed');
    } finally {
      await own.close();
    }
  });

  test('a socket that sends nothing and one whose headers never end are closed at the request timeout', async () => {
    const own = await serveMetrics(new Metrics({ role: 'connect' }), { host: HOST, port: 0 }, log, 300);
    try {
      const ended = (s: Socket) =>
        new Promise<boolean>((resolve) => {
          s.on('error', () => undefined);
          s.resume(); // reads the 408, so the server's FIN is seen
          s.once('close', () => resolve(true));
          setTimeout(() => resolve(false), 5_000).unref(); // 16x the timeout: a wait with a deadline
        });
      const silent = tcpConnect(own.address.port, HOST);
      const partial = tcpConnect(own.address.port, HOST);
      partial.once('connect', () => partial.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'));
      const [a, b] = await Promise.all([ended(silent), ended(partial)]);
      silent.destroy();
      partial.destroy();
      assert.deepEqual([a, b], [true, true]);
    } finally {
      await own.close();
    }
  });

  test('an address in use: a MetricsListenError naming the address and EADDRINUSE', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, HOST, () => resolve()));
    const port = (taken.address() as { port: number }).port;
    try {
      await assert.rejects(serveMetrics(metrics, { host: HOST, port }, log), (e: unknown) => {
        assert.ok(e instanceof MetricsListenError);
        assert.equal(e.code, 'EADDRINUSE');
        assert.match(e.message, new RegExp(`^cannot serve metrics on 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
        return true;
      });
    } finally {
      await new Promise<void>((resolve) => taken.close(() => resolve()));
    }
  });

  test('close() with a scraper stuck mid-request: its socket is closed, close() returns before the 10 s request timeout, the port is released', async () => {
    const port = listener.address.port;
    const stuck = tcpConnect(port, HOST);
    await new Promise<void>((resolve) => stuck.once('connect', () => resolve()));
    stuck.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'); // the headers never end
    const stuckClosed = new Promise<void>((resolve) => stuck.once('close', () => resolve()));
    try {
      await new Promise((resolve) => setTimeout(resolve, 50)); // the server has the request
      const deadline = new Promise<'deadline'>((resolve) =>
        setTimeout(() => resolve('deadline'), 5_000).unref(),
      );
      assert.equal(await Promise.race([listener.close().then(() => 'closed' as const), deadline]), 'closed');
      await stuckClosed;
    } finally {
      stuck.destroy(); // a failed case must not leave the server waiting for it
    }
    await assert.rejects(fetch(`http://${HOST}:${port}/metrics`));
  });
});

describe('--metrics HOST:PORT parsing', () => {
  test('IPv4, a name, bracketed IPv6, port 0', () => {
    assert.deepEqual(parseListen('127.0.0.1:9102', '--metrics'), { host: '127.0.0.1', port: 9102 });
    assert.deepEqual(parseListen('localhost:0', '--metrics'), { host: 'localhost', port: 0 });
    assert.deepEqual(parseListen('[::1]:9102', '--metrics'), { host: '::1', port: 9102 });
    assert.deepEqual(parseListen('[fe80::1]:1', '--metrics'), { host: 'fe80::1', port: 1 });
  });

  test('refused, naming the flag and the value: no host, no port, a port out of range or not a number', () => {
    for (const v of [
      '9102',
      ':9102',
      '127.0.0.1:',
      '127.0.0.1:65536',
      '127.0.0.1:-1',
      'h:1.5',
      'h:9x',
      '[]:1',
      'h: 1',
      'h:0x10',
      'h:1e3',
      '::1',
      'fe80::1',
      '::1:9102',
      '[::1:9102',
      '::1]:9102',
      '[h]:1',
      'a[b]:1',
    ])
      assert.throws(
        () => parseListen(v, '--metrics'),
        new RegExp(
          `^Error: --metrics must be HOST:PORT \\(IPv6 as \\[ADDRESS\\]:PORT, port 0-65535\\), got ${v.replace(/[[\]().]/g, '\\$&')}$`,
        ),
        v,
      );
  });

  test('any string: a host and an integer port 0-65535, or the usage error (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 40 }), (v) => {
        let r: { host: string; port: number };
        try {
          r = parseListen(v, '--metrics');
        } catch (e) {
          assert.match((e as Error).message, /^--metrics must be HOST:PORT/);
          return;
        }
        assert.ok(r.host.length > 0);
        assert.ok(Number.isInteger(r.port) && r.port >= 0 && r.port <= 65535);
      }),
      { numRuns: 2_000 },
    );
  });
});
