import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { fuzzRuns, fuzzSeed } from '@ikegate/testkit';
import fc from 'fast-check';
import { IKETCP_PREFIX, MAX_FRAME_LENGTH } from './constants.js';
import { type DecoderOptions, IketcpDecoder, type IketcpEvent } from './decoder.js';
import { encodeEspFrame, encodeIkeFrame } from './encoder.js';
import { LocalUsageError } from './errors.js';

type Plain = {
  kind: string;
  reason?: string;
  bytes?: string;
  spi?: number;
  length?: number;
  discarded?: number;
};

/** Feeds chunks, draining after each; copies views so events can be compared later. */
function run(chunks: readonly Uint8Array[], options: DecoderOptions, end = false): Plain[] {
  const d = new IketcpDecoder(options);
  const limit = (options.maxFrameLength ?? MAX_FRAME_LENGTH) - 2;
  const out: Plain[] = [];
  const drain = () => {
    for (let ev = d.poll(); ev !== undefined; ev = d.poll()) {
      out.push(plain(ev));
      assert.ok(d.bufferedBytes <= limit);
    }
    // The partial tail is largest when the chunk is used up, so check here too.
    assert.ok(d.bufferedBytes <= limit);
  };
  for (const c of chunks) {
    if (d.state === 'closed') break;
    d.push(c);
    drain();
  }
  if (end && d.state !== 'closed') {
    d.end();
    drain();
  }
  return out;
}

function plain(ev: IketcpEvent): Plain {
  switch (ev.kind) {
    case 'ike':
      return { kind: 'ike', bytes: Buffer.from(ev.message).toString('hex') };
    case 'esp':
      return { kind: 'esp', bytes: Buffer.from(ev.packet).toString('hex'), spi: ev.spi };
    case 'drop':
      return { kind: 'drop', reason: ev.reason, length: ev.length };
    case 'close':
      return { kind: 'close', reason: ev.reason };
    case 'end':
      return { kind: 'end', discarded: ev.discarded };
    case 'prefix':
      return { kind: 'prefix' };
    case 'keepalive':
      return { kind: 'keepalive' };
  }
}

/** A syntactically plausible IKE message: 28-octet header whose Length field is right. */
function ike(bodyLength = 0, fill = 0x11): Uint8Array {
  const m = new Uint8Array(28 + bodyLength).fill(fill);
  m[0] = 0x01; // non-zero initiator SPI
  new DataView(m.buffer).setUint32(24, m.length);
  return m;
}

function esp(spi: number, length = 40): Uint8Array {
  const p = new Uint8Array(length).fill(0x22);
  new DataView(p.buffer).setUint32(0, spi);
  return p;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  return Uint8Array.from(Buffer.concat(parts));
}

const responder: DecoderOptions = { expectPrefix: true };

describe('RFC 9329 stream prefix (§4)', () => {
  test('the responder accepts a stream that starts with "IKETCP" and reports it once', () => {
    const ev = run([cat(IKETCP_PREFIX, encodeIkeFrame(ike()))], responder);
    assert.deepEqual(
      ev.map((e) => e.kind),
      ['prefix', 'ike'],
    );
  });

  test('the responder closes a stream whose prefix is wrong, at the first wrong octet', () => {
    assert.deepEqual(run([Uint8Array.from(Buffer.from('IKEv2 hello'))], responder), [
      { kind: 'close', reason: 'bad_prefix' },
    ]);
    // byte by byte: "IKE" is fine so far, "X" is not
    const bytes = [...Buffer.from('IKEX')].map((b) => Uint8Array.of(b));
    assert.deepEqual(run(bytes, responder), [{ kind: 'close', reason: 'bad_prefix' }]);
  });

  test('a stream that sends frames without the prefix is closed by the responder (§4: the prefix is mandatory)', () => {
    assert.deepEqual(run([encodeIkeFrame(ike())], responder), [{ kind: 'close', reason: 'bad_prefix' }]);
  });

  test('a slowloris prefix holds at most 6 octets and is discarded at end of stream', () => {
    const d = new IketcpDecoder(responder);
    d.push(Uint8Array.of(0x49));
    assert.equal(d.poll(), undefined);
    d.push(Uint8Array.of(0x4b));
    assert.equal(d.poll(), undefined);
    d.end();
    assert.deepEqual(d.poll(), { kind: 'end', discarded: 2 });
    assert.equal(d.poll(), undefined);
  });

  test('the originator side expects no prefix from the responder (§4)', () => {
    assert.deepEqual(
      run([encodeIkeFrame(ike())], { expectPrefix: false }).map((e) => e.kind),
      ['ike'],
    );
  });
});

describe('RFC 9329 framing (§3)', () => {
  const orig: DecoderOptions = { expectPrefix: false };

  test('a zero Non-ESP Marker introduces an IKE message, delivered without the marker', () => {
    const m = ike(12);
    assert.deepEqual(run([encodeIkeFrame(m)], orig), [
      { kind: 'ike', bytes: Buffer.from(m).toString('hex') },
    ]);
  });

  test('a non-zero first word is an ESP SPI; the packet is delivered whole with its SPI', () => {
    const p = esp(0xc0ffee01);
    assert.deepEqual(run([encodeEspFrame(p)], orig), [
      { kind: 'esp', bytes: Buffer.from(p).toString('hex'), spi: 0xc0ffee01 },
    ]);
  });

  test('a single 0xFF octet is a NAT-keepalive: its own event for a silent drop, stream kept (RFC 9329 §3, RFC 3948 §2.3)', () => {
    const ev = run([cat(Uint8Array.of(0, 3, 0xff), encodeIkeFrame(ike()))], orig);
    assert.deepEqual(
      ev.map((e) => `${e.kind}:${e.reason ?? ''}`),
      ['keepalive:', 'ike:'],
    );
  });

  test('keepalives never count as garbage, however many arrive (RFC 9329 §3)', () => {
    const many = Array.from({ length: 100 }, () => Uint8Array.of(0, 3, 0xff));
    const ev = run([cat(...many)], { expectPrefix: false, maxGarbageFrames: 2 });
    assert.equal(ev.length, 100);
    assert.ok(ev.every((e) => e.kind === 'keepalive'));
  });

  test('frames too short for IKE or ESP are dropped and the stream kept, as Linux espintcp does', () => {
    const ev = run(
      [
        cat(
          Uint8Array.of(0, 2),
          Uint8Array.of(0, 4, 1, 2),
          Uint8Array.of(0, 10, 0, 0, 0, 0, 1, 2, 3, 4),
          Uint8Array.of(0, 7, 1, 2, 3, 4, 5),
          encodeIkeFrame(ike()),
        ),
      ],
      orig,
    );
    assert.deepEqual(
      ev.map((e) => `${e.kind}:${e.reason ?? ''}`),
      ['drop:short_frame', 'drop:short_frame', 'drop:short_ike', 'drop:short_esp', 'ike:'],
    );
  });

  test('an IKE message whose header Length disagrees with the frame is dropped (RFC 7296 §3.1)', () => {
    const m = ike(8);
    new DataView(m.buffer).setUint32(24, 999);
    assert.deepEqual(run([encodeIkeFrame(m)], orig), [
      { kind: 'drop', reason: 'ike_length_mismatch', length: 42 },
    ]);
  });

  test('repeated garbage closes the stream (PROTOCOL.md: "repeated garbage: close")', () => {
    const junk = Uint8Array.of(0, 4, 1, 2);
    const ev = run([cat(junk, junk, junk, junk)], { expectPrefix: false, maxGarbageFrames: 3 });
    assert.deepEqual(
      ev.map((e) => `${e.kind}:${e.reason}`),
      ['drop:short_frame', 'drop:short_frame', 'close:garbage'],
    );
  });

  test('a good frame resets the garbage run (RFC 9329 §3)', () => {
    const junk = Uint8Array.of(0, 4, 1, 2);
    const ev = run([cat(junk, junk, encodeIkeFrame(ike()), junk, junk)], {
      expectPrefix: false,
      maxGarbageFrames: 3,
    });
    assert.ok(ev.every((e) => e.kind !== 'close'));
  });

  test('a Length below 2 cannot frame anything: the stream is closed', () => {
    assert.deepEqual(run([Uint8Array.of(0, 1, 0xaa)], orig), [{ kind: 'close', reason: 'bad_length' }]);
    assert.deepEqual(run([Uint8Array.of(0, 0)], orig), [{ kind: 'close', reason: 'bad_length' }]);
  });

  test('a Length above the configured limit closes the stream before anything is buffered', () => {
    const d = new IketcpDecoder({ expectPrefix: false, maxFrameLength: 2000 });
    d.push(Uint8Array.of(0xff, 0xff, 1, 2, 3));
    assert.deepEqual(d.poll(), { kind: 'close', reason: 'frame_too_large' });
    assert.equal(d.bufferedBytes, 0);
    assert.equal(d.poll(), undefined);
  });

  test('a partial frame at end of stream is discarded and reported with its size (§6 broken connection)', () => {
    const f = encodeIkeFrame(ike(20));
    assert.deepEqual(run([f.subarray(0, 30)], orig, true), [{ kind: 'end', discarded: 28 }]);
  });

  test('nothing is decoded after a close decision, even if more octets arrive in the same chunk', () => {
    const ev = run([cat(Uint8Array.of(0, 1), encodeIkeFrame(ike()))], orig);
    assert.deepEqual(ev, [{ kind: 'close', reason: 'bad_length' }]);
  });

  test('push() with events still pending is a usage error: poll until undefined (RFC 9329 §3 framing API)', () => {
    const d = new IketcpDecoder(orig);
    d.push(cat(encodeIkeFrame(ike()), encodeIkeFrame(ike())));
    d.poll();
    assert.throws(() => d.push(new Uint8Array(1)), LocalUsageError);
  });

  test('a frame split across chunks is reassembled in one bounded buffer, reused for the next split frame (RFC 9329 §3)', () => {
    const d = new IketcpDecoder({ expectPrefix: false, maxFrameLength: 1000 });
    const a = esp(0xaaaa0001, 500);
    const b = esp(0xbbbb0001, 400);
    const stream = cat(encodeEspFrame(a), encodeEspFrame(b));
    const events: IketcpEvent[] = [];
    for (const part of [stream.subarray(0, 100), stream.subarray(100, 600), stream.subarray(600)]) {
      d.push(part);
      assert.ok(d.bufferedBytes <= 998);
      for (let ev = d.poll(); ev !== undefined; ev = d.poll()) {
        // Valid until the next poll: compare now, then keep the view to show it is reused.
        if (ev.kind === 'esp') assert.deepEqual(ev.packet, ev.spi === 0xaaaa0001 ? a : b);
        events.push(ev);
      }
    }
    assert.equal(events.length, 2);
    const [first, second] = events;
    assert.ok(first?.kind === 'esp' && second?.kind === 'esp');
    assert.equal(first.packet.buffer, second.packet.buffer, 'one tail buffer serves both split frames');
    assert.ok(first.packet.buffer.byteLength <= 998);
    assert.equal(d.bufferedBytes, 0);
  });

  test('a frame whose stated length has not arrived costs the octets that did, not the stated length: a peer that states 65,535 octets and trickles them holds ~2 KiB, not 64 KiB per stream (RFC 9329 §3; STYLE: no lasting state from unauthenticated input)', () => {
    const d = new IketcpDecoder({ expectPrefix: false, maxFrameLength: 65_535 });
    d.push(Uint8Array.of(0xff, 0xff, 0x01));
    assert.equal(d.poll(), undefined);
    assert.equal(d.bufferedBytes, 1);
    assert.ok(d.bufferCapacity <= 2048, `capacity ${d.bufferCapacity} for one octet`);
    let sent = 1;
    for (let i = 0; i < 40; i++) {
      d.push(new Uint8Array(250).fill(0x22));
      sent += 250;
      assert.equal(d.poll(), undefined);
      assert.ok(
        d.bufferCapacity <= Math.max(2048, 2 * sent),
        `capacity ${d.bufferCapacity} for ${sent} octets`,
      );
    }
    // The rest arrives: one ESP packet of 65,533 octets, whole.
    const rest = new Uint8Array(65_533 - sent).fill(0x22);
    d.push(rest);
    const ev = d.poll();
    assert.ok(ev?.kind === 'esp');
    assert.equal(ev.packet.length, 65_533);
    assert.equal(ev.packet[0], 0x01);
    assert.ok(ev.packet.subarray(1).every((b) => b === 0x22));
    assert.ok(d.bufferCapacity <= 65_533);
  });

  test('a frame inside one chunk is a view of that chunk, not a copy (RFC 9329 §3)', () => {
    const d = new IketcpDecoder(orig);
    const chunk = encodeEspFrame(esp(0x12345678, 64));
    d.push(chunk);
    const ev = d.poll();
    assert.ok(ev?.kind === 'esp');
    assert.equal(ev.packet.buffer, chunk.buffer);
    assert.equal(ev.packet.byteOffset, chunk.byteOffset + 2);
  });

  test('counters count bytes, IKE and ESP frames, drops and keepalives (RFC 9329 §3)', () => {
    const d = new IketcpDecoder(orig);
    d.push(cat(encodeIkeFrame(ike()), encodeEspFrame(esp(7000)), Uint8Array.of(0, 3, 0xff)));
    while (d.poll() !== undefined) {
      /* drain */
    }
    assert.deepEqual(d.counters, {
      bytes: 34 + 42 + 3,
      ikeFrames: 1,
      espFrames: 1,
      droppedFrames: 0,
      keepalives: 1,
    });
  });
});

// --- properties -----------------------------------------------------------------------------

const frameArb = fc.oneof(
  fc.nat({ max: 300 }).map((n) => encodeIkeFrame(ike(n, n & 0xff))),
  fc
    .tuple(fc.integer({ min: 256, max: 0xffffffff }), fc.integer({ min: 8, max: 400 }))
    .map(([s, n]) => encodeEspFrame(esp(s, n))),
  fc.constant(Uint8Array.of(0, 3, 0xff)),
  fc.uint8Array({ minLength: 0, maxLength: 6 }).map((b) => cat(Uint8Array.of(0, b.length + 2), b)),
);
const streamArb = fc.array(frameArb, { maxLength: 12 }).map((frames) => cat(IKETCP_PREFIX, ...frames));

function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(bytes.subarray(prev, p));
    prev = p;
  }
  out.push(bytes.subarray(prev));
  return out;
}

describe('stream decoder properties (STYLE.md rule 12)', () => {
  const runs = fuzzRuns();

  test('identical events for a stream fed whole, byte by byte, and split at random points (RFC 9329 §3, §4)', () => {
    fc.assert(
      fc.property(streamArb, fc.array(fc.nat(), { maxLength: 20 }), (stream, cuts) => {
        const whole = run([stream], responder, true);
        const bytewise = run(
          [...stream].map((b) => Uint8Array.of(b)),
          responder,
          true,
        );
        const split = run(splitAt(stream, cuts), responder, true);
        assert.deepEqual(bytewise, whole);
        assert.deepEqual(split, whole);
      }),
      { numRuns: Math.max(1000, Math.floor(runs / 10)), seed: fuzzSeed() },
    );
  });

  test('encode then decode returns every IKE message and ESP packet unchanged, in order (RFC 9329 §3.1, §3.2)', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            fc.nat({ max: 200 }).map((n) => ({ kind: 'ike' as const, bytes: ike(n, 7) })),
            fc
              .integer({ min: 8, max: 300 })
              .map((n) => ({ kind: 'esp' as const, bytes: esp(0x1000 + n, n) })),
          ),
          { maxLength: 10 },
        ),
        (items) => {
          const stream = cat(
            IKETCP_PREFIX,
            ...items.map((i) => (i.kind === 'ike' ? encodeIkeFrame(i.bytes) : encodeEspFrame(i.bytes))),
          );
          const ev = run([stream], responder).filter((e) => e.kind !== 'prefix');
          assert.deepEqual(
            ev.map((e) => `${e.kind}:${e.bytes}`),
            items.map((i) => `${i.kind}:${Buffer.from(i.bytes).toString('hex')}`),
          );
        },
      ),
      { numRuns: Math.max(1000, Math.floor(runs / 10)), seed: fuzzSeed() },
    );
  });

  test('fuzz: random octets give only events, never a throw, and never buffer more than the frame limit (RFC 9329 §3)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.oneof(fc.integer({ min: 3, max: 600 }), fc.integer({ min: 3, max: 0xffff })),
        fc.array(fc.uint8Array({ maxLength: 256 }), { maxLength: 8 }),
        (expectPrefix, maxFrameLength, chunks) => {
          const ev = run(chunks, { expectPrefix, maxFrameLength, maxGarbageFrames: 4 }, true);
          const closes = ev.filter((e) => e.kind === 'close' || e.kind === 'end');
          assert.ok(closes.length <= 1);
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });

  test('fuzz: mutated valid streams give only events, never a throw, within the buffer bound (RFC 9329 §3)', () => {
    fc.assert(
      fc.property(
        streamArb,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (stream, flips, cuts) => {
          const mutated = stream.slice();
          for (const [at, v] of flips) if (mutated.length > 0) mutated[at % mutated.length] = v;
          run(splitAt(mutated, cuts), responder, true);
        },
      ),
      { numRuns: runs, seed: fuzzSeed() },
    );
  });
});
