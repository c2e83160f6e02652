/**
 * Issue #11 ("Redis HA"): the Redis primary killed with SIGKILL under load, with real processes:
 * a Sentinel topology (primary, replica, three sentinels; libs/store/src/testing/redis-sentinel.ts),
 * two `ikegate worker`s, one `ikegate edge` and `ikegate control`, reached through
 * `cluster.redis.sentinels` (replicaAcks 1 by default: every SA write-through and lease grant is
 * confirmed by the replica before it counts as written). `ikegate loadgen` processes are the peers.
 *
 * 0 SAs lost: every SA stays established on its worker with the same SPIs (no peer sent another
 * IKE_SA_INIT), every SA is in the promoted replica, and a worker killed afterwards has every one
 * of its SAs taken over from there.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { requirement } from '@ikegate/testkit';
import { TestCluster, until } from './lib/cluster.js';

const skip = requirement(
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
    ? false
    : 'redis-server not installed',
);

/** Every SA key in the store's shard index sets on the Redis server at `port`. */
async function storedSpis(port: number): Promise<Set<string>> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    const p = r.pipeline();
    for (let s = 0; s < 1024; s++) p.smembers(`ikegate:{s${s}}:index`);
    const out = new Set<string>();
    for (const [err, keys] of (await p.exec()) ?? []) {
      if (err) throw err;
      for (const k of keys as string[]) out.add(k);
    }
    return out;
  } finally {
    r.disconnect();
  }
}

/** How many WAIT commands the Redis server at `port` has run (INFO commandstats). */
async function waitCalls(port: number): Promise<number> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return Number(/^cmdstat_wait:calls=(\d+)/m.exec(await r.info('commandstats'))?.[1] ?? 0);
  } finally {
    r.disconnect();
  }
}

const total = (m: Map<string, string[]>) => [...m.values()].reduce((n, s) => n + s.length, 0);

describe(
  'HA: Redis primary killed under load (Sentinel: primary, replica, 3 sentinels; issue #11)',
  { skip },
  () => {
    // Leases (15 s) outlive the failover (a few seconds), so no shard moves because of it.
    const c = new TestCluster(15_000, undefined, false, true);

    before(async () => {
      await c.start();
      for (const id of ['w1', 'w2']) await c.addWorker(id);
      await c.addEdge('e1');
      await c.startControl();
      await until(
        () => c.shards(),
        (v) => v.owned === 1024 && Object.keys(v.byWorker).length === 2,
        60_000,
      );
    });

    after(() => c.stop());

    test('kill -9 of the Redis primary while SAs are set up: the replica is promoted, every process reconnects by itself, every SA stays established with its SPIs (no new IKE_SA_INIT), every SA is in the promoted replica, and a worker killed afterwards has all its SAs taken over from it: 0 SAs lost', async (t) => {
      const topo = c.sentinel!;
      const edge = c.edges[0]!;
      const held = await c.loadgen(edge, { count: 30, transport: 'udp', idPrefix: 'held' });
      assert.equal(held.summary.established, 30, JSON.stringify(held.summary));
      const first = await until(
        () => c.sasByWorker(),
        (m) => total(m) === 30,
      );
      const firstSpis = [...first.values()].flat();
      assert.equal(firstSpis.length, 30);

      // Load across the failover: 20 more SAs set up at 5 a second while the primary dies.
      const more = c.spawnLoadgen(edge, {
        count: 20,
        transport: 'udp',
        idPrefix: 'more',
        rate: 5,
        concurrency: 4,
        hold: true,
      });
      await sleep(1500);
      const primary = await topo.primary();
      assert.ok(
        (await waitCalls(primary.port)) > 0,
        'write-through waits for the replica (cluster.redis.replicaAcks defaults to 1 with sentinels)',
      );
      const killedAt = Date.now();
      await primary.kill('SIGKILL');
      const newPort = await topo.waitForFailover(primary.port, 30_000);
      const failoverMs = Date.now() - killedAt;
      const summary = await more.waitLine(
        (l) => 'established' in l && 'attempted' in l,
        'loadgen summary',
        120_000,
      );
      assert.equal(summary.established, 20, JSON.stringify(summary));

      // Every SA established on a worker, and every write-through done (nothing pending).
      const sas = await until(
        () => c.sasByWorker(),
        (m) => total(m) === 50,
        30_000,
      );
      assert.equal(total(sas), 50, 'every SA established on a worker');
      const pendingWrites = async () => {
        let n = 0;
        for (const w of c.workers) n += await c.metric(w.admin, 'ikegate_store_pending_writes');
        return n;
      };
      assert.equal(await until(pendingWrites, (n) => n === 0, 30_000), 0, 'no write-through pending');
      const spis = new Set([...sas.values()].flat());
      assert.deepEqual(
        firstSpis.filter((x) => !spis.has(x)),
        [],
        'the SAs set up before the kill are the same IKE SAs after it (same SPIs: nobody set them up again)',
      );

      // In the promoted replica (the old primary is dead): every SA the workers hold.
      assert.equal(primary.alive, false);
      const stored = await until(
        () => storedSpis(newPort),
        (s) => [...spis].every((x) => s.has(x)),
        20_000,
      );
      assert.deepEqual(
        [...spis].filter((x) => !stored.has(x)),
        [],
        'every SA held is stored in the promoted replica',
      );

      let storeErrors = 0;
      for (const w of c.workers)
        storeErrors += await c.metric(w.admin, 'ikegate_store_write_failures_total', {
          reason: 'store_error',
        });
      const inits = async () =>
        c.metric(edge.admin, 'ikegate_ike_messages_total', { direction: 'in', exchange: 'IKE_SA_INIT' });
      const initsBefore = await inits();

      // Proof by takeover: the worker holding more SAs dies; the other adopts them from Redis.
      const [victimId] = [...sas].sort((a, b) => b[1].length - a[1].length)[0]!;
      const victim = c.workers.find((w) => w.id === victimId)!;
      await victim.proc.stop('SIGKILL');
      const afterKill = await until(
        () => c.sasByWorker(),
        (m) => total(m) === 50,
        30_000,
      );
      const now = new Set([...afterKill.values()].flat());
      assert.deepEqual(
        [...spis].filter((x) => !now.has(x)),
        [],
        'every SA held elsewhere after the takeover, same SPIs: 0 SAs lost',
      );
      assert.equal(now.size, 50, 'none added');
      assert.equal(await inits(), initsBefore, 'no peer started IKE again (no re-authentication)');
      assert.ok(held.proc.alive && more.alive, 'the peers still hold their SAs');
      t.diagnostic(
        `failover: the sentinels named the promoted replica ${failoverMs} ms after kill -9 of the primary; ${storeErrors} write-through attempts failed meanwhile and were written again; ${spis.size} SAs, all in the promoted replica and adopted after a worker kill`,
      );
    });
  },
);
