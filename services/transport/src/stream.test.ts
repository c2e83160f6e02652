import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as turn } from 'node:timers/promises';
import { createServer, connect as tcpConnect, type Socket } from 'node:net';
import { encodeEspFrame, encodeIkeFrame, IKETCP_PREFIX, IketcpDecoder } from '@ikegate/iketcp';
import { fuzzRuns, fuzzSeed, toHex } from '@ikegate/testkit';
import fc from 'fast-check';
import { IketcpStream, type IketcpStreamEvent, type IketcpStreamOptions } from './stream.js';
import { MemoryDuplex } from './testing/memory-duplex.js';

/** An event with its views copied out (they do not outlive the onEvent call). */
type Recorded =
  | { kind: 'ike'; hex: string }
  | { kind: 'esp'; hex: string; spi: number }
  | { kind: 'keepalive' }
  | { kind: 'drop'; reason: string; octets: number }
  | { kind: 'close'; reason: string; origin: string };

function record(e: IketcpStreamEvent): Recorded {
  switch (e.kind) {
    case 'ike':
      return { kind: 'ike', hex: toHex(e.message) };
    case 'esp':
      return { kind: 'esp', hex: toHex(e.packet), spi: e.spi };
    case 'keepalive':
      return { kind: 'keepalive' };
    case 'drop':
      return { kind: 'drop', reason: e.reason, octets: e.octets };
    case 'close':
      return { kind: 'close', reason: e.reason, origin: e.origin };
  }
}

interface Harness {
  readonly stream: IketcpStream;
  /** The other end of the connection: the test's peer. */
  readonly peer: MemoryDuplex;
  readonly events: Recorded[];
  /** What the peer has read. */
  readonly received: Buffer[];
  closed(): Promise<Recorded>;
}

function harness(options: Partial<IketcpStreamOptions> & Pick<IketcpStreamOptions, 'role'>): Harness {
  const [ours, peer] = MemoryDuplex.pair();
  const events: Recorded[] = [];
  const received: Buffer[] = [];
  peer.on('data', (c: Buffer) => received.push(c));
  peer.on('error', () => undefined);
  let onClose: ((e: Recorded) => void) | undefined;
  const stream = new IketcpStream(ours, {
    ...options,
    onEvent: (e) => {
      const r = record(e);
      events.push(r);
      if (r.kind === 'close') onClose?.(r);
    },
  });
  return {
    stream,
    peer,
    events,
    received,
    closed: () => {
      const done = events.find((e) => e.kind === 'close');
      if (done) return Promise.resolve(done);
      // Bounded: a stream that never closes fails the test instead of hanging it.
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no close event within 5 s')), 5_000);
        onClose = (e) => {
          clearTimeout(timer);
          resolve(e);
        };
      });
    },
  };
}

/** Lets queued I/O callbacks run; a fixed number of turns, so every wait is bounded. */
async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await turn();
}

/** An IKE message (28-octet header, SPIi non-zero, its Length right), then `body` octets of `fill`. */
const ike = (body = 0, fill = 0x11): Buffer => {
  const m = Buffer.alloc(28 + body, fill).fill(1, 0, 1);
  m.writeUInt32BE(m.length, 24);
  return m;
};

/** An ESP packet of `length` octets from its SPI on. */
const esp = (spi: number, length = 40): Buffer => {
  const p = Buffer.alloc(length, 0x22);
  p.writeUInt32BE(spi, 0);
  return p;
};

const cat = (...parts: Uint8Array[]): Buffer => Buffer.concat(parts);
const KEEPALIVE = Uint8Array.of(0, 3, 0xff);

describe('IketcpStream prefix (RFC 9329 §4)', () => {
  test('the originator writes the 6-octet prefix "IKETCP" first, then each frame (RFC 9329 §4, §3)', async () => {
    const h = harness({ role: 'originator' });
    assert.equal(h.stream.sendIke(ike(4)), 'sent');
    assert.equal(h.stream.sendEsp(esp(0x1000)), 'sent');
    await settle();
    assert.equal(
      toHex(cat(...h.received)),
      toHex(cat(IKETCP_PREFIX, encodeIkeFrame(ike(4)), encodeEspFrame(esp(0x1000)))),
    );
    assert.equal(h.stream.state, 'open');
  });

  test('the responder waits for the prefix, then delivers IKE without the marker and ESP with its SPI (RFC 9329 §3, §4)', async () => {
    const h = harness({ role: 'responder' });
    assert.equal(h.stream.state, 'prefix');
    h.peer.write(cat(IKETCP_PREFIX, encodeIkeFrame(ike(8)), encodeEspFrame(esp(0xc0ffee01))));
    await settle();
    assert.equal(h.stream.state, 'open');
    assert.deepEqual(h.events, [
      { kind: 'ike', hex: toHex(ike(8)) },
      { kind: 'esp', hex: toHex(esp(0xc0ffee01)), spi: 0xc0ffee01 },
    ]);
    assert.equal(toHex(cat(...h.received)), '', 'the responder sends no prefix');
  });

  test('a wrong prefix closes the stream once, reason bad_prefix, origin protocol (RFC 9329 §4)', async () => {
    const h = harness({ role: 'responder' });
    h.peer.write(Buffer.from('IKETCX'));
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'bad_prefix', origin: 'protocol' });
    await settle();
    assert.equal(h.peer.destroyed || h.peer.readableEnded, true, 'the peer sees the connection end');
    assert.equal(h.events.length, 1);
    assert.equal(h.stream.sendIke(ike()), 'closed');
  });

  test('a prefix that does not complete within prefixTimeoutMs closes the stream prefix_timeout (RFC 9329 §3, PROTOCOL.md)', async () => {
    const h = harness({ role: 'responder', prefixTimeoutMs: 5 });
    h.peer.write(Buffer.from('IKE'));
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'prefix_timeout', origin: 'local' });
    assert.equal(h.stream.closeReason, 'prefix_timeout');
  });

  test('the prefix timer stops once the prefix is complete (RFC 9329 §4)', async () => {
    const h = harness({ role: 'responder', prefixTimeoutMs: 5 });
    h.peer.write(IKETCP_PREFIX);
    await settle();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(h.stream.state, 'open');
    assert.deepEqual(h.events, []);
  });
});

describe('IketcpStream input (RFC 9329 §3)', () => {
  test('NAT-keepalive frames are reported as keepalive, never garbage, and nothing is sent back (RFC 9329 §3)', async () => {
    const h = harness({ role: 'responder', maxGarbageFrames: 2 });
    h.peer.write(cat(IKETCP_PREFIX, KEEPALIVE, KEEPALIVE, KEEPALIVE, encodeIkeFrame(ike())));
    await settle();
    assert.deepEqual(
      h.events.map((e) => e.kind),
      ['keepalive', 'keepalive', 'keepalive', 'ike'],
    );
    assert.equal(cat(...h.received).length, 0);
  });

  test('a malformed frame is a drop with its reason and Length; the stream stays open (RFC 9329 §3)', async () => {
    const h = harness({ role: 'originator' });
    h.peer.write(cat(Uint8Array.of(0, 4, 1, 2), encodeIkeFrame(ike())));
    await settle();
    assert.deepEqual(h.events, [
      { kind: 'drop', reason: 'short_frame', octets: 4 },
      { kind: 'ike', hex: toHex(ike()) },
    ]);
    assert.equal(h.stream.state, 'open');
  });

  test('a FIN inside a frame: the partial frame is dropped as truncated, then one close peer_closed (PROTOCOL.md: partial message → discard)', async () => {
    const h = harness({ role: 'originator' });
    h.peer.end(encodeIkeFrame(ike(20)).subarray(0, 30));
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'peer_closed', origin: 'peer' });
    assert.deepEqual(h.events, [
      { kind: 'drop', reason: 'truncated', octets: 28 },
      { kind: 'close', reason: 'peer_closed', origin: 'peer' },
    ]);
    await settle();
    assert.equal(h.peer.readableEnded, true, 'our FIN follows the peer’s');
  });

  test('a reset from the peer closes the stream with reason reset (RFC 9329 §6)', async () => {
    const h = harness({ role: 'originator' });
    h.peer.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' }));
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'reset', origin: 'peer' });
    assert.equal(h.events.length, 1);
  });

  test('events stop as soon as the owner closes the stream from its handler; its reason is the one reported (RFC 9329 §3)', async () => {
    const [ours, peer] = MemoryDuplex.pair();
    const seen: string[] = [];
    const stream: IketcpStream = new IketcpStream(ours, {
      role: 'originator',
      onEvent: (e) => {
        seen.push(e.kind === 'close' ? `close:${e.reason}` : e.kind);
        if (e.kind === 'ike') stream.close('auth_failed');
      },
    });
    peer.on('error', () => undefined);
    peer.write(cat(encodeIkeFrame(ike()), encodeIkeFrame(ike()), encodeEspFrame(esp(0x4000))));
    await settle();
    assert.deepEqual(seen, ['ike', 'close:auth_failed']);
    assert.equal(stream.closeReason, 'auth_failed');
  });

  test('a duplex already destroyed gives exactly one close (peer_closed) and no output', async () => {
    const [ours] = MemoryDuplex.pair();
    ours.destroy();
    const seen: IketcpStreamEvent[] = [];
    const stream = new IketcpStream(ours, { role: 'originator', onEvent: (e) => seen.push(e) });
    await settle();
    assert.deepEqual(seen, [{ kind: 'close', reason: 'peer_closed', origin: 'peer' }]);
    assert.equal(stream.sendEsp(esp(0x4000)), 'closed');
  });

  test('an idle stream closes with reason idle', async () => {
    const h = harness({ role: 'originator', idleTimeoutMs: 5 });
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'idle', origin: 'local' });
  });

  for (const [what, first, octets] of [
    [
      'a frame trickled one octet at a time (a slowloris)',
      Uint8Array.of(0xff, 0xff, 0x01),
      () => Uint8Array.of(0x22),
    ],
    ['keepalives (never sent on TCP, RFC 9329 §3)', new Uint8Array(0), () => Uint8Array.of(0x00, 0x03, 0xff)],
  ] as const)
    test(`only whole IKE messages and ESP packets keep a stream from idling out: ${what} do not (issue #9: nothing unauthenticated holds lasting state)`, async () => {
      const h = harness({ role: 'responder', idleTimeoutMs: 150 });
      h.peer.write(cat(Buffer.from('IKETCP'), first));
      // Octets every 50 ms, three times within each idle period, for longer than six of them.
      for (let i = 0; i < 20 && !h.events.some((e) => e.kind === 'close'); i++) {
        h.peer.write(octets());
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.deepEqual(
        h.events.find((e) => e.kind === 'close'),
        { kind: 'close', reason: 'idle', origin: 'local' },
        'closed while the octets still came',
      );
      if (first.length === 0)
        assert.ok(
          h.events.some((e) => e.kind === 'keepalive'),
          'keepalives were seen',
        );
    });

  test('whole frames keep a stream open past its idle timeout (RFC 9329 §3)', async () => {
    const h = harness({ role: 'responder', idleTimeoutMs: 150 });
    h.peer.write(Buffer.from('IKETCP'));
    for (let i = 0; i < 10; i++) {
      h.peer.write(encodeEspFrame(esp(0x4000)));
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(
      h.events.find((e) => e.kind === 'close'),
      undefined,
      'open after 500 ms of ESP every 50 ms',
    );
    h.stream.close('test');
  });
});

describe('IketcpStream output caps (RFC 9329 §3, issue #9)', () => {
  test('ESP past maxEspBuffer queued octets is not written (congested) and the stream stays open', async () => {
    const h = harness({ role: 'originator', maxEspBuffer: 2_000 });
    h.peer.pause(); // a peer that does not read: our writes pile up
    const results = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const r = h.stream.sendEsp(esp(0x4000, 1_000));
      results.set(r, (results.get(r) ?? 0) + 1);
    }
    await settle();
    assert.ok((results.get('congested') ?? 0) > 0, 'some ESP was refused');
    assert.ok(h.stream.queuedOctets <= 2_000, 'queued output stays within the cap');
    assert.equal(h.stream.state, 'open');
    assert.deepEqual(h.events, []);
  });

  test('IKE output past maxIkeBuffer closes a stream whose peer does not read: ike_output_overflow, memory bounded', async () => {
    const h = harness({ role: 'responder', maxIkeBuffer: 64 * 1024 });
    h.peer.write(IKETCP_PREFIX);
    h.peer.pause();
    await settle();
    let sent = 0;
    let result = 'sent';
    // The repeated-IKE_SA_INIT attack of issue #9: answers are produced, never read.
    for (let i = 0; i < 10_000 && result === 'sent'; i++) {
      result = h.stream.sendIke(ike(400));
      if (result === 'sent') sent++;
    }
    assert.equal(result, 'closed');
    assert.ok(sent < 300, `closed after ${sent} answers, not 10,000`);
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'ike_output_overflow', origin: 'local' });
  });

  test('IKE output that the peer reads is retired from the IKE cap (only unread IKE counts)', async () => {
    const h = harness({ role: 'originator', maxIkeBuffer: 4 * 1024 });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 5; i++) assert.equal(h.stream.sendIke(ike(500)), 'sent');
      await settle();
      assert.equal(h.stream.queuedIkeOctets, 0);
    }
    assert.equal(h.stream.state, 'open');
    assert.equal(cat(...h.received).length, 6 + 100 * (528 + 6));
  });

  test('sendIke with closeAfter writes the frame, then FIN, and reports that reason (RFC 9329 §6.3: close after a COOKIE)', async () => {
    const h = harness({ role: 'responder' });
    h.peer.write(IKETCP_PREFIX);
    await settle();
    const cookie = ike(12, 0x33);
    assert.equal(h.stream.sendIke(cookie, { closeAfter: 'cookie' }), 'sent');
    assert.equal(h.stream.sendIke(ike()), 'closed', 'nothing after the COOKIE');
    assert.deepEqual(await h.closed(), { kind: 'close', reason: 'cookie', origin: 'local' });
    await settle();
    assert.equal(toHex(cat(...h.received)), toHex(encodeIkeFrame(cookie)));
    assert.equal(h.peer.readableEnded, true, 'the peer read the COOKIE, then EOF');
  });

  test('after a FIN of ours the duplex is destroyed after lingerMs if the peer never closes its side', async () => {
    const [ours, peer] = MemoryDuplex.pair();
    peer.on('error', () => undefined);
    const stream = new IketcpStream(ours, { role: 'originator', lingerMs: 5, onEvent: () => undefined });
    stream.sendIke(ike(), { closeAfter: 'done' });
    // The linger timer is unref'd; this wait holds the process (and bounds the test).
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not destroyed within 5 s')), 5_000);
      ours.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    assert.equal(ours.destroyed, true);
  });
});

// --- properties -------------------------------------------------------------------------------

const frameArb = fc.oneof(
  fc.nat({ max: 200 }).map((n) => encodeIkeFrame(ike(n, n & 0xff))),
  fc
    .tuple(fc.integer({ min: 256, max: 0xffffffff }), fc.integer({ min: 8, max: 300 }))
    .map(([s, n]) => encodeEspFrame(esp(s, n))),
  fc.constant(KEEPALIVE),
  fc.uint8Array({ minLength: 0, maxLength: 6 }).map((b) => cat(Uint8Array.of(0, b.length + 2), b)),
);

/** `bytes` in chunks of `sizes` octets (cycled; 1 at least), each octet exactly once. */
function chunked(bytes: Uint8Array, sizes: readonly number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, sizes[i % Math.max(1, sizes.length)] ?? bytes.length);
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Feeds `chunks` to a responder stream through an in-memory connection, then FIN; the events. */
async function feed(chunks: readonly Uint8Array[]): Promise<Recorded[]> {
  const h = harness({ role: 'responder' });
  for (const c of chunks) h.peer.write(c);
  h.peer.end();
  await h.closed();
  return h.events;
}

describe('IketcpStream properties (STYLE.md rule 12)', () => {
  test('identical events for a stream fed whole, byte by byte, or in chunks of random sizes (RFC 9329 §3, §4)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(frameArb, { maxLength: 10 }),
        fc.nat({ max: 40 }),
        fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 20 }),
        async (frames, tail, sizes) => {
          // Sometimes a partial last frame (the peer's FIN cuts it): a truncated drop.
          const whole = cat(IKETCP_PREFIX, ...frames, encodeIkeFrame(ike(40)).subarray(0, tail));
          const expected = await feed([whole]);
          assert.deepEqual(await feed([...whole].map((b) => Uint8Array.of(b))), expected);
          assert.deepEqual(await feed(chunked(whole, sizes)), expected);
          assert.equal(expected.filter((e) => e.kind === 'close').length, 1, 'exactly one close');
        },
      ),
      { numRuns: Math.max(100, Math.floor(fuzzRuns() / 20)), seed: fuzzSeed() },
    );
  });
});

// --- output batching (issue #14) ----------------------------------------------------------------

/** What a peer's real RFC 9329 decoder makes of `bytes`: 'ike:<hex>' / 'esp:<hex>' in order. */
function decodeAll(bytes: Uint8Array, expectPrefix: boolean): string[] {
  const d = new IketcpDecoder({ expectPrefix });
  const out: string[] = [];
  d.push(bytes);
  for (let e = d.poll(); e !== undefined; e = d.poll()) {
    if (e.kind === 'ike') out.push(`ike:${toHex(e.message)}`);
    else if (e.kind === 'esp') out.push(`esp:${toHex(e.packet)}`);
    else if (e.kind !== 'prefix') out.push(e.kind);
  }
  return out;
}

/** An originator stream on one end of an in-memory connection; the peer end collects what it reads. */
function originator(options: Partial<IketcpStreamOptions> = {}) {
  const [ours, peer] = MemoryDuplex.pair(1 << 20);
  const received: Buffer[] = [];
  peer.on('data', (c: Buffer) => received.push(c));
  peer.on('error', () => undefined);
  const events: IketcpStreamEvent[] = [];
  const stream = new IketcpStream(ours, { role: 'originator', ...options, onEvent: (e) => events.push(e) });
  return { ours, peer, stream, events, wire: () => cat(...received) };
}

describe('IketcpStream output batching (issue #14)', () => {
  test('ESP frames sent in one turn go to the duplex as one write, intact and in order (RFC 9329 §3)', async () => {
    const o = originator();
    await settle();
    const before = o.ours.writeCalls; // the prefix
    const packets = Array.from({ length: 50 }, (_, i) => esp(0x1000 + i, 60 + i * 20));
    for (const p of packets) assert.equal(o.stream.sendEsp(p), 'sent');
    assert.equal(o.ours.writeCalls, before, 'nothing written before the end of the turn');
    assert.ok(
      o.stream.queuedOctets >= packets.reduce((n, p) => n + p.length + 2, 0),
      'gathered octets are queued',
    );
    await settle();
    assert.equal(o.ours.writeCalls - before, 1, 'one write for the turn');
    assert.deepEqual(
      decodeAll(o.wire(), true),
      packets.map((p) => `esp:${toHex(p)}`),
    );
  });

  test('the packet buffer may be reused as soon as sendEsp returns (the frame is copied)', async () => {
    const o = originator();
    const p = esp(0x5000, 100);
    const expected: string[] = [];
    for (let i = 0; i < 10; i++) {
      p[99] = i;
      expected.push(`esp:${toHex(p)}`);
      o.stream.sendEsp(p);
    }
    await settle();
    assert.deepEqual(decodeAll(o.wire(), true), expected);
  });

  test('two streams interleaving ESP in one turn: each makes one write (a writev), each peer reads its own frames in order', async () => {
    const a = originator();
    const b = originator();
    await settle();
    const [a0, b0] = [a.ours.writeCalls, b.ours.writeCalls];
    const sentA: string[] = [];
    const sentB: string[] = [];
    for (let i = 0; i < 20; i++) {
      const pa = esp(0xa000 + i, 50 + i);
      const pb = esp(0xb000 + i, 70 + i);
      a.stream.sendEsp(pa);
      b.stream.sendEsp(pb);
      sentA.push(`esp:${toHex(pa)}`);
      sentB.push(`esp:${toHex(pb)}`);
    }
    await settle();
    assert.equal(a.ours.writeCalls - a0, 1);
    assert.equal(b.ours.writeCalls - b0, 1);
    assert.deepEqual(decodeAll(a.wire(), true), sentA);
    assert.deepEqual(decodeAll(b.wire(), true), sentB);
  });

  test('IKE after ESP in the same turn keeps the call order on the wire; closeAfter writes the ESP before the FIN', async () => {
    const o = originator();
    const e1 = esp(0x7001, 80);
    const e2 = esp(0x7002, 90);
    o.stream.sendEsp(e1);
    o.stream.sendIke(ike(10));
    o.stream.sendEsp(e2);
    o.stream.sendIke(ike(12), { closeAfter: 'done' });
    await settle();
    assert.deepEqual(decodeAll(o.wire(), true), [
      `esp:${toHex(e1)}`,
      `ike:${toHex(ike(10))}`,
      `esp:${toHex(e2)}`,
      `ike:${toHex(ike(12))}`,
    ]);
    assert.equal(o.stream.state, 'closed');
  });

  test('ESP gathered in a turn counts against maxEspBuffer: congested past it, stream kept', async () => {
    const o = originator({ maxEspBuffer: 4_000 });
    await settle();
    const results: string[] = [];
    for (let i = 0; i < 10; i++) results.push(o.stream.sendEsp(esp(0x4000, 998))); // 1,000-octet frames
    assert.deepEqual(results, ['sent', 'sent', 'sent', 'sent', ...Array<string>(6).fill('congested')]);
    assert.ok(o.stream.queuedOctets <= 4_000);
    await settle();
    assert.equal(decodeAll(o.wire(), true).length, 4);
    assert.equal(o.stream.state, 'open');
  });

  test("a backed-up duplex gets the turn's ESP in a buffer of its own, not a slice pinning the shared chunk", async () => {
    const [ours, peer] = MemoryDuplex.pair(1024); // a small socket buffer: the peer's reads lag
    peer.on('error', () => undefined);
    peer.pause();
    const stream = new IketcpStream(ours, { role: 'originator', onEvent: () => undefined });
    await settle();
    const sent: string[] = [];
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 4; i++) {
        const p = esp(0x9000 + t * 4 + i, 600);
        assert.equal(stream.sendEsp(p), 'sent');
        sent.push(`esp:${toHex(p)}`);
      }
      await settle();
      assert.ok(ours.writableLength > 0, 'the duplex is backed up');
    }
    const received: Buffer[] = [];
    peer.on('data', (c: Buffer) => received.push(c));
    peer.resume();
    await settle(20);
    // The prefix, then the first turn as a slice of the shared chunk (the duplex was empty), then
    // the later turns, each in a buffer exactly its size.
    const [, first, ...later] = received;
    assert.ok(first!.buffer.byteLength > first!.length, 'the first turn is a slice of the shared chunk');
    assert.equal(later.length, 2);
    for (const c of later) assert.equal(c.buffer.byteLength, c.length, 'a later turn owns its buffer');
    assert.deepEqual(decodeAll(cat(...received), true), sent);
    stream.close('done');
  });

  test('a stream closed in the turn its ESP was gathered writes none of it', async () => {
    const o = originator();
    await settle();
    const before = o.ours.writeCalls;
    o.stream.sendEsp(esp(0x6000, 64));
    o.stream.close('gone');
    await settle();
    assert.equal(o.ours.writeCalls, before);
    assert.equal(o.stream.sendEsp(esp(0x6000, 64)), 'closed');
  });

  test('property: any frame sizes sent in any grouping into turns arrive intact and in order, one write per turn', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(
            fc.oneof(
              fc.record({ kind: fc.constant<'esp'>('esp'), n: fc.integer({ min: 8, max: 9_000 }) }),
              fc.record({ kind: fc.constant<'ike'>('ike'), n: fc.nat({ max: 300 }) }),
            ),
            { minLength: 1, maxLength: 40 },
          ),
          { minLength: 1, maxLength: 6 },
        ),
        async (turns) => {
          const o = originator({ maxEspBuffer: 1 << 30 });
          await settle();
          let writes = o.ours.writeCalls;
          const expected: string[] = [];
          let seq = 0;
          for (const items of turns) {
            let ikeWrites = 0;
            let espRun = false;
            let espRuns = 0;
            for (const it of items) {
              const b = it.kind === 'esp' ? esp(0x100 + seq++, it.n) : ike(it.n, seq++ & 0xff);
              if (it.kind === 'esp') {
                assert.equal(o.stream.sendEsp(b), 'sent');
                if (!espRun) espRuns++;
                espRun = true;
              } else {
                assert.equal(o.stream.sendIke(b), 'sent');
                ikeWrites++;
                espRun = false;
              }
              expected.push(`${it.kind}:${toHex(b)}`);
            }
            await settle();
            // Each IKE frame is its own write; the ESP between two of them is one write.
            assert.equal(o.ours.writeCalls - writes, ikeWrites + espRuns);
            writes = o.ours.writeCalls;
          }
          assert.deepEqual(decodeAll(o.wire(), true), expected);
          o.stream.close('done');
        },
      ),
      { numRuns: Math.max(50, Math.floor(fuzzRuns() / 40)), seed: fuzzSeed() },
    );
  });

  test('over a real loopback TCP socket: 2,000 frames across chunk boundaries arrive intact and in order at a responder stream', async () => {
    const got: string[] = [];
    const server = createServer({ noDelay: true });
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    const client = tcpConnect({ host: '127.0.0.1', port, noDelay: true });
    const sock = await accepted;
    try {
      const all = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${got.length} frames within 20 s`)), 20_000);
        new IketcpStream(sock, {
          role: 'responder',
          onEvent: (e) => {
            if (e.kind === 'esp') got.push(toHex(e.packet));
            if (got.length === 2_000) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      const stream = new IketcpStream(client, { role: 'originator', onEvent: () => undefined });
      const sent: string[] = [];
      for (let t = 0; t < 20; t++) {
        for (let i = 0; i < 100; i++) {
          const p = esp(0x10000 + t * 100 + i, 100 + (((t * 100 + i) * 37) % 1_400));
          assert.equal(stream.sendEsp(p), 'sent');
          sent.push(toHex(p));
        }
        await turn();
      }
      await all;
      assert.deepEqual(got, sent);
      stream.close('done');
    } finally {
      client.destroy();
      sock.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
