/**
 * The real binds and dialStream on loopback: what the in-memory fakes stand for, checked against
 * the kernel (STYLE.md rule 8: the fakes are only as good as their agreement with the real parts).
 */
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { encodeIkeFrame, IKETCP_PREFIX } from '@ikegate/iketcp';
import { tlsFailureReason } from '@ikegate/telemetry';
import { requirement } from '@ikegate/testkit';
import type { AcceptedStream, Endpoint, StreamAcceptor } from './binds.js';
import { dialStream } from './dial.js';
import { DialError } from './errors.js';
import { NodeTcpListener, NodeTlsListener, NodeUdpBind } from './node-binds.js';
import { IketcpStream, type IketcpStreamEvent } from './stream.js';
import { testCertificate } from './testing/certificate.js';

const HOST = '127.0.0.1';

/** Resolves when `check` holds, polling every 5 ms; rejects after `ms` (every wait is bounded). */
async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  for (let waited = 0; !check(); waited += 5) {
    if (waited >= ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function ike(body = 0): Uint8Array {
  const m = new Uint8Array(28 + body).fill(0x11);
  new DataView(m.buffer).setUint32(24, m.length);
  return m;
}

/** An acceptor that records the calls in order. */
function recorder(admit: (remote: Endpoint) => boolean = () => true) {
  const calls: string[] = [];
  const streams: AcceptedStream[] = [];
  const failures: { message: string; code: string | undefined }[] = [];
  const acceptor: StreamAcceptor = {
    admit: (remote) => {
      calls.push('admit');
      assert.equal(remote.address, HOST);
      return admit(remote);
    },
    accepted: (s) => {
      calls.push('accepted');
      streams.push(s);
    },
    handshakeFailed: (message, code) => {
      calls.push('handshakeFailed');
      failures.push({ message, code });
    },
    released: () => calls.push('released'),
  };
  return { calls, streams, failures, acceptor };
}

describe('NodeUdpBind (RFC 7296 §2.23, RFC 3948)', () => {
  test('receives a datagram with the sender’s address and port, and sends one back to it', async () => {
    const bind = new NodeUdpBind(HOST, 0);
    const got: { bytes: string; address: string; port: number }[] = [];
    const local = await bind.open((d, address, port) =>
      got.push({ bytes: Buffer.from(d).toString('hex'), address, port }),
    );
    assert.equal(local.address, HOST);
    assert.ok(local.port > 0);
    const peer = createSocket('udp4');
    const back: Buffer[] = [];
    peer.on('message', (m) => back.push(m));
    await new Promise<void>((resolve) => peer.bind(0, HOST, () => resolve()));
    try {
      peer.send(Uint8Array.of(1, 2, 3), local.port, HOST);
      await until(() => got.length === 1, 'datagram in');
      assert.deepEqual(got[0], { bytes: '010203', address: HOST, port: peer.address().port });
      bind.send(Uint8Array.of(9), HOST, peer.address().port);
      await until(() => back.length === 1, 'datagram out');
      assert.deepEqual([...back[0]!], [9]);
    } finally {
      peer.close();
      await bind.close();
      await bind.close(); // idempotent
    }
    bind.send(Uint8Array.of(9), HOST, 9); // after close: a no-op, not a throw
  });

  for (const path of ['dgram', 'batched'] as const)
    test(`send() to what no datagram can reach (port 0) drops it and never throws into the caller's handler: ${path} path`, async (t) => {
      if (path === 'batched' && new NodeUdpBind(HOST, 0).receivePath !== 'batched')
        return t.skip(requirement('the native UDP addon (npm ci builds it)', t));
      const bind = new NodeUdpBind(HOST, 0, undefined, path);
      await bind.open(() => undefined);
      try {
        assert.doesNotThrow(() => bind.send(Uint8Array.of(1), HOST, 0));
      } finally {
        await bind.close();
      }
    });
});

describe('NodeTcpListener and dialStream (RFC 9329 over TCP)', () => {
  test('admit, accepted, released in that order; an IketcpStream pair carries IKE both ways with the prefix first (RFC 9329 §4)', async () => {
    const r = recorder();
    const listener = new NodeTcpListener(HOST, 0);
    const local = await listener.listen(r.acceptor);
    try {
      const socket = await dialStream({ transport: 'tcp', host: HOST, port: local.port, timeoutMs: 5_000 });
      const atClient: IketcpStreamEvent['kind'][] = [];
      const client = new IketcpStream(socket, { role: 'originator', onEvent: (e) => atClient.push(e.kind) });
      await until(() => r.streams.length === 1, 'accepted');
      const atServer: string[] = [];
      const server = new IketcpStream(r.streams[0]!.duplex, {
        role: 'responder',
        onEvent: (e) => atServer.push(e.kind === 'close' ? `close:${e.reason}` : e.kind),
      });
      assert.equal(r.streams[0]!.remote.port, socket.localPort);
      assert.equal(client.sendIke(ike(10)), 'sent');
      await until(() => atServer.length === 1, 'IKE at the responder');
      assert.equal(server.sendIke(ike(20)), 'sent');
      await until(() => atClient.length === 1, 'IKE at the originator');
      client.close('test_done');
      await until(() => r.calls.includes('released'), 'released');
      assert.deepEqual(r.calls, ['admit', 'accepted', 'released']);
      await until(() => atServer.length === 2, 'close at the responder');
      assert.deepEqual(atServer, ['ike', 'close:peer_closed']);
    } finally {
      await listener.close();
    }
  });

  test('a connection refused by admit is closed at once and never accepted', async () => {
    const r = recorder(() => false);
    const listener = new NodeTcpListener(HOST, 0);
    const local = await listener.listen(r.acceptor);
    try {
      const socket = await dialStream({ transport: 'tcp', host: HOST, port: local.port, timeoutMs: 5_000 });
      socket.on('error', () => undefined);
      await new Promise<void>((resolve) => socket.once('close', () => resolve()));
      assert.deepEqual(r.calls, ['admit']);
    } finally {
      await listener.close();
    }
  });

  test('dialStream rejects with DialError: refused (the OS code kept), aborted', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, HOST, () => resolve()));
    const dead = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await assert.rejects(dialStream({ transport: 'tcp', host: HOST, port: dead, timeoutMs: 5_000 }), (e) => {
      assert.ok(e instanceof DialError);
      assert.equal(e.code, 'IKEGATE_ERR_TRANSPORT_DIAL_FAILED');
      assert.equal(e.reason, 'ECONNREFUSED');
      return true;
    });
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(
      dialStream({ transport: 'tcp', host: HOST, port: dead, timeoutMs: 5_000, signal: ac.signal }),
      {
        code: 'IKEGATE_ERR_TRANSPORT_DIAL_ABORTED',
      },
    );
  });
});

describe('NodeTlsListener and dialStream over TLS (RFC 9329 §8)', () => {
  const { certificate: cert, key } = testCertificate('gw.test');
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'ikegate-transport-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** A TLS listener with the test certificate, a 5 s handshake timeout and `keylogFile`. */
  const tlsListener = (keylogFile?: string) =>
    new NodeTlsListener({
      address: HOST,
      port: 0,
      certificate: cert,
      key,
      handshakeTimeoutMs: 5_000,
      ...(keylogFile ? { keylogFile } : {}),
    });

  test('a verified TLS stream carries the prefix and frames; both sides write the key log; admit counts from the TCP accept', async () => {
    const r = recorder();
    const keylogFile = join(dir, 'server-keys.txt');
    const listener = tlsListener(keylogFile);
    const local = await listener.listen(r.acceptor);
    const clientKeys: string[] = [];
    try {
      const socket = await dialStream({
        transport: 'tls',
        host: HOST,
        port: local.port,
        timeoutMs: 5_000,
        tls: { ca: cert, servername: 'gw.test', onKeylog: (line) => clientKeys.push(line.toString()) },
      });
      await until(() => r.streams.length === 1, 'accepted');
      assert.equal(r.streams[0]!.tlsVersion, 'TLSv1.3', 'the agreed version is reported');
      const bytes: Buffer[] = [];
      r.streams[0]!.duplex.on('data', (c: Buffer) => bytes.push(c));
      const client = new IketcpStream(socket, { role: 'originator', onEvent: () => undefined });
      client.sendIke(ike());
      await until(() => Buffer.concat(bytes).length === 6 + 34, 'prefix and frame');
      assert.deepEqual(Buffer.concat(bytes), Buffer.concat([IKETCP_PREFIX, encodeIkeFrame(ike())]));
      assert.ok(clientKeys.some((l) => l.startsWith('CLIENT_TRAFFIC_SECRET_0 ')));
      assert.match(readFileSync(keylogFile, 'utf8'), /^SERVER_TRAFFIC_SECRET_0 /m);
      client.close('test_done');
      await until(() => r.calls.includes('released'), 'released');
      assert.deepEqual(r.calls, ['admit', 'accepted', 'released']);
    } finally {
      await listener.close();
    }
  });

  test('a TLS connection refused at its TCP accept (a connection cap) is only that: no handshakeFailed (it would count a TLS failure and a drop too)', async () => {
    const r = recorder(() => false);
    const listener = tlsListener();
    const local = await listener.listen(r.acceptor);
    try {
      await assert.rejects(dialStream({ transport: 'tls', host: HOST, port: local.port, timeoutMs: 5_000 }));
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual(r.calls, ['admit']);
    } finally {
      await listener.close();
    }
  });

  test('an untrusted certificate fails the dial (DialError with the TLS code); the listener reports handshakeFailed, then released', async () => {
    const r = recorder();
    const listener = tlsListener();
    const local = await listener.listen(r.acceptor);
    try {
      await assert.rejects(
        dialStream({ transport: 'tls', host: HOST, port: local.port, timeoutMs: 5_000 }),
        (e) =>
          e instanceof DialError && e.code === 'IKEGATE_ERR_TRANSPORT_DIAL_FAILED' && e.reason !== 'timeout',
      );
      await until(() => r.calls.includes('released') && r.calls.includes('handshakeFailed'), 'both');
      assert.deepEqual(r.calls[0], 'admit');
      assert.deepEqual([...r.calls].sort(), ['admit', 'handshakeFailed', 'released']);
      // The client's alert (unknown CA) or its reset: a bounded reason either way, never `other`.
      const reason = tlsFailureReason(r.failures[0]!.code, r.failures[0]!.message);
      assert.ok(['protocol', 'reset'].includes(reason), JSON.stringify({ reason, ...r.failures[0] }));
    } finally {
      await listener.close();
    }
  });

  test('a TLS peer that never answers the handshake: dialStream times out (DialError timeout)', async () => {
    const silent: Socket[] = [];
    const server = createServer((s) => silent.push(s));
    await new Promise<void>((resolve) => server.listen(0, HOST, () => resolve()));
    try {
      await assert.rejects(
        dialStream({
          transport: 'tls',
          host: HOST,
          port: (server.address() as AddressInfo).port,
          timeoutMs: 50,
          tls: { rejectUnauthorized: false },
        }),
        (e) =>
          e instanceof DialError && e.code === 'IKEGATE_ERR_TRANSPORT_DIAL_TIMEOUT' && e.reason === 'timeout',
      );
    } finally {
      for (const s of silent) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
