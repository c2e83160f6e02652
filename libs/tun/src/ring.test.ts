import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { fuzzSeed } from '@ikegate/testkit';
import { RING_CONSUMER_JS, ShmRing } from './device.js';

interface Reader {
  readonly data: Uint8Array;
  readonly at: number;
  readonly length: number;
  take(): boolean;
  release(): void;
}

/** The consumer exactly as the writer thread runs it (the same source text). */
const ShmRingReader = new Function(`${RING_CONSUMER_JS}\nreturn ShmRingReader;`)() as new (
  ctl: SharedArrayBuffer,
  data: SharedArrayBuffer,
) => Reader;

/** Packet i of `n` octets: a pattern that differs between packets and positions. */
function packet(i: number, n: number): Uint8Array {
  const p = new Uint8Array(n);
  for (let k = 0; k < n; k++) p[k] = (i * 131 + k * 7 + (k >>> 8)) & 0xff;
  return p;
}

describe('ShmRing: the TUN writer ring (issue #14)', () => {
  test('any interleaving of pushes and takes gives the pushed packets back intact and in order; a refused push is a full ring', () => {
    const op = fc.oneof(
      { weight: 3, arbitrary: fc.record({ push: fc.nat({ max: 1 << 16 }) }) },
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
              if (ring.push(p)) {
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
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
${RING_CONSUMER_JS}
const ring = new ShmRingReader(workerData.ctl, workerData.data);
const bad = new Int32Array(workerData.bad);
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
      { eval: true, workerData: { ctl: ring.ctlBuffer, data: ring.dataBuffer, bad } },
    );
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
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
    const worker = new Worker(
      `const { workerData } = require('node:worker_threads');
${RING_CONSUMER_JS}
const ring = new ShmRingReader(workerData.ctl, workerData.data);
const taken = new Int32Array(workerData.taken);
for (;;) {
  if (ring.take()) { Atomics.add(taken, 0, 1); ring.release(); }
  else if (ring.closed) break;
  else ring.sleep();
}`,
      { eval: true, workerData: { ctl: ring.ctlBuffer, data: ring.dataBuffer, taken } },
    );
    const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
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
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise<string>(
        (resolve) => (timer = setTimeout(() => resolve('still running after 10 s'), 10_000)),
      ),
    ]);
    clearTimeout(timer);
    if (code !== 0) await worker.terminate();
    assert.equal(code, 0);
    assert.equal(Atomics.load(new Int32Array(taken), 0), 2);
  });
});
