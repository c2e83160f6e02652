/**
 * Shard placement: which worker should lease which shard.
 *
 * Goals, in order: every shard has exactly one owner; loads differ by at most one shard; as few
 * shards as possible move when a worker joins or leaves. The algorithm is "sticky rendezvous":
 *
 * 1. Targets: with S shards and W workers, every worker should own floor(S/W) shards and S mod W
 *    of them one more; the extra ones go to the workers that own most now (ties by id), so a
 *    balanced cluster is left as it is.
 * 2. Keep: a shard whose previous owner is still present stays, unless that owner is over its
 *    target; an over-target owner gives up the shards it ranks lowest (rendezvous score), those
 *    with an `avoid` entry last.
 * 3. Fill: every unowned shard goes to the worker with the highest rendezvous score
 *    (hash of worker id and shard) among those still under target.
 *
 * Hence a leaving worker moves only its own shards, and a joining worker takes only the shards
 * needed to balance. Deterministic: the same inputs give the same placement on every node.
 *
 * `avoid` (issue #11, no flapping back): shard -> a worker it must not be given to (the shard was
 * taken from that worker because it died or paused; its SAs moved once and must not move back when
 * it returns). Such a worker is skipped in the fill for that shard while any other can take it.
 */
import { createHash } from 'node:crypto';

function score(worker: string, shard: number): number {
  return createHash('sha256').update(worker).update(':').update(String(shard)).digest().readUInt32BE(0);
}

/**
 * @param shards number of shards
 * @param workers ids of live workers (order is irrelevant; duplicates are ignored)
 * @param previous previous owner per shard index (undefined: unowned); may be shorter than `shards`
 * @returns owner per shard index; empty array entries cannot occur when `workers` is non-empty
 */
export function placeShards(
  shards: number,
  workers: readonly string[],
  previous: readonly (string | undefined)[] = [],
  avoid: ReadonlyMap<number, string> = new Map(),
): (string | undefined)[] {
  const ids = [...new Set(workers)].sort();
  if (ids.length === 0) return new Array<string | undefined>(shards).fill(undefined);
  const live = new Set(ids);
  const owner: (string | undefined)[] = [];
  const owned = new Map<string, number[]>(ids.map((w) => [w, []]));
  for (let s = 0; s < shards; s++) {
    const prev = previous[s];
    if (prev !== undefined && live.has(prev)) {
      owner[s] = prev;
      owned.get(prev)?.push(s);
    } else owner[s] = undefined;
  }

  const base = Math.floor(shards / ids.length);
  const extra = shards % ids.length;
  const byLoad = [...ids].sort(
    (a, b) => (owned.get(b)?.length ?? 0) - (owned.get(a)?.length ?? 0) || (a < b ? -1 : 1),
  );
  const target = new Map<string, number>(byLoad.map((w, i) => [w, base + (i < extra ? 1 : 0)]));

  for (const w of ids) {
    const mine = owned.get(w) ?? [];
    const limit = target.get(w) ?? 0;
    if (mine.length <= limit) continue;
    // Keep the shards that must not go back where they came from (avoid); give up others first.
    mine.sort((a, b) => Number(avoid.has(b)) - Number(avoid.has(a)) || score(w, b) - score(w, a));
    for (const s of mine.splice(limit)) owner[s] = undefined;
  }

  for (let s = 0; s < shards; s++) {
    if (owner[s] !== undefined) continue;
    let best: string | undefined;
    let bestScore = -1;
    const avoided = avoid.get(s);
    const canAvoid =
      avoided !== undefined &&
      ids.some((w) => w !== avoided && (owned.get(w)?.length ?? 0) < (target.get(w) ?? 0));
    for (const w of ids) {
      if ((owned.get(w)?.length ?? 0) >= (target.get(w) ?? 0)) continue;
      if (canAvoid && w === avoided) continue;
      const sc = score(w, s);
      if (sc > bestScore) {
        bestScore = sc;
        best = w;
      }
    }
    if (best !== undefined) {
      owner[s] = best;
      owned.get(best)?.push(s);
    }
  }
  return owner;
}
