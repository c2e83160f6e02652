/**
 * Abuse suite against the real listener: `ikegate up --no-tun` on loopback (high ports derived from
 * the test's pid), driven with hostile TCP streams and UDP datagrams. Each case checks the PROTOCOL.md
 * / RFC 9329 decision (stream closed vs frame dropped and stream kept), the counter on /metrics, and
 * that the process is still up (control /healthz 200, process not exited) afterwards.
 *
 * No namespaces and no root: everything is on 127.0.0.1. Edge defaults apply (the configuration has
 * no knobs for them, see docs/configuration.md): prefixTimeoutMs 10 s, maxConnectionsPerAddress 256,
 * maxFrameLength 65535 (so "Length > max" cannot be expressed on the wire), maxGarbageFrames 8.
 */
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import { Gateway, HOST, portsFrom, rssKiB, send, udp, until } from './lib/gateway.js';

const PORTS = portsFrom(20_000 + (process.pid % 1_900) * 5);
const PREFIX = Buffer.from('IKETCP', 'latin1');

// --- the ikegate process -------------------------------------------------------------------------

const gw = new Gateway(PORTS);
const control = (path: string) => gw.control(path);
const metric = (name: string, labels: Record<string, string> = {}) => gw.metric(name, labels);
const assertUp = () => gw.assertUp();

const drops = (layer: string, reason: string): Promise<number> =>
  metric('ikegate_drops_total', { layer, reason });
const closing = (reason: string): Promise<number> =>
  metric('ikegate_connection_events_total', { transport: 'tcp', event: 'closing', reason });
const tcpIkeIn = (): Promise<number> =>
  metric('ikegate_frames_total', { transport: 'tcp', kind: 'ike', direction: 'in' });

// --- wire helpers --------------------------------------------------------------------------------

interface Client {
  readonly socket: Socket;
  readonly received: Buffer[];
  readonly closed: Promise<void>;
  isClosed(): boolean;
}

function client(): Promise<Client> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: HOST, port: PORTS.tcp });
    const received: Buffer[] = [];
    let closed = false;
    const closedP = new Promise<void>((r) =>
      socket.once('close', () => {
        closed = true;
        r();
      }),
    );
    socket.on('data', (d: Buffer) => received.push(d));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve({ socket, received, closed: closedP, isClosed: () => closed }));
    socket.once('close', () => reject(new Error('closed before connect')));
  });
}

async function closedWithin(c: Client, timeoutMs: number): Promise<boolean> {
  await Promise.race([c.closed, sleep(timeoutMs)]);
  return c.isClosed();
}

function frame(body: Uint8Array): Buffer {
  const out = Buffer.alloc(2 + body.length);
  out.writeUInt16BE(2 + body.length, 0);
  out.set(body, 2);
  return out;
}

function nonZero(n: number): Buffer {
  const b = randomBytes(n);
  b[0] = b[0]! | 1;
  return b;
}

/** A well-formed IKE header (28 octets, no payloads): INFORMATIONAL request from the initiator. */
function ikeHeader(opts: { exchange?: number; statedLength?: number } = {}): Buffer {
  const h = Buffer.alloc(28);
  nonZero(8).copy(h, 0); // SPIi
  nonZero(8).copy(h, 8); // SPIr
  h[16] = 0; // next payload: none
  h[17] = 0x20; // version 2.0
  h[18] = opts.exchange ?? 37; // INFORMATIONAL
  h[19] = 0x08; // Initiator flag, request
  h.writeUInt32BE(1, 20); // Message ID
  h.writeUInt32BE(opts.statedLength ?? 28, 24);
  return h;
}

const MARKER = Buffer.alloc(4);
const ikeFrame = (h = ikeHeader()): Buffer => frame(Buffer.concat([MARKER, h]));
/** An ESP packet with a random SPI >= 256 (never one ikegate allocated) and some payload. */
function espPacket(): Buffer {
  const p = randomBytes(64);
  p.writeUInt32BE(0x4000_0000 + randomBytes(3).readUIntBE(0, 3), 0);
  return p;
}

// --- the suite -----------------------------------------------------------------------------------

describe('listener abuse against `ikegate up --no-tun` (RFC 9329, PROTOCOL.md)', { timeout: 240_000 }, () => {
  before(() => gw.up());

  after(async () => {
    // Diagnostics for the report: what the suite made the gateway count.
    try {
      const text = (await control('/metrics')).text;
      const lines = text
        .split('\n')
        .filter((l) => /^ikegate_(drops_total|connection_events_total|frames_total|connections)\b/.test(l));
      console.log(lines.join('\n'));
    } catch {
      // the process may be gone; afterEach has already reported that
    }
    await gw.stop();
  });

  afterEach(async () => {
    await assertUp();
  });

  it('wrong prefix "IKETCX" closes the stream (RFC 9329 §3/§4; PROTOCOL.md: wrong prefix → close), drop bad_prefix', async () => {
    const d0 = await drops('iketcp', 'bad_prefix');
    const c = await client();
    c.socket.write('IKETCX');
    assert.ok(await closedWithin(c, 5_000), 'the stream must be closed');
    assert.equal(Buffer.concat(c.received).length, 0, 'nothing is sent back');
    assert.equal(
      await until(
        () => drops('iketcp', 'bad_prefix'),
        (v) => v >= d0 + 1,
      ),
      d0 + 1,
    );
  });

  it('random 6-octet prefix closes the stream (RFC 9329 §3/§4), drop bad_prefix and closing{bad_prefix}', async () => {
    const d0 = await drops('iketcp', 'bad_prefix');
    const e0 = await closing('bad_prefix');
    const c = await client();
    const junk = randomBytes(6);
    junk[0] = junk[0] === 0x49 ? 0x4a : junk[0]!; // never the "I" of IKETCP
    c.socket.write(junk);
    assert.ok(await closedWithin(c, 5_000), 'the stream must be closed');
    assert.equal(
      await until(
        () => drops('iketcp', 'bad_prefix'),
        (v) => v >= d0 + 1,
      ),
      d0 + 1,
    );
    assert.equal(
      await until(
        () => closing('bad_prefix'),
        (v) => v >= e0 + 1,
      ),
      e0 + 1,
    );
  });

  for (const length of [0x0000, 0x0001]) {
    it(`Length 0x000${length} (< 2, cannot frame) closes the stream (RFC 9329 §3; PROTOCOL.md: unparseable stream → close), drop bad_length`, async () => {
      const d0 = await drops('iketcp', 'bad_length');
      const c = await client();
      c.socket.write(Buffer.concat([PREFIX, Buffer.from([0, length])]));
      assert.ok(await closedWithin(c, 5_000), 'the stream must be closed');
      assert.equal(
        await until(
          () => drops('iketcp', 'bad_length'),
          (v) => v >= d0 + 1,
        ),
        d0 + 1,
      );
    });
  }

  it('short frames (Length 2..5) are dropped and the stream kept; 8 in a row close it as garbage (RFC 9329 §3; PROTOCOL.md: repeated garbage → close)', async () => {
    const s0 = await drops('iketcp', 'short_frame');
    const g0 = await drops('iketcp', 'garbage');
    const i0 = await tcpIkeIn();
    const c = await client();
    // 7 short frames (one below maxGarbageFrames), then a well-formed IKE frame resets the run.
    const short = [frame(new Uint8Array(0)), frame(Buffer.from([1])), frame(Buffer.from([0, 0, 0]))];
    const seven = Array.from({ length: 7 }, (_, i) => short[i % short.length]!);
    c.socket.write(Buffer.concat([PREFIX, ...seven, ikeFrame()]));
    assert.equal(await until(tcpIkeIn, (v) => v >= i0 + 1), i0 + 1, 'the IKE frame after them is decoded');
    assert.equal(await drops('iketcp', 'short_frame'), s0 + 7);
    assert.equal(c.isClosed(), false, 'stream kept after 7 short frames');
    // Now 8 in a row: the 8th closes with 'garbage' (it is counted as the close, not as a drop).
    c.socket.write(Buffer.concat(Array.from({ length: 8 }, () => frame(new Uint8Array(0)))));
    assert.ok(await closedWithin(c, 5_000), 'the stream must be closed after maxGarbageFrames');
    assert.equal(
      await until(
        () => drops('iketcp', 'garbage'),
        (v) => v >= g0 + 1,
      ),
      g0 + 1,
    );
    assert.equal(await drops('iketcp', 'short_frame'), s0 + 7 + 7);
  });

  it('Length 0xFFFF (= the maximum) is accepted: a full 65535-octet frame is decoded as ESP and dropped unknown_spi, stream kept (RFC 9329 §3)', async () => {
    const e0 = await drops('esp', 'unknown_spi');
    const c = await client();
    const body = randomBytes(0xffff - 2);
    body.writeUInt32BE(0x5000_0001, 0);
    c.socket.write(Buffer.concat([PREFIX, frame(body)]));
    assert.equal(
      await until(
        () => drops('esp', 'unknown_spi'),
        (v) => v >= e0 + 1,
      ),
      e0 + 1,
    );
    assert.equal(c.isClosed(), false, 'stream kept');
    c.socket.destroy();
  });

  it('Length 0xFFFF with the body never completed: buffered (bounded by one frame), discarded as truncated when the peer closes (PROTOCOL.md: partial message on a broken connection → discard)', async () => {
    const t0 = await drops('iketcp', 'truncated');
    const i0 = await tcpIkeIn();
    const c = await client();
    c.socket.write(Buffer.concat([PREFIX, Buffer.from([0xff, 0xff]), randomBytes(1_000)]));
    // The stream is open and waiting for the rest: prove the earlier octets were consumed by a
    // round trip through the control API, then check nothing was decoded and it is still open.
    await assertUp();
    assert.equal(c.isClosed(), false, 'stream kept while the frame is incomplete');
    c.socket.end();
    assert.ok(await closedWithin(c, 5_000));
    assert.equal(
      await until(
        () => drops('iketcp', 'truncated'),
        (v) => v >= t0 + 1,
      ),
      t0 + 1,
    );
    assert.equal(await tcpIkeIn(), i0, 'the partial frame was never delivered');
  });

  it('0xFF NAT-keepalive frames on TCP are dropped silently and never count as garbage; the stream is kept (RFC 9329 §3)', async () => {
    const k0 = await drops('iketcp', 'keepalive');
    const i0 = await tcpIkeIn();
    const c = await client();
    const keepalives = Array.from({ length: 12 }, () => frame(Buffer.from([0xff])));
    c.socket.write(Buffer.concat([PREFIX, ...keepalives, ikeFrame()]));
    assert.equal(await until(tcpIkeIn, (v) => v >= i0 + 1), i0 + 1, 'the IKE frame after them is decoded');
    assert.equal(await drops('iketcp', 'keepalive'), k0 + 12);
    assert.equal(c.isClosed(), false, 'stream kept (12 > maxGarbageFrames keepalives did not close it)');
    assert.equal(Buffer.concat(c.received).length, 0, 'no keepalive (or anything) is sent back on TCP');
    c.socket.destroy();
  });

  it('IKE INFORMATIONAL with unknown non-zero SPIs over TCP is dropped unknown_spi, stream kept, nothing sent back (RFC 7296 §2.21.4; PROTOCOL.md)', async () => {
    const u0 = await drops('ike', 'unknown_spi');
    const c = await client();
    c.socket.write(Buffer.concat([PREFIX, ikeFrame(), ikeFrame(), ikeFrame()]));
    assert.equal(
      await until(
        () => drops('ike', 'unknown_spi'),
        (v) => v >= u0 + 3,
      ),
      u0 + 3,
    );
    await assertUp();
    assert.equal(c.isClosed(), false, 'stream kept');
    assert.equal(Buffer.concat(c.received).length, 0, 'nothing sent back');
    c.socket.destroy();
  });

  it('ESP with an unknown SPI over TCP is dropped (layer esp, unknown_spi) and the stream kept (PROTOCOL.md: a single unknown ESP SPI → drop, keep)', async () => {
    const u0 = await drops('esp', 'unknown_spi');
    const c = await client();
    c.socket.write(Buffer.concat([PREFIX, frame(espPacket()), frame(espPacket())]));
    assert.equal(
      await until(
        () => drops('esp', 'unknown_spi'),
        (v) => v >= u0 + 2,
      ),
      u0 + 2,
    );
    await assertUp();
    assert.equal(c.isClosed(), false, 'stream kept');
    assert.equal(Buffer.concat(c.received).length, 0, 'nothing sent back');
    c.socket.destroy();
  });

  it('unknown SPIs over UDP 500 and UDP 4500 (non-ESP marker) are dropped unknown_spi, nothing sent back; ESP unknown SPI on 4500 → esp unknown_spi (RFC 3948 §2.2, RFC 7296 §2.21.4)', async () => {
    const u0 = await drops('ike', 'unknown_spi');
    const e0 = await drops('esp', 'unknown_spi');
    const { socket, received } = await udp();
    try {
      await send(socket, ikeHeader(), PORTS.ike);
      await send(socket, Buffer.concat([MARKER, ikeHeader()]), PORTS.natT);
      await send(socket, espPacket(), PORTS.natT);
      assert.equal(
        await until(
          () => drops('ike', 'unknown_spi'),
          (v) => v >= u0 + 2,
        ),
        u0 + 2,
      );
      assert.equal(
        await until(
          () => drops('esp', 'unknown_spi'),
          (v) => v >= e0 + 1,
        ),
        e0 + 1,
      );
      await assertUp();
      assert.equal(received.length, 0, 'nothing sent back');
    } finally {
      socket.close();
    }
  });

  it('truncated IKE over TCP: < 28 octets → short_ike, header length ≠ frame → ike_length_mismatch; both dropped, stream kept (RFC 9329 §3, decoder rules)', async () => {
    const s0 = await drops('iketcp', 'short_ike');
    const m0 = await drops('iketcp', 'ike_length_mismatch');
    const i0 = await tcpIkeIn();
    const c = await client();
    c.socket.write(
      Buffer.concat([
        PREFIX,
        frame(Buffer.concat([MARKER, ikeHeader().subarray(0, 20)])),
        ikeFrame(ikeHeader({ statedLength: 100 })),
        ikeFrame(ikeHeader({ statedLength: 27 })),
        ikeFrame(),
      ]),
    );
    assert.equal(await until(tcpIkeIn, (v) => v >= i0 + 1), i0 + 1, 'a good frame after them is decoded');
    assert.equal(await drops('iketcp', 'short_ike'), s0 + 1);
    assert.equal(await drops('iketcp', 'ike_length_mismatch'), m0 + 2);
    assert.equal(c.isClosed(), false, 'stream kept');
    c.socket.destroy();
  });

  it('truncated IKE over UDP: 4500 marker + < 28 octets → udp short_ike; 500 < 28 octets → edge ike_short (RFC 3948 §2.2)', async () => {
    const s0 = await drops('udp', 'short_ike');
    const e0 = await drops('edge', 'ike_short');
    const { socket, received } = await udp();
    try {
      await send(socket, Buffer.concat([MARKER, ikeHeader().subarray(0, 20)]), PORTS.natT);
      await send(socket, ikeHeader().subarray(0, 20), PORTS.ike);
      assert.equal(
        await until(
          () => drops('udp', 'short_ike'),
          (v) => v >= s0 + 1,
        ),
        s0 + 1,
      );
      assert.equal(
        await until(
          () => drops('edge', 'ike_short'),
          (v) => v >= e0 + 1,
        ),
        e0 + 1,
      );
      assert.equal(received.length, 0);
    } finally {
      socket.close();
    }
  });

  it('slowloris: "IKE" then silence is closed after listen.limits.prefixTimeoutSeconds; 300 at once → per-address cap 256 refuses the rest (RFC 9329 §3; PROTOCOL.md)', async () => {
    assert.equal(
      await until(
        () => metric('ikegate_connections'),
        (v) => v === 0,
      ),
      0,
      'no connection left from earlier cases',
    );
    const t0 = await closing('prefix_timeout');
    const r0 = await metric('ikegate_connection_events_total', {
      event: 'refused',
      reason: 'connection_limit',
    });
    const clients: Socket[] = [];
    const closedFlags: boolean[] = [];
    const allClosed: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const s = connect({ host: HOST, port: PORTS.tcp });
      s.on('error', () => undefined);
      s.on('connect', () => s.write('IKE'));
      closedFlags.push(false);
      allClosed.push(
        new Promise<void>((r) =>
          s.once('close', () => {
            closedFlags[i] = true;
            r();
          }),
        ),
      );
      clients.push(s);
    }
    try {
      const refused = await until(
        () => metric('ikegate_connection_events_total', { event: 'refused', reason: 'connection_limit' }),
        (v) => v >= r0 + 44,
      );
      assert.equal(refused - r0, 300 - 256, 'exactly the connections past 256 are refused');
      assert.ok((await metric('ikegate_connections')) <= 256, 'never more than 256 from one address');
      await assertUp();
      // All accepted ones are closed by the prefix timer (listen.limits.prefixTimeoutSeconds 2); bounded wait 15 s.
      await Promise.race([Promise.all(allClosed), sleep(15_000)]);
      assert.equal(closedFlags.filter((f) => !f).length, 0, 'every slowloris stream was closed');
      assert.equal(
        await until(
          () => closing('prefix_timeout'),
          (v) => v >= t0 + 256,
        ),
        t0 + 256,
      );
      assert.equal(
        await until(
          () => metric('ikegate_connections'),
          (v) => v === 0,
        ),
        0,
      );
    } finally {
      for (const s of clients) s.destroy();
    }
  });

  it('TLS slowloris: 300 silent connections to the TLS port from one address → per-address cap refuses the extra ones (RFC 9329 §8; PROTOCOL.md)', async () => {
    const r0 = await metric('ikegate_connection_events_total', {
      transport: 'tls',
      event: 'refused',
      reason: 'connection_limit',
    });
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 300; i++) {
        const s = connect({ host: HOST, port: PORTS.tls });
        s.on('error', () => undefined);
        sockets.push(s);
      }
      const refused = await until(
        () =>
          metric('ikegate_connection_events_total', {
            transport: 'tls',
            event: 'refused',
            reason: 'connection_limit',
          }),
        (v) => v >= r0 + 44,
        3_000,
      );
      assert.ok(refused - r0 >= 44, `pending TLS handshakes past 256 must be refused (got ${refused - r0})`);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it('flood: 20,000 random frames over 50 TCP connections and 20,000 random UDP datagrams to 500/4500 — RSS settles below before + 64 MiB and connections go back to 0', async () => {
    const before = rssKiB(gw.pid);
    const FRAMES_PER_CONN = 400;
    const conns = await Promise.all(Array.from({ length: 50 }, () => client()));
    let serverClosed = 0;
    await Promise.all(
      conns.map(async (c) => {
        const parts: Buffer[] = [PREFIX];
        for (let i = 0; i < FRAMES_PER_CONN; i++) {
          const n = 1 + (randomBytes(2).readUInt16BE(0) % 1_400);
          const body = randomBytes(n);
          if (i % 10 === 0 && n >= 4) body.fill(0, 0, 4); // some behind a non-ESP marker
          parts.push(frame(body));
        }
        const all = Buffer.concat(parts);
        // Write in slices so the gateway sees many chunk boundaries (frames split across reads).
        for (let off = 0; off < all.length && !c.isClosed(); off += 16_384) {
          const slice = all.subarray(off, off + 16_384);
          if (!c.socket.write(slice))
            await Promise.race([new Promise((r) => c.socket.once('drain', r)), c.closed, sleep(5_000)]);
        }
        if (c.isClosed()) serverClosed++;
        c.socket.end();
        await closedWithin(c, 10_000);
      }),
    );
    const { socket } = await udp();
    try {
      for (let batch = 0; batch < 40; batch++) {
        const sends: Promise<void>[] = [];
        for (let i = 0; i < 500; i++) {
          const n = 1 + (randomBytes(2).readUInt16BE(0) % 1_400);
          sends.push(send(socket, randomBytes(n), i % 2 === 0 ? PORTS.ike : PORTS.natT));
        }
        await Promise.all(sends);
      }
    } finally {
      socket.close();
    }
    await assertUp();
    assert.equal(
      await until(
        () => metric('ikegate_connections'),
        (v) => v === 0,
      ),
      0,
      'every flood connection is gone',
    );
    const limit = before + 64 * 1024;
    let afterRss = rssKiB(gw.pid);
    for (let i = 0; i < 100 && afterRss >= limit; i++) {
      await sleep(100);
      afterRss = rssKiB(gw.pid);
    }
    console.log(
      `flood: RSS before ${before} KiB, after ${afterRss} KiB (delta ${afterRss - before} KiB); ` +
        `${serverClosed}/50 streams closed by the gateway during the flood`,
    );
    assert.ok(afterRss < limit, `RSS ${afterRss} KiB must settle below ${limit} KiB`);
  });

  it('property: random byte streams (with and without the prefix, in random chunks) never take the process down (RFC 9329 §3)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 2_048 }), { minLength: 1, maxLength: 8 }),
        async (withPrefix, chunks) => {
          const c = await client();
          if (withPrefix) c.socket.write(PREFIX);
          for (const chunk of chunks) if (!c.isClosed()) c.socket.write(chunk);
          c.socket.end();
          await closedWithin(c, 5_000);
          c.socket.destroy();
          assert.ok(gw.alive, 'ikegate exited');
          assert.equal((await control('/healthz')).status, 200);
        },
      ),
      { numRuns: 50 },
    );
    assert.equal(
      await until(
        () => metric('ikegate_connections'),
        (v) => v === 0,
      ),
      0,
    );
  });
});
