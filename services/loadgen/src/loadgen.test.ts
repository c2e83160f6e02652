/**
 * `ikegate loadgen` against the real gateway: `ikegate up --no-tun` on loopback (high ports derived
 * from the pid), a pool big enough for every SA. Runs in-process for the held-count checks and
 * through the CLI for the failure accounting and exit status. No root, no namespaces.
 */
import { spawn } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { runLoadgen, type LoadgenOptions, type LoadgenTransport } from './loadgen.js';
import { expandId, latencySummary, percentile, quarterRates, type LoadgenSummary } from './stats.js';
import { LoadgenUsageError, parseLoadgenArgs } from './cli.js';
import { Gateway, gatewayPorts, HOST, IKEGATE_BIN, PSK } from './testing/gateway.js';

const BASE = 10_000 + (process.pid % 1_800) * 5;
const PORTS = gatewayPorts(BASE);

function options(
  transport: LoadgenTransport,
  count: number,
  over: Partial<LoadgenOptions> = {},
): LoadgenOptions {
  return {
    server: HOST,
    transport,
    ports: PORTS,
    count,
    concurrency: 16,
    idPattern: 'load-{n}@example.org',
    remoteId: 'gw.example.org',
    psk: new TextEncoder().encode(PSK),
    insecure: true,
    timeoutMs: 20_000,
    ...over,
  };
}

function assertConsistent(s: LoadgenSummary): void {
  const failures = Object.values(s.failures).reduce((a, b) => a + b, 0);
  assert.equal(s.attempted, s.count);
  assert.equal(s.established + s.failed, s.attempted);
  assert.equal(failures, s.failed);
  assert.equal(s.held + s.lostAfterSetup, s.established);
  const l = s.latencyMs;
  assert.ok(l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max, JSON.stringify(l));
}

describe('ikegate loadgen against ikegate up (loopback)', () => {
  const gw = new Gateway(PORTS);
  before(() => gw.start());
  after(() => gw.stop());

  for (const [transport, count] of [
    ['udp', 200],
    ['tcp', 50],
    ['tls', 50],
  ] as const) {
    it(`sets up ${count} IKE+CHILD SAs over ${transport}, the gateway holds them, deletes them at the end`, async () => {
      const run = await runLoadgen(options(transport, count, { concurrency: transport === 'udp' ? 32 : 16 }));
      const s = run.summary;
      try {
        assertConsistent(s);
        assert.equal(s.established, count, JSON.stringify(s));
        assert.equal(s.failed, 0);
        assert.deepEqual(s.failures, {});
        assert.equal(s.held, count);
        assert.equal(run.held(), count);
        assert.ok(s.setupsPerSecond > 0);
        assert.ok(s.latencyMs.max > 0);
        assert.equal(await gw.waitFor(count), count, 'gateway /v1/sas count equals the SAs held');
      } finally {
        const deleted = await run.stop({ deleteSas: true });
        assert.equal(deleted, count);
      }
      assert.equal(run.held(), 0);
      assert.equal(await gw.waitFor(0), 0, 'the deletes reached the gateway');
    });
  }

  it('spreads UDP SAs over several sockets and honours a rate limit', async () => {
    const run = await runLoadgen(options('udp', 20, { udpSockets: 4, rate: 1000, concurrency: 4 }));
    try {
      assertConsistent(run.summary);
      assert.equal(run.summary.established, 20);
    } finally {
      await run.stop({ deleteSas: true });
    }
    assert.equal(await gw.waitFor(0), 0);
  });

  it('counts a wrong PSK as auth-failed, through the CLI, and exits 1 cleanly', async () => {
    const before = await gw.established();
    const child = spawn(
      process.execPath,
      [
        IKEGATE_BIN,
        'loadgen',
        ...['--server', HOST, '--remote-id', 'gw.example.org', '--psk', 'not-the-right-pre-shared-key-000'],
        ...['--port-ike', String(PORTS.ike), '--port-natt', String(PORTS.natT)],
        ...['--count', '12', '--concurrency', '4', '--timeout', '20', '--json'],
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    assert.equal(code, 1, stderr);
    const s = JSON.parse(stdout) as LoadgenSummary;
    assertConsistent(s);
    assert.equal(s.established, 0);
    assert.equal(s.failed, 12);
    assert.deepEqual(s.failures, { 'auth-failed': 12 });
    assert.match(stderr, /12\/12/); // plain progress lines when stderr is not a TTY
    assert.equal(await gw.established(), before);
  });

  it('counts a refused TCP connection as connect-failed', async () => {
    const run = await runLoadgen(options('tcp', 3, { ports: { ...PORTS, tcp: PORTS.control + 1 } }));
    await run.stop();
    assertConsistent(run.summary);
    assert.deepEqual(run.summary.failures, { 'connect-failed': 3 });
    assert.equal(run.summary.sampleErrors.length, 3);
  });
  it('stop without deletes leaves the SAs on the gateway', async () => {
    const run = await runLoadgen(options('udp', 10));
    assert.equal(run.summary.established, 10);
    assert.equal(await run.stop(), 0);
    assert.equal(await gw.waitFor(10), 10); // last case: the gateway keeps them until it stops
  });
});

describe('ikegate loadgen against a gateway whose pool runs out', () => {
  const ports = {
    ike: BASE + 9000,
    natT: BASE + 9001,
    tcp: BASE + 9002,
    tls: BASE + 9003,
    control: BASE + 9004,
  };
  // A /29: five addresses for peers (not the network, the gateway's .1 or the broadcast).
  const gw = new Gateway(ports, '10.65.0.0/29');
  before(() => gw.start());
  after(() => gw.stop());

  it('fails the setups past the pool at once as internal-address-failure, not at their timeout, and deletes their IKE SAs (RFC 7296 §3.15.4, issue #9 defect 5)', async () => {
    const run = await runLoadgen(options('udp', 8, { ports, concurrency: 8, timeoutMs: 60_000 }));
    try {
      const s = run.summary;
      assertConsistent(s);
      assert.equal(s.established, 5, JSON.stringify(s));
      assert.deepEqual(s.failures, { 'internal-address-failure': 3 });
      assert.equal(await gw.waitFor(5), 5, 'the refused ones left no IKE SA on the gateway');
    } finally {
      await run.stop({ deleteSas: true });
    }
    assert.equal(await gw.waitFor(0), 0);
  });
});

describe('loadgen arithmetic and arguments', () => {
  it('percentiles are nearest-rank', () => {
    const xs = Array.from({ length: 100 }, (_, i) => i + 1);
    assert.equal(percentile(xs, 50), 50);
    assert.equal(percentile(xs, 99), 99);
    assert.equal(percentile(xs, 100), 100);
    assert.equal(percentile([], 50), 0);
    assert.deepEqual(latencySummary([3, 1, 2]), { p50: 2, p90: 3, p99: 3, max: 3, mean: 2 });
  });

  it('quarter rates come from completion times', () => {
    const times = Array.from({ length: 40 }, (_, i) => (i + 1) * 10); // one per 10 ms
    assert.deepEqual(quarterRates(times), { first: 100, last: 100 });
    assert.deepEqual(quarterRates([1, 2]), { first: 0, last: 0 });
    // ramp-up and drain left out: 10 fast completions at each end do not count
    const edged = [...Array.from({ length: 10 }, (_, i) => i), ...times.map((t) => t + 10), 411, 411.5];
    assert.deepEqual(quarterRates(edged, 10), { first: 100, last: 100 });
  });

  it('expands {n} in identities', () => {
    assert.equal(expandId('load-{n}@example.org', 7), 'load-7@example.org');
    assert.equal(expandId('fixed.example.org', 7), 'fixed.example.org');
  });

  it('parses and rejects arguments', () => {
    const o = parseLoadgenArgs([
      ...['--server', '192.0.2.1', '--remote-id', 'gw', '--psk', 'abcdefghijklmnop', '--count', '5'],
      ...['--transport', 'tls', '--delete-at-end', '--json'],
    ]);
    assert.equal(o.run.count, 5);
    assert.equal(o.run.transport, 'tls');
    assert.equal(o.run.ports.tls, 443);
    assert.equal(o.deleteAtEnd, true);
    assert.equal(o.json, true);
    assert.equal(o.hold, false);
    assert.throws(() => parseLoadgenArgs(['--server', 'x', '--remote-id', 'gw']), LoadgenUsageError);
    assert.throws(
      () => parseLoadgenArgs(['--server', 'x', '--remote-id', 'gw', '--psk', 'p', '--transport', 'esp']),
      LoadgenUsageError,
    );
    assert.throws(
      () => parseLoadgenArgs(['--server', 'x', '--remote-id', 'gw', '--psk', 'p', '--count', '0']),
      LoadgenUsageError,
    );
  });
});
