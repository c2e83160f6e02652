import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SeededRandom } from '@ikegate/testkit';
import { placeShards } from './placement.js';

function loads(owner: (string | undefined)[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const w of owner) if (w !== undefined) m.set(w, (m.get(w) ?? 0) + 1);
  return m;
}

function moved(a: (string | undefined)[], b: (string | undefined)[]): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

describe('shard placement (sticky rendezvous)', () => {
  const rng = new SeededRandom('placement');
  const cases = Array.from({ length: 60 }, (_, i) => {
    const b = rng.bytes(2);
    return { shards: 16 + (b[0]! % 8) * 128, workers: 1 + (b[1]! % 9), i };
  });

  test('every shard has exactly one live owner and loads differ by at most one', () => {
    for (const c of cases) {
      const workers = Array.from({ length: c.workers }, (_, k) => `w${c.i}-${k}`);
      const owner = placeShards(c.shards, workers);
      assert.equal(owner.length, c.shards);
      assert.ok(owner.every((w) => w !== undefined && workers.includes(w)));
      const l = [...loads(owner).values()];
      assert.ok(Math.max(...l) - Math.min(...l) <= 1, `${c.shards}/${c.workers}: ${l}`);
    }
  });

  test('placement is deterministic and independent of the order workers are listed in', () => {
    const workers = ['c', 'a', 'b', 'd'];
    assert.deepEqual(placeShards(1024, workers), placeShards(1024, [...workers].reverse()));
  });

  test('a leaving worker moves only its own shards', () => {
    for (const c of cases.filter((x) => x.workers > 1)) {
      const workers = Array.from({ length: c.workers }, (_, k) => `w${k}`);
      const before = placeShards(c.shards, workers);
      const after = placeShards(c.shards, workers.slice(1), before);
      for (let s = 0; s < c.shards; s++) if (before[s] !== 'w0') assert.equal(after[s], before[s]);
      const l = [...loads(after).values()];
      assert.ok(Math.max(...l) - Math.min(...l) <= 1);
    }
  });

  test('a joining worker takes only what balance needs: moved shards equal its new load', () => {
    for (const c of cases) {
      const workers = Array.from({ length: c.workers }, (_, k) => `w${k}`);
      const before = placeShards(c.shards, workers);
      const after = placeShards(c.shards, [...workers, 'new'], before);
      const newLoad = loads(after).get('new') ?? 0;
      assert.equal(moved(before, after), newLoad);
      assert.ok(newLoad >= Math.floor(c.shards / (c.workers + 1)));
    }
  });

  test('with no workers every shard is unowned', () => {
    assert.ok(placeShards(8, []).every((w) => w === undefined));
  });

  test('no flapping back (issue #11): shards taken from a worker that died or paused do not return to it when it is back; it gets others, and loads balance', () => {
    const workers = ['w1', 'w2', 'w3'];
    const before = placeShards(1024, workers);
    const moved = new Map<number, string>();
    before.forEach((w, s) => {
      if (w === 'w3') moved.set(s, 'w3');
    });
    const whileAway = placeShards(1024, ['w1', 'w2'], before);
    const back = placeShards(1024, workers, whileAway, moved);
    const returned = [...moved.keys()].filter((s) => back[s] === 'w3');
    assert.deepEqual(returned, [], 'none of the shards that moved goes back');
    const loads = workers.map((w) => back.filter((o) => o === w).length);
    assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, JSON.stringify(loads));
    // Only balance moves: w3's new shards, nothing else changes hands.
    const changed = back.filter((o, s) => o !== whileAway[s]).length;
    assert.equal(changed, loads[2]);
    // With nobody else able to take it, an avoided shard still gets an owner.
    assert.deepEqual(placeShards(4, ['w3'], [], new Map([[0, 'w3']])), ['w3', 'w3', 'w3', 'w3']);
  });
});
