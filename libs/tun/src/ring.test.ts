import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { fuzzSeed } from '@ikegate/testkit';
// ShmRing and ShmRingReader are RING_JS evaluated: the same text the TUN threads run.
import { RING_JS, ShmRing, ShmRingReader } from './ring.js';
import { within } from './testing/fixture.js';

/** Packet i of `n` octets: a pattern that differs between packets and positions. */
function packet(i: number, n: number): Uint8Array {
  const p = new Uint8Array(n);
  for (let k = 0; k < n; k++) p[k] = (i * 131 + k * 7 + (k >>> 8)) & 0xff;
  return p;
}

/**
 * What the reader thread does: reserve room for `reserve` octets without wrapping, fill `p` in
 * place, commit its length; when that room is not there, reserve exactly `p`'s length (it read into
 * a scratch buffer first). False when neither fits (the reader drops and counts).
 */
function pushInPlace(ring: ShmRing, p: Uint8Array, reserve: number): boolean {
  if (!ring.reserve(reserve, false) && !ring.reserve(p.length)) return false;
  ring.data.set(p, ring.at);
  ring.commit(p.length);
  return true;
}

/**
 * Starts a thread that runs `body` with `ring` (a `side` over `shm`'s buffers) and `workerData`
 * (ctl, data and `shared`) in scope; `exited` resolves with its exit code.
 */
function ringThread(
  shm: ShmRing,
  side: 'ShmRing' | 'ShmRingReader',
  body: string,
  shared: Record<string, SharedArrayBuffer> = {},
): { worker: Worker; exited: Promise<number> } {
  const worker = new Worker(
    `const { workerData } = require('node:worker_threads');
${RING_JS}
const ring = new ${side}(workerData.ctl, workerData.data);
${body}`,
    { eval: true, workerData: { ctl: shm.ctlBuffer, data: shm.dataBuffer, ...shared } },
  );
  return { worker, exited: new Promise<number>((resolve) => worker.once('exit', resolve)) };
}

/** A 64 KiB ring, read here through `reader`, that a producer thread running `body` fills. */
function producerThread(body: string): { reader: ShmRingReader; exited: Promise<number> } {
  const ring = new ShmRing(64 * 1024);
  const reader = new ShmRingReader(ring.ctlBuffer, ring.dataBuffer);
  return { reader, exited: ringThread(ring, 'ShmRing', body).exited };
}

describe('ShmRing: the TUN rings (issue #14)', () => {
  test('any interleaving of pushes (copied, or filled in place into a larger reservation) and takes gives the packets back intact and in order; a refused push is a full ring', () => {
    const op = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          push: fc.nat({ max: 1 << 16 }),
          inPlace: fc.boolean(),
          spare: fc.nat({ max: 0xffff }),
        }),
      },
      { weight: 2, arbitrary: fc.record({ take: fc.integer({ min: 1, max: 8 }) }) },
    );
    fc.assert(
      fc.property(
        fc.integer({ min: 64, max: 300_000 }),
        fc.array(op, { maxLength: 120 }),
        (capacity, ops) => {
          const ring = new ShmRing(capacity);
          const reader = new ShmRingReader(ring.ctlBuffer, ring.dataBuffer);
          const queued: Uint8Array[] = [];
          let id = 0;
          for (const o of ops) {
            if ('push' in o) {
              // Sizes 0..65535 scaled into the ring now and then, so small rings see fitting packets too.
              const n = Math.min(o.push % 2 === 0 ? o.push % (capacity >>> 1) : o.push, 0xffff);
              const p = packet(id++, n);
              const free = capacity - ring.usedOctets;
              // In place: the reservation is larger than the packet (up to 65535, as the reader thread asks).
              const reserve = Math.min(n + o.spare, 0xffff);
              if (o.inPlace ? pushInPlace(ring, p, reserve) : ring.push(p)) {
                queued.push(p);
                assert.ok(ring.usedOctets < ring.capacity, 'a full ring never looks empty');
              } else {
                // Records do not wrap: at worst half the free space is usable, never less.
                assert.ok(2 * (4 + ((n + 3) & ~3)) >= free, `refused ${n} octets with ${free} free`);
              }
              continue;
            }
            for (let k = 0; k < o.take; k++) {
              const want = queued.shift();
              if (want === undefined) {
                assert.equal(reader.take(), false, 'empty ring gives nothing');
                break;
              }
              assert.ok(reader.take());
              assert.equal(reader.length, want.length);
              assert.deepEqual(reader.data.subarray(reader.at, reader.at + reader.length), want);
              reader.release();
            }
          }
          for (let want = queued.shift(); want !== undefined; want = queued.shift()) {
            assert.ok(reader.take());
            assert.deepEqual(reader.data.subarray(reader.at, reader.at + reader.length), want);
            reader.release();
          }
          assert.equal(reader.take(), false);
          assert.equal(ring.usedOctets, 0);
        },
      ),
      { numRuns: 3000, seed: fuzzSeed() },
    );
  });

  test('a packet over 65535 octets is refused; the ring size must be 64 octets..1 GiB', () => {
    const ring = new ShmRing(1 << 20);
    assert.equal(ring.push(new Uint8Array(0x10000)), false);
    assert.equal(ring.push(new Uint8Array(0xffff)), true);
    assert.throws(() => new ShmRing(63), RangeError);
    assert.throws(() => new ShmRing(2 ** 31), RangeError);
    assert.equal(new ShmRing(65).capacity, 68);
  });

  test('a sleeping consumer thread is woken for every push: 20,000 rounds of push then wait for its release, no lost wake-up', async () => {
    const ring = new ShmRing(4096);
    // The consumer checks each packet and counts those that differ (word 0 of `bad`).
    const bad = new SharedArrayBuffer(4);
    const { exited } = ringThread(
      ring,
      'ShmRingReader',
      `const bad = new Int32Array(workerData.bad);
let i = 0;
for (;;) {
  if (ring.take()) {
    let ok = ring.length === 1 + (i % 200);
    for (let k = 0; ok && k < ring.length; k++) ok = ring.data[ring.at + k] === ((i + k) & 0xff);
    if (!ok) Atomics.add(bad, 0, 1);
    i++;
    ring.release();
  } else if (ring.closed) break;
  else ring.sleep();
}`,
      { bad },
    );
    try {
      const ROUNDS = 20_000;
      let wakes = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const n = 1 + (i % 200);
        const p = new Uint8Array(n);
        for (let k = 0; k < n; k++) p[k] = (i + k) & 0xff;
        assert.ok(ring.push(p));
        if (ring.wakeConsumer()) wakes++;
        // Bounded: a lost wake-up leaves the packet in the ring and fails here instead of hanging.
        let spins = 0;
        while (ring.usedOctets !== 0) {
          assert.ok(++spins < 50_000_000, `round ${i}: the consumer never took the packet (lost wake-up)`);
          if (spins % 1024 === 0) await new Promise((resolve) => setImmediate(resolve));
        }
      }
      assert.equal(Atomics.load(new Int32Array(bad), 0), 0, 'every packet intact');
      assert.ok(wakes <= ROUNDS);
    } finally {
      ring.close();
    }
    assert.equal(await exited, 0, 'close() ends the consumer');
  });

  test('close() wakes a consumer that sleeps on an empty ring, and it ends after draining', async () => {
    const ring = new ShmRing(1024);
    const taken = new SharedArrayBuffer(4);
    const { worker, exited } = ringThread(
      ring,
      'ShmRingReader',
      `const taken = new Int32Array(workerData.taken);
for (;;) {
  if (ring.take()) { Atomics.add(taken, 0, 1); ring.release(); }
  else if (ring.closed) break;
  else ring.sleep();
}`,
      { taken },
    );
    const ctl = new Int32Array(ring.ctlBuffer);
    // Wait (bounded) until it announced that it sleeps: word 32 (SLEEP) is 1.
    for (let k = 0; Atomics.load(ctl, 32) !== 1; k++) {
      assert.ok(k < 2000, 'the consumer never went to sleep');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    // Two packets pushed without a wake-up, then close(): it drains both and ends.
    ring.push(new Uint8Array(10));
    ring.push(new Uint8Array(20));
    ring.close();
    const code = await within(exited, 10_000, 'still running after 10 s');
    if (code !== 0) await worker.terminate();
    assert.equal(code, 0);
    assert.equal(Atomics.load(new Int32Array(taken), 0), 2);
  });
  test('a main-thread consumer woken by Atomics.waitAsync gets all 20,000 packets a producer thread fills in place, in bursts and pauses, in order (no lost wake-up, no blocking wait on the main thread)', async () => {
    const TOTAL = 20_000;
    // The producer: packet i is 1 + (i * 37) % 1500 octets of (i + k) & 0xff, reserved as the reader
    // thread does (room for 65535 first); bursts of 1..64 packets, pauses of 0..1 ms (seeded); a
    // full ring is retried after 1 ms (bounded), so nothing is dropped here.
    const { reader, exited } = producerThread(
      `const pause = new Int32Array(new SharedArrayBuffer(4));
let x = 0x2545f491;
const rnd = () => { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; return (x >>> 0) / 4294967296; };
for (let i = 0; i < ${TOTAL}; ) {
  const burst = 1 + Math.floor(rnd() * 64);
  for (let b = 0; b < burst && i < ${TOTAL}; b++, i++) {
    const n = 1 + ((i * 37) % 1500);
    for (let tries = 0; !ring.reserve(0xffff, false) && !ring.reserve(n); tries++) {
      if (tries === 10000) throw new Error('ring full for 10 s at packet ' + i);
      Atomics.wait(pause, 0, 0, 1);
    }
    for (let k = 0; k < n; k++) ring.data[ring.at + k] = (i + k) & 0xff;
    ring.commit(n);
    ring.wakeConsumer();
  }
  if (rnd() < 0.5) Atomics.wait(pause, 0, 0, rnd() < 0.5 ? 0 : 1);
}`,
    );
    let got = 0;
    let bad = 0;
    let waits = 0;
    try {
      const done = await within(
        new Promise<true>((resolve) => {
          // The same shape as TunDevice's drainRx: take until empty, then announce and wait async.
          const drain = (): void => {
            for (;;) {
              if (!reader.take()) {
                if (got === TOTAL) return resolve(true);
                const woken = reader.sleepAsync();
                if (woken !== undefined) {
                  waits++;
                  void woken.then(drain);
                  return;
                }
                continue;
              }
              const n = reader.length;
              let ok = n === 1 + ((got * 37) % 1500);
              for (let k = 0; ok && k < n; k++) ok = reader.data[reader.at + k] === ((got + k) & 0xff);
              if (!ok) bad++;
              got++;
              reader.release();
            }
          };
          drain();
        }),
        // Bounded: a lost wake-up leaves packets in the ring and fails here instead of hanging.
        60_000,
        false,
      );
      assert.ok(done, `only ${got} of ${TOTAL} packets taken in 60 s (lost wake-up?)`);
      assert.equal(bad, 0, 'every packet intact and in order');
      assert.ok(waits > 0, 'the consumer did wait for the producer');
      assert.equal(reader.producerDrops, 0);
    } finally {
      reader.wake();
    }
    assert.equal(await exited, 0);
  });

  test('a producer thread facing a consumer that takes nothing drops and counts (producerDrops + taken = sent), keeps what fitted in order and never blocks', async () => {
    const SENT = 5000;
    const { reader, exited } = producerThread(
      `const p = new Uint8Array(1400);
for (let i = 0; i < ${SENT}; i++) {
  p[0] = i & 0xff;
  p[1] = i >>> 8;
  if (ring.push(p)) ring.wakeConsumer();
  else ring.countDrop();
}`,
    );
    assert.equal(await exited, 0);
    let taken = 0;
    for (; reader.take(); taken++) {
      assert.equal(
        reader.data[reader.at]! | (reader.data[reader.at + 1]! << 8),
        taken,
        'the first packets, in order',
      );
      reader.release();
    }
    // 64 KiB holds 46 records of 1404 octets (one slot is never used).
    assert.equal(taken, Math.floor((64 * 1024 - 4) / 1404));
    assert.equal(reader.producerDrops + taken, SENT);
  });
});
