import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import { encodeEspFrame, encodeIkeFrame, IKETCP_PREFIX } from '@ikegate/iketcp';
import fc from 'fast-check';

import type { ShimEvent } from './events.js';
import { TcpShim, type TcpShimOptions } from './shim.js';
import {
  espPacket,
  type FakeDaemon,
  type FakeResponder,
  ikeMessage,
  send,
  startDaemon,
  startResponder,
  waitFor,
  withMarker,
} from './testing.js';

interface Harness {
  shim: TcpShim;
  responder: FakeResponder;
  daemon: FakeDaemon;
  logs: { event: ShimEvent; fields: Record<string, unknown> }[];
  close(): Promise<void>;
}

async function harness(
  extra: Partial<TcpShimOptions> = {},
  responder?: FakeResponder,
  upstreamTls?: NonNullable<TcpShimOptions['upstream']['tls']>,
): Promise<Harness> {
  const r = responder ?? (await startResponder());
  const daemon = await startDaemon();
  const logs: Harness['logs'] = [];
  const shim = new TcpShim({
    listen: { address: '127.0.0.1', ikePort: 0, natTPort: 0 },
    upstream: { host: '127.0.0.1', port: r.port, ...(upstreamTls ? { tls: upstreamTls } : {}) },
    connectTimeoutMs: 2000,
    logger: (event, fields) => logs.push({ event, fields }),
    ...extra,
  });
  await shim.start();
  return {
    shim,
    responder: r,
    daemon,
    logs,
    async close() {
      await shim.close();
      await daemon.close();
      await r.close();
    },
  };
}

/** Events of connection `i` other than the prefix. */
function frames(h: Harness, i = 0): unknown[] {
  return (h.responder.connections[i]?.events ?? []).filter((e) => e.kind !== 'prefix');
}

describe('TcpShim daemon -> upstream (RFC 9329 §3)', () => {
  it('sends the IKETCP prefix first, then IKE from port 500 as an IKE frame with identical bytes', async () => {
    const h = await harness();
    try {
      const ike = ikeMessage(100);
      await send(h.daemon.ike, ike, h.shim.ports.ike);
      await waitFor(() => frames(h).length === 1, 'IKE frame');
      const conn = h.responder.connections[0]!;
      assert.deepEqual(conn.firstBytes.subarray(0, 6), Buffer.from(IKETCP_PREFIX));
      assert.deepEqual(conn.events[0], { kind: 'prefix' });
      assert.deepEqual(conn.events[1], { kind: 'ike', message: ike });
      // The IKE frame right after the prefix, byte for byte.
      const frame = Buffer.from(encodeIkeFrame(ike));
      assert.deepEqual(conn.firstBytes.subarray(6, 16), frame.subarray(0, 10));
      assert.equal(h.shim.counters.datagramsIn, 1);
      assert.equal(h.shim.counters.framesOut, 1);
      assert.equal(h.responder.connections.length, 1);
    } finally {
      await h.close();
    }
  });

  it('strips the non-ESP marker from IKE on 4500, frames ESP, drops and counts NAT-keepalives', async () => {
    const h = await harness();
    try {
      const ike = ikeMessage(64, 0x41);
      const esp = espPacket(0x1234_5678, 1);
      await send(h.daemon.natT, withMarker(ike), h.shim.ports.natT);
      await waitFor(() => frames(h).length === 1, 'IKE frame');
      await send(h.daemon.natT, Uint8Array.of(0xff), h.shim.ports.natT);
      await waitFor(() => h.shim.counters.keepalivesDropped === 1, 'keepalive counted');
      await send(h.daemon.natT, esp, h.shim.ports.natT);
      await waitFor(() => frames(h).length === 2, 'ESP frame');
      assert.deepEqual(frames(h), [
        { kind: 'ike', message: ike },
        { kind: 'esp', packet: esp },
      ]);
      assert.equal(h.shim.counters.datagramsIn, 3);
      assert.equal(h.shim.counters.framesOut, 2);
      // Both ports of one daemon IP share one stream.
      await send(h.daemon.ike, ikeMessage(8), h.shim.ports.ike);
      await waitFor(() => frames(h).length === 3, 'third frame');
      assert.equal(h.responder.connections.length, 1);
    } finally {
      await h.close();
    }
  });

  it('drops malformed datagrams with a reason and never opens a stream for them', async () => {
    const h = await harness();
    try {
      await send(h.daemon.natT, Uint8Array.of(1, 2), h.shim.ports.natT);
      await send(h.daemon.natT, Buffer.alloc(10), h.shim.ports.natT); // marker + too short for IKE
      await send(h.daemon.natT, espPacket(0x10, 1), h.shim.ports.natT); // reserved SPI
      await send(h.daemon.ike, Buffer.alloc(20), h.shim.ports.ike);
      await waitFor(() => h.shim.counters.datagramsIn === 4, 'datagrams');
      assert.deepEqual(h.shim.counters.dropsByReason, {
        udp_short: 1,
        udp_short_ike: 2,
        udp_reserved_spi: 1,
      });
      assert.equal(h.responder.connections.length, 0);
    } finally {
      await h.close();
    }
  });

  it('forwards any sequence of datagrams on 4500 in order (property)', async () => {
    const h = await harness();
    try {
      const datagram = fc.oneof(
        fc.record({ kind: fc.constant('ike' as const), len: fc.integer({ min: 0, max: 1400 }) }),
        fc.record({
          kind: fc.constant('esp' as const),
          spi: fc.integer({ min: 256, max: 0xffff_ffff }),
          len: fc.integer({ min: 0, max: 1400 }),
        }),
        fc.record({ kind: fc.constant('keepalive' as const) }),
      );
      let sent = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(datagram, { minLength: 1, maxLength: 12 }), async (list) => {
          const expected: unknown[] = [];
          for (const [i, d] of list.entries()) {
            if (d.kind === 'ike') {
              const m = ikeMessage(d.len, i & 0xff);
              expected.push({ kind: 'ike', message: m });
              await send(h.daemon.natT, withMarker(m), h.shim.ports.natT);
            } else if (d.kind === 'esp') {
              const p = espPacket(d.spi, i + 1, d.len);
              expected.push({ kind: 'esp', packet: p });
              await send(h.daemon.natT, p, h.shim.ports.natT);
            } else {
              await send(h.daemon.natT, Uint8Array.of(0xff), h.shim.ports.natT);
            }
          }
          const start = sent;
          sent += expected.length;
          await waitFor(() => frames(h).length === sent, 'frames');
          assert.deepEqual(frames(h).slice(start), expected);
        }),
        { numRuns: 15 },
      );
      assert.equal(h.responder.connections.length, 1);
    } finally {
      await h.close();
    }
  });
});

describe('TcpShim upstream -> daemon', () => {
  it('returns IKE on the port the daemon last used (marker on 4500), ESP on 4500', async () => {
    const h = await harness();
    try {
      // The daemon starts on 500: the answer comes back plain on 500.
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => frames(h).length === 1, 'IKE frame');
      const conn = h.responder.connections[0]!;
      const reply1 = ikeMessage(52, 0x77);
      conn.socket.write(encodeIkeFrame(reply1));
      await waitFor(() => h.daemon.receivedIke.length === 1, 'reply on 500');
      assert.deepEqual(h.daemon.receivedIke[0], reply1);

      // It floats to 4500: answers carry the non-ESP marker and come from the NAT-T socket.
      await send(h.daemon.natT, withMarker(ikeMessage(40)), h.shim.ports.natT);
      await waitFor(() => frames(h).length === 2, 'second IKE frame');
      const reply2 = ikeMessage(60, 0x78);
      const esp = espPacket(0xdead_beef, 7, 100);
      // Both frames in one write, and a third split across writes.
      conn.socket.write(Buffer.concat([encodeIkeFrame(reply2), encodeEspFrame(esp)]));
      const esp2 = Buffer.from(encodeEspFrame(espPacket(0xdead_beef, 8, 300)));
      conn.socket.write(esp2.subarray(0, 5));
      await new Promise((resolve) => setTimeout(resolve, 20));
      conn.socket.write(esp2.subarray(5));
      await waitFor(() => h.daemon.receivedNatT.length === 3, 'replies on 4500');
      assert.deepEqual(h.daemon.receivedNatT[0], withMarker(reply2));
      assert.deepEqual(h.daemon.receivedNatT[1], esp);
      assert.deepEqual(h.daemon.receivedNatT[2], esp2.subarray(2));
      assert.equal(h.daemon.receivedIke.length, 1);
      assert.equal(h.shim.counters.framesIn, 4);
      await waitFor(() => h.shim.counters.datagramsOut === 4, 'datagramsOut');
      // A keepalive frame from upstream is dropped, not relayed.
      conn.socket.write(Uint8Array.of(0, 3, 0xff));
      await waitFor(() => h.shim.counters.dropsByReason.upstream_keepalive === 1, 'upstream keepalive');
      assert.equal(h.daemon.receivedNatT.length, 3);
    } finally {
      await h.close();
    }
  });

  it('destroys a stream the decoder rejects, logs it, and keeps running', async () => {
    const h = await harness();
    try {
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => frames(h).length === 1, 'IKE frame');
      h.responder.connections[0]!.socket.write(Uint8Array.of(0, 1)); // Length 1: cannot frame anything
      await waitFor(() => h.responder.connections[0]!.closed, 'stream closed');
      const err = h.logs.find((l) => l.event === 'upstream_protocol_error');
      assert.deepEqual(err?.fields, { daemon: '127.0.0.1', reason: 'bad_length' });
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => h.responder.connections.length === 2 && frames(h, 1).length === 1, 'redial');
    } finally {
      await h.close();
    }
  });
});

describe('TcpShim reconnects (RFC 9329 §6: the initiator side restores the connection)', () => {
  it('redials on the next datagram after upstream closes, with a new prefix', async () => {
    const h = await harness();
    try {
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => frames(h).length === 1, 'first IKE frame');
      h.responder.connections[0]!.socket.end();
      await waitFor(() => h.shim.sessions()[0]?.state === 'idle', 'shim saw the close');
      assert.equal(h.responder.connections.length, 1, 'the shim does not dial by itself');
      const ike = ikeMessage(80, 0x55);
      await send(h.daemon.ike, ike, h.shim.ports.ike);
      await waitFor(() => frames(h, 1).length === 1, 'frame on the new stream');
      const conn = h.responder.connections[1]!;
      assert.deepEqual(conn.firstBytes.subarray(0, 6), Buffer.from(IKETCP_PREFIX));
      assert.deepEqual(conn.events, [{ kind: 'prefix' }, { kind: 'ike', message: ike }]);
      assert.equal(h.shim.counters.reconnects, 1);
      assert.ok(h.logs.some((l) => l.event === 'upstream_closed'));
      assert.ok(h.logs.some((l) => l.event === 'upstream_connecting' && l.fields.reconnect === true));
      // A reset is survived the same way.
      h.responder.connections[1]!.socket.resetAndDestroy();
      await waitFor(() => h.shim.sessions()[0]?.state === 'idle', 'shim saw the reset');
      await send(h.daemon.ike, ike, h.shim.ports.ike);
      await waitFor(() => frames(h, 2).length === 1, 'frame on the third stream');
      assert.equal(h.shim.counters.reconnects, 2);
    } finally {
      await h.close();
    }
  });

  it('survives a refused connect, then holds dials off for retryHoldoffMs', async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const h = await harness({ upstream: { host: '127.0.0.1', port: deadPort }, retryHoldoffMs: 60_000 });
    try {
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => h.logs.some((l) => l.event === 'upstream_closed'), 'refused');
      assert.ok(h.logs.some((l) => l.event === 'upstream_error' && l.fields.code === 'ECONNREFUSED'));
      assert.equal(h.shim.counters.dropsByReason.upstream_closed, 1);
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => h.shim.counters.dropsByReason.upstream_holdoff === 1, 'holdoff');
      assert.equal(h.logs.filter((l) => l.event === 'upstream_connecting').length, 1);
    } finally {
      await h.close();
    }
  });

  it('bounds the queue while connecting (oldest dropped) and times the connect out', async () => {
    // A TCP server that never speaks TLS: the handshake hangs, so the stream stays "connecting".
    const silent: net.Socket[] = [];
    const server = net.createServer((s) => silent.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    const h = await harness({
      upstream: { host: '127.0.0.1', port, tls: { rejectUnauthorized: false } },
      maxQueuedBytes: 250,
      connectTimeoutMs: 300,
    });
    try {
      for (let i = 0; i < 3; i++) await send(h.daemon.ike, ikeMessage(100), h.shim.ports.ike); // 134 octets each
      await waitFor(() => h.shim.counters.datagramsIn === 3, 'datagrams');
      assert.equal(h.shim.counters.dropsByReason.queue_overflow, 2);
      assert.equal(h.shim.sessions()[0]?.queuedBytes, 134);
      await waitFor(() => h.logs.some((l) => l.event === 'upstream_connect_timeout'), 'timeout', 3000);
      await waitFor(() => h.shim.sessions()[0]?.state === 'idle', 'idle');
      assert.equal(h.shim.counters.dropsByReason.upstream_closed, 1);
    } finally {
      await h.close();
      for (const s of silent) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('TcpShim over TLS', () => {
  let dir = '';
  let key = Buffer.alloc(0);
  let cert = Buffer.alloc(0);
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tcp-shim-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-subj',
        '/CN=test',
        '-days',
        '1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    key = readFileSync(join(dir, 'key.pem'));
    cert = readFileSync(join(dir, 'cert.pem'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('verifies the responder, relays both ways, and writes the key log', async () => {
    const responder = await startResponder({ key, cert });
    const keylogFile = join(dir, 'keylog.txt');
    const h = await harness({}, responder, { ca: cert, servername: 'test', keylogFile });
    try {
      const ike = ikeMessage(200);
      await send(h.daemon.natT, withMarker(ike), h.shim.ports.natT);
      await waitFor(() => frames(h).length === 1, 'IKE frame over TLS');
      const conn = h.responder.connections[0]!;
      assert.deepEqual(conn.events, [{ kind: 'prefix' }, { kind: 'ike', message: ike }]);
      const reply = ikeMessage(30, 0x99);
      conn.socket.write(encodeIkeFrame(reply));
      await waitFor(() => h.daemon.receivedNatT.length === 1, 'reply over TLS');
      assert.deepEqual(h.daemon.receivedNatT[0], withMarker(reply));
    } finally {
      await h.close();
    }
    const keylog = readFileSync(keylogFile, 'utf8');
    assert.match(keylog, /^CLIENT_TRAFFIC_SECRET_0 [0-9a-f]+ [0-9a-f]+$/m);
  });

  it('refuses a responder whose certificate it does not trust, without crashing', async () => {
    const responder = await startResponder({ key, cert });
    const h = await harness({}, responder, {});
    try {
      await send(h.daemon.ike, ikeMessage(40), h.shim.ports.ike);
      await waitFor(() => h.logs.some((l) => l.event === 'upstream_closed'), 'closed');
      assert.ok(h.logs.some((l) => l.event === 'upstream_error'));
      assert.equal(
        h.responder.connections.every((c) => c.events.length === 0),
        true,
      );
    } finally {
      await h.close();
    }
  });
});

describe('TcpShim lifecycle', () => {
  it('rejects bad options and reports bind failures', async () => {
    assert.throws(
      () => new TcpShim({ listen: { address: 'localhost' }, upstream: { host: 'x' } }),
      /listen.address must be an IP address/,
    );
    assert.throws(
      () => new TcpShim({ listen: { address: '127.0.0.1', ikePort: 70000 }, upstream: { host: 'x' } }),
      /ikePort/,
    );
    const a = new TcpShim({
      listen: { address: '127.0.0.1', ikePort: 0, natTPort: 0 },
      upstream: { host: 'x' },
    });
    await a.start();
    const b = new TcpShim({
      listen: { address: '127.0.0.1', ikePort: 0, natTPort: a.ports.natT },
      upstream: { host: 'x' },
    });
    await assert.rejects(b.start(), /EADDRINUSE/);
    await a.close();
    await a.close(); // idempotent
  });
});
