/**
 * RedisStore through a real Sentinel failover (issue #11, "Redis HA"): a primary, a replica and
 * three sentinels started here (testing/redis-sentinel.ts), the store in ioredis Sentinel mode.
 * The primary is killed with SIGKILL while fenced writes stream in; the sentinels promote the
 * replica; the store finds it by itself. With `replicaAcks: 1` every write the store acknowledged
 * before the kill is on the promoted replica, the writes it did not acknowledge are written again,
 * fencing still holds and epochs never go back.
 *
 * Without redis-server the suite is skipped with the reason (a failure under CI=true).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { requirement } from '@ikegate/testkit';
import { FencedWriteError, LocalUsageError, ReplicaAckError } from './errors.js';
import { epochKey, saKey } from './keys.js';
import { RedisStore } from './redis.js';
import { KEK_A } from './testing/contract.js';
import { startRedisCluster } from './testing/redis-cluster.js';
import { type RedisProcess, type SentinelTopology, startSentinelTopology } from './testing/redis-sentinel.js';

const SHARDS = 16;
const OWNER = 'w1';
const LEASE_MS = 60_000;

function storeOn(topo: SentinelTopology, replicaAcks: number): RedisStore {
  const store = new RedisStore({
    connection: { sentinels: topo.sentinels, name: topo.name, replicaAcks, replicaAckTimeoutMs: 500 },
    kek: KEK_A,
    shardCount: SHARDS,
    // As the roles run it (services/cli/src/roles.ts): a command fails after two reconnects.
    redisOptions: {
      maxRetriesPerRequest: 2,
      enableOfflineQueue: true,
      retryStrategy: (n: number) => Math.min(n * 100, 1000),
      sentinelRetryStrategy: (n: number) => Math.min(n * 100, 1000),
    },
  });
  store.backend.client.on('error', () => undefined);
  return store;
}

/** Resolves `f` or throws after `ms` (ioredis would otherwise retry forever). */
async function within<T>(ms: number, what: string, f: () => Promise<T>): Promise<T> {
  const timer = new AbortController();
  const r = await Promise.race([
    f().then((v) => ({ v })),
    sleep(ms, undefined, { signal: timer.signal })
      .then(() => undefined)
      .catch(() => undefined),
  ]);
  timer.abort();
  if (r === undefined) throw new Error(`${what}: no answer within ${ms} ms`);
  return r.v;
}

async function rawClient(port: number): Promise<Redis> {
  const r = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 1 });
  r.on('error', () => undefined);
  await r.connect();
  return r;
}

test('a missing redis-server binary gives the Sentinel and Cluster helpers a skip reason instead of failing', async () => {
  for (const r of [
    await startSentinelTopology('/nonexistent/redis-server'),
    await startRedisCluster('/nonexistent/redis-server'),
  ]) {
    assert.equal(typeof r, 'string');
    assert.match(r as string, /not available/);
  }
});

test('replicaAcks is refused with a Redis Cluster (nodes) and out of range, before any connection', () => {
  const bad = (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_STORE_BAD_REPLICA_ACKS';
  const make = (connection: ConstructorParameters<typeof RedisStore>[0]['connection']) => () =>
    new RedisStore({ connection, kek: KEK_A, redisOptions: { lazyConnect: true } });
  assert.throws(make({ nodes: [{ host: '127.0.0.1', port: 1 }], replicaAcks: 1 }), bad);
  assert.throws(make({ host: '127.0.0.1', port: 1, replicaAcks: -1 }), bad);
  assert.throws(make({ host: '127.0.0.1', port: 1, replicaAcks: 1, replicaAckTimeoutMs: 0 }), bad);
});

const topo = await startSentinelTopology();
const skip = requirement(typeof topo === 'string' && topo);

describe(
  'RedisStore on a real Sentinel topology (1 primary, 1 replica, 3 sentinels): primary SIGKILLed',
  { skip },
  () => {
    let t0: SentinelTopology;
    before(() => {
      if (typeof topo === 'string') throw new Error(topo);
      t0 = topo;
    });
    after(async () => {
      if (typeof topo !== 'string') await topo.stop();
    });

    test('cost of replicaAcks: 1 (one WAIT per batch of writes) against none, on this machine (measured, not asserted)', async (t) => {
      const stores = [storeOn(t0, 0), storeOn(t0, 1)] as const;
      try {
        const value = randomBytes(600); // about a sealed SA snapshot with two child SAs
        const grants: number[] = [];
        for (const [i, s] of stores.entries()) {
          const g = await within(10_000, 'acquire', () => s.acquire(14 - i, `bench-${i}`, LEASE_MS));
          assert.ok(g);
          grants.push(g.epoch);
          for (let k = 0; k < 300; k++) await s.putSa(14 - i, g.epoch, `warm-${k}`, value);
        }
        const n = 500;
        const batch = 64;
        // Rounds alternate between the two stores; the median of 5 is reported.
        const seq: number[][] = [[], []];
        const par: number[][] = [[], []];
        for (let round = 0; round < 5; round++) {
          for (const [i, s] of stores.entries()) {
            const shard = 14 - i;
            let start = process.hrtime.bigint();
            for (let k = 0; k < n; k++) await s.putSa(shard, grants[i]!, `seq-${k}`, value);
            seq[i]!.push(Number(process.hrtime.bigint() - start) / 1000 / n);
            start = process.hrtime.bigint();
            for (let k = 0; k < n; k += batch)
              await Promise.all(
                Array.from({ length: batch }, (_, j) => s.putSa(shard, grants[i]!, `par-${k + j}`, value)),
              );
            par[i]!.push(Number(process.hrtime.bigint() - start) / 1000 / n);
          }
        }
        const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
        for (const i of [0, 1])
          t.diagnostic(
            `replicaAcks ${i}: ${median(seq[i]!).toFixed(0)} µs per putSa one at a time, ${median(par[i]!).toFixed(1)} µs per putSa ${batch} at a time (median of 5 rounds of ${n}; ${stores[i]!.backend.replicaStats.waits} WAITs in all)`,
          );
        assert.equal(stores[1].backend.replicaStats.unreplicated, 0, 'the replica confirmed every write');
      } finally {
        for (const s of stores) await s.close();
      }
    });

    test('replicaAcks 1: every write acknowledged before kill -9 of the primary is readable from the promoted replica; unacknowledged ones are written again; fenced writes stay fenced; epochs never go back', async (t) => {
      const store = storeOn(t0, 1);
      try {
        const epochs: number[] = [];
        for (let s = 0; s < 8; s++) {
          const g = await within(10_000, 'acquire', () => store.acquire(s, OWNER, LEASE_MS));
          assert.ok(g, `shard ${s} acquired`);
          epochs.push(g.epoch);
        }
        const oldPrimary = await t0.primary();
        const acked = new Map<string, Buffer>(); // key -> the value the store acknowledged
        let failures = 0;
        let ackErrors = 0;
        const TOTAL = 400;
        const KILL_AT = 120;
        let killed: Promise<void> | undefined;
        let killedAfter = -1;
        const deadline = Date.now() + 90_000;
        // 16 writers, each with its own keys, retrying a write until it is acknowledged (like the
        // worker's pending set), each with a fresh value per attempt.
        const writer = async (w: number) => {
          for (let i = w; i < TOTAL; i += 16) {
            const shard = i % 8;
            const key = `sa-${i}`;
            for (let attempt = 0; ; attempt++) {
              assert.ok(Date.now() < deadline, `write ${key} not acknowledged in time`);
              const value = Buffer.concat([Buffer.from(`${key}#${attempt}:`), randomBytes(200)]);
              try {
                await store.putSa(shard, epochs[shard]!, key, value);
                acked.set(key, value);
                break;
              } catch (e) {
                assert.ok(!(e instanceof FencedWriteError), `no write is fenced: ${String(e)}`);
                failures++;
                if (e instanceof ReplicaAckError) ackErrors++;
                await sleep(100);
              }
            }
            if (acked.size >= KILL_AT && killed === undefined) {
              killedAfter = acked.size;
              killed = oldPrimary.kill('SIGKILL');
            }
          }
        };
        await Promise.all(Array.from({ length: 16 }, (_, w) => writer(w)));
        assert.ok(killed, 'the primary was killed mid-stream');
        await killed;
        assert.equal(oldPrimary.alive, false);
        const newPort = await t0.waitForFailover(oldPrimary.port, 30_000);
        assert.notEqual(newPort, oldPrimary.port);
        t.diagnostic(
          `primary killed after ${killedAfter} acknowledged writes; ${failures} attempts failed during the failover (${ackErrors} of them ReplicaAckError) and were written again; replicaStats ${JSON.stringify(store.backend.replicaStats)}`,
        );
        assert.equal(acked.size, TOTAL, 'every write was acknowledged in the end');

        // Read on the promoted replica directly (the old primary is dead): every acknowledged value.
        const raw = await rawClient(newPort);
        try {
          const lost: string[] = [];
          for (const [key, value] of acked) {
            const got = await store.getSa(Number(key.slice(3)) % 8, key);
            if (got === undefined || !Buffer.from(got).equals(value)) lost.push(key);
            assert.notEqual(
              await raw.exists(saKey(Number(key.slice(3)) % 8, key)),
              0,
              `${key} on ${newPort}`,
            );
          }
          assert.deepEqual(lost, [], 'no acknowledged write lost or replaced by an older value');

          // Epoch counters survived (each bump was confirmed before its grant was returned).
          for (let s = 0; s < 8; s++)
            assert.ok(Number(await raw.get(epochKey(s))) >= epochs[s]!, `shard ${s} epoch did not go back`);
        } finally {
          raw.disconnect();
        }

        // Fencing on the new primary: the old tenure still writes, a takeover fences it.
        await store.putSa(0, epochs[0]!, 'after-failover', Buffer.from('x'));
        const taken = await store.acquire(0, 'w2', LEASE_MS, OWNER);
        assert.ok(taken && taken.epoch > epochs[0]!, 'the next epoch is higher than any granted before');
        await assert.rejects(
          store.putSa(0, epochs[0]!, 'stale', Buffer.from('y')),
          FencedWriteError,
          'the old tenure is fenced on the promoted replica',
        );
        assert.equal(await store.getSa(0, 'stale'), undefined, 'the fenced write wrote nothing');
        await store.putSa(0, taken.epoch, 'fresh', Buffer.from('z'));
        assert.deepEqual(await store.getSa(0, 'fresh'), new Uint8Array(Buffer.from('z')));
      } finally {
        await store.close().catch(() => undefined);
      }
    });
  },
);

/**
 * A replica that lags (stopped while 48 MiB of other writes queue for it) when the primary dies:
 * what Redis' asynchronous replication loses, and what WAIT keeps. Each run takes a topology of
 * its own (a failover leaves no replica behind).
 */
async function laggingReplicaFailover(replicaAcks: number): Promise<{
  ackedBeforeKill: number;
  lost: string[];
  rewritten: number;
  stats: string;
}> {
  const topo = await startSentinelTopology();
  if (typeof topo === 'string') throw new Error(topo);
  const store = storeOn(topo, replicaAcks);
  try {
    const epochs: number[] = [];
    for (let s = 0; s < 4; s++) {
      const g = await within(10_000, 'acquire', () => store.acquire(s, OWNER, LEASE_MS));
      assert.ok(g);
      epochs.push(g.epoch);
    }
    const [primary, replica] = topo.nodes as [RedisProcess, RedisProcess];
    assert.equal(await topo.primaryPort(), primary.port);
    const raw = await rawClient(primary.port);
    const acked = new Map<string, Buffer>();
    let rewritten = 0;
    let beforeKill = new Map<string, Buffer>();
    try {
      await replica.kill('SIGSTOP');
      // More than the loopback socket buffers hold: the rest waits in the primary's memory.
      await raw.set('ballast', Buffer.alloc(48 << 20, 0x5a));
      const deadline = Date.now() + 60_000;
      const writes = Array.from({ length: 40 }, async (_, i) => {
        const key = `lag-${i}`;
        for (let attempt = 0; ; attempt++) {
          assert.ok(Date.now() < deadline, `write ${key} not acknowledged in time`);
          const value = Buffer.from(`${key}#${attempt}`);
          try {
            await store.putSa(i % 4, epochs[i % 4]!, key, value);
            acked.set(key, value);
            return;
          } catch (e) {
            assert.ok(!(e instanceof FencedWriteError), String(e));
            rewritten++;
            await sleep(100);
          }
        }
      });
      // Writes without WAIT are acknowledged at once; with it, none is while the replica lags.
      for (let until = Date.now() + 300; acked.size < 40 && Date.now() < until;) await sleep(10);
      beforeKill = new Map(acked);
      await primary.kill('SIGKILL');
      await replica.kill('SIGCONT');
      await topo.waitForFailover(primary.port, 30_000);
      await Promise.all(writes);
    } finally {
      raw.disconnect();
      await replica.kill('SIGCONT');
    }
    const lost: string[] = [];
    for (const [key, value] of beforeKill) {
      const got = await within(10_000, 'getSa', () => store.getSa(Number(key.slice(4)) % 4, key));
      if (got === undefined || !Buffer.from(got).equals(value)) lost.push(key);
    }
    // Everything written in the end (again, after the switch, when it was not acknowledged).
    for (const [key, value] of acked) {
      const got = await within(10_000, 'getSa', () => store.getSa(Number(key.slice(4)) % 4, key));
      if (!beforeKill.has(key))
        assert.deepEqual(got && Buffer.from(got), value, `${key} written after the switch`);
    }
    return {
      ackedBeforeKill: beforeKill.size,
      lost,
      rewritten,
      stats: JSON.stringify(store.backend.replicaStats),
    };
  } finally {
    await store.close().catch(() => undefined);
    await topo.stop();
  }
}

describe(
  'RedisStore: the primary dies while its replica lags 48 MiB behind (Sentinel failover)',
  { skip },
  () => {
    test('replicaAcks 0 (asynchronous replication): writes acknowledged before the kill are missing on the promoted replica (the hazard, shown)', async (t) => {
      const r = await laggingReplicaFailover(0);
      t.diagnostic(
        `replicaAcks 0: ${r.lost.length} of ${r.ackedBeforeKill} acknowledged writes lost; ${r.stats}`,
      );
      assert.equal(r.ackedBeforeKill, 40, 'without WAIT every write is acknowledged at once');
      assert.ok(r.lost.length > 0, 'asynchronous replication lost acknowledged writes');
    });

    test('replicaAcks 1: no write is acknowledged until the replica has it, so none is lost; the unconfirmed ones are written again to the promoted replica', async (t) => {
      const r = await laggingReplicaFailover(1);
      t.diagnostic(
        `replicaAcks 1: ${r.lost.length} of ${r.ackedBeforeKill} acknowledged writes lost; ${r.rewritten} attempts written again; ${r.stats}`,
      );
      assert.deepEqual(r.lost, [], 'no acknowledged write lost');
      assert.ok(r.rewritten > 0, 'the writes the lagging replica did not confirm were written again');
    });
  },
);
