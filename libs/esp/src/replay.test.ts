import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeededRandom } from '@ikegate/testkit';
import { LocalUsageError } from './errors.js';
import { ReplayWindow } from './replay.js';

const MASK32 = 0xffff_ffffn;

/** Receives a packet whose true 64-bit SN is `seq`, as InboundSa does; integrity passes only with the true Seqh. */
function receive(w: ReplayWindow, seq: bigint): boolean {
  const lo = Number(seq & MASK32);
  const hi = w.inferHigh(lo);
  if (hi < 0 || !w.check(hi, lo)) return false;
  if (BigInt(hi) !== seq >> 32n) return false; // the ICV (or AEAD tag) would not verify
  w.accept(hi, lo);
  return true;
}

/** Naive reference (STYLE.md rule 10): every SN ever accepted, and the highest. */
class NaiveWindow {
  readonly seen = new Set<bigint>();
  highest: bigint;
  /** Restore point: everything at or below it counts as seen. */
  constructor(
    readonly size: number,
    readonly floor = 0n,
  ) {
    this.highest = floor;
  }
  receive(seq: bigint): boolean {
    if (this.size === 0) {
      if (seq > this.highest) this.highest = seq;
      return true;
    }
    if (seq <= this.floor) return false;
    if (seq <= this.highest && (this.highest - seq >= BigInt(this.size) || this.seen.has(seq))) return false;
    this.seen.add(seq);
    if (seq > this.highest) this.highest = seq;
    return true;
  }
}

class Draw {
  #buf: Uint8Array = new Uint8Array(0);
  #at = 0;
  constructor(readonly rng: SeededRandom) {}
  u32(): number {
    if (this.#at + 4 > this.#buf.length) {
      this.#buf = this.rng.bytes(4096);
      this.#at = 0;
    }
    const b = this.#buf;
    const a = this.#at;
    this.#at += 4;
    return ((b[a]! << 24) | (b[a + 1]! << 16) | (b[a + 2]! << 8) | b[a + 3]!) >>> 0;
  }
  below(n: number): number {
    return this.u32() % n;
  }
}

describe('anti-replay window (RFC 4303 §3.4.3)', () => {
  test('window 64: new SNs pass, duplicates and SNs 64 or more below the top are replays', () => {
    const w = new ReplayWindow(64, false);
    assert.equal(receive(w, 100n), true);
    assert.equal(receive(w, 100n), false);
    assert.equal(receive(w, 37n), true, '63 below the top is inside the window');
    assert.equal(receive(w, 36n), false, '64 below the top is outside');
    assert.equal(receive(w, 99n), true);
    assert.equal(receive(w, 99n), false);
    assert.equal(w.highest, 100n);
  });

  test('sequence number 0 is never accepted: the first packet carries 1 (RFC 4303 §3.3.3)', () => {
    const w = new ReplayWindow(64, false);
    assert.equal(receive(w, 0n), false);
    assert.equal(receive(w, 1n), true);
  });

  test('window 1 accepts only strictly increasing SNs (RFC 9329 TCP transport)', () => {
    const w = new ReplayWindow(1, false);
    assert.equal(receive(w, 5n), true);
    assert.equal(receive(w, 5n), false);
    assert.equal(receive(w, 4n), false);
    assert.equal(receive(w, 7n), true);
    assert.equal(receive(w, 6n), false);
  });

  test('window 0 disables the check: duplicates and old SNs pass (RFC 4303 §3.4.3)', () => {
    const w = new ReplayWindow(0, false);
    assert.equal(receive(w, 5n), true);
    assert.equal(receive(w, 5n), true);
    assert.equal(receive(w, 1n), true);
    assert.equal(w.highest, 5n);
  });

  test('check() never changes state; only accept() does', () => {
    const w = new ReplayWindow(64, false);
    assert.equal(w.check(0, 10), true);
    assert.equal(w.check(0, 10), true);
    assert.equal(w.highest, 0n);
  });

  test('a jump of more than the bitmap forgets every old bit, a smaller one keeps those in range', () => {
    const w = new ReplayWindow(64, false);
    for (let s = 1n; s <= 64n; s++) assert.equal(receive(w, s), true);
    assert.equal(receive(w, 64n + 63n), true);
    assert.equal(receive(w, 64n), false, 'still in the window, already seen');
    assert.equal(receive(w, 65n), true, 'in the window, never seen');
    assert.equal(receive(w, 100_000n), true);
    assert.equal(receive(w, 100_000n - 63n), true);
    assert.equal(receive(w, 100_000n - 64n), false);
  });

  test('a restore point counts everything at or below it as seen (HA checkpoint)', () => {
    const w = new ReplayWindow(64, false, 1000n);
    assert.equal(receive(w, 1000n), false);
    assert.equal(receive(w, 999n), false);
    assert.equal(receive(w, 1001n), true);
    assert.equal(receive(w, 1002n), true);
    assert.equal(receive(w, 1032n), true);
  });

  test('window sizes outside 0..65536 are a LocalUsageError', () => {
    assert.throws(() => new ReplayWindow(-1, false), LocalUsageError);
    assert.throws(() => new ReplayWindow(65_537, false), LocalUsageError);
    assert.throws(() => new ReplayWindow(1.5, false), LocalUsageError);
    assert.throws(() => new ReplayWindow(64, false, 1n << 32n), LocalUsageError);
  });
});

describe('ESN: inferring the high-order 32 bits (RFC 4303 Appendix A2.2)', () => {
  test('Case A: Seql below Bl is in the next subspace (Th + 1)', () => {
    const w = new ReplayWindow(64, true, 0x1_ffff_fff0n);
    assert.equal(w.inferHigh(0xffff_ffb1), 1, 'Seql >= Bl: Th');
    assert.equal(w.inferHigh(0xffff_ffb0), 2, 'Seql < Bl: Th + 1');
    assert.equal(w.inferHigh(5), 2);
  });

  test('Case B: the window straddles two subspaces, Seql >= Bl is in Th - 1', () => {
    const w = new ReplayWindow(64, true, 0x2_0000_0010n);
    assert.equal(w.inferHigh(0xffff_fff0), 1);
    assert.equal(w.inferHigh(0x10), 2);
    assert.equal(w.inferHigh(0x1000), 2);
  });

  test('crossing 2^32 moves into subspace 1 and keeps late packets of subspace 0', () => {
    const w = new ReplayWindow(64, true, 0xffff_fff0n);
    assert.equal(receive(w, 0x1_0000_0002n), true);
    assert.equal(w.highest, 0x1_0000_0002n);
    assert.equal(receive(w, 0xffff_fff5n), true, 'late packet of the previous subspace');
    assert.equal(receive(w, 0xffff_fff5n), false);
    assert.equal(receive(w, 0x1_0000_0001n), true);
    assert.equal(receive(w, 0x1_0000_0002n), false);
  });

  test('no subspace before 0 and none after 2^32 - 1: such Seql get -1', () => {
    const w = new ReplayWindow(64, true);
    assert.equal(w.inferHigh(0xffff_fff0), -1);
    assert.equal(w.inferHigh(1), 0);
    const top = new ReplayWindow(64, true, 0xffff_ffff_ffff_fff0n);
    assert.equal(top.inferHigh(3), -1);
  });

  test('with anti-replay disabled, inference still tracks T with a 2^31 window', () => {
    const w = new ReplayWindow(0, true, 0x3_0000_0005n);
    assert.equal(w.inferHigh(0xf000_0000), 2);
    assert.equal(w.inferHigh(0x7000_0000), 3);
  });
});

describe('anti-replay window against a naive reference (seeded random SN sequences)', () => {
  const cases: { window: number; esn: boolean; start: bigint }[] = [
    { window: 1, esn: false, start: 1n },
    { window: 32, esn: false, start: 1n },
    { window: 64, esn: false, start: 1000n },
    { window: 100, esn: false, start: 1n },
    { window: 4096, esn: false, start: 1n },
    { window: 0, esn: false, start: 1n },
    { window: 1, esn: true, start: 0xffff_0000n },
    { window: 64, esn: true, start: 0xffff_f000n },
    { window: 128, esn: true, start: 0x2_ffff_ff00n },
    { window: 1000, esn: true, start: 0xffff_8000n },
    { window: 4096, esn: true, start: 0x1_ffff_0000n },
    { window: 65_536, esn: true, start: 0x7_fffe_0000n },
  ];
  for (const c of cases) {
    test(`window ${c.window}, ${c.esn ? 'ESN' : '32-bit SN'}: same accept/reject as the reference`, () => {
      const draw = new Draw(new SeededRandom(`replay-${c.window}-${c.esn}`));
      for (let run = 0; run < 20; run++) {
        // Both start from a restore point next to a subspace boundary.
        const w = new ReplayWindow(c.window, c.esn, c.start - 1n);
        const ref = new NaiveWindow(c.window, c.start - 1n);
        let seq = c.start;
        const limit = c.esn ? 1n << 64n : 1n << 32n;
        const span = BigInt(Math.max(4, c.window * 3));
        for (let i = 0; i < 2000; i++) {
          const r = draw.below(100);
          let next: bigint;
          if (r < 45) next = ref.highest + 1n + BigInt(draw.below(3));
          else if (r < 75) next = ref.highest - BigInt(draw.below(Number(span)));
          else if (r < 90)
            next = seq; // duplicate of the last one tried
          else if (r < 98) next = ref.highest + BigInt(draw.below(Number(span)));
          else next = ref.highest + BigInt(draw.below(0x4000_0000)); // a big jump forward
          if (next < 0n || next >= limit) continue;
          if (!c.esn && next === 0n && draw.below(2) === 0) continue;
          seq = next;
          const expected = ref.receive(seq);
          assert.equal(receive(w, seq), expected, `run ${run} step ${i}: SN ${seq.toString(16)}`);
          assert.equal(w.highest, ref.highest);
        }
      }
    });
  }
});
