/**
 * Runs the one contract suite (testing/contract.ts) against MemoryStore on a simulated clock and
 * RedisStore on a real redis-server started for this file (skipped, with the reason, without one;
 * under CI=true a missing redis-server fails instead: @ikegate/testkit `requirement`).
 */
import { after } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis } from 'ioredis';
import { requirement } from '@ikegate/testkit';
import { leaseKey, MAX_TTL_MS, saKey } from './keys.js';
import { MemoryStore } from './memory.js';
import { type RedisConnection, RedisStore } from './redis.js';
import type { Keyring } from './seal.js';
import { type ContractOptions, realElapse, storeContract, type StoreUnderTest } from './testing/contract.js';
import { type RedisServer, startRedisServer } from './testing/redis-server.js';
import { type SentinelTopology, startSentinelTopology } from './testing/redis-sentinel.js';
import { type RedisClusterServers, startRedisCluster } from './testing/redis-cluster.js';

storeContract('MemoryStore', async (kek) => {
  let now = 1_000_000;
  const store = new MemoryStore({ kek, now: () => now });
  return {
    store,
    ttlMs: 200,
    elapse: async (ms) => {
      now += ms;
    },
    expireLease: async () => {
      now += MAX_TTL_MS + 1;
    },
    rawSa: async (shard, key) => store.backend.rawSa(shard, key),
    setRawSa: async (shard, key, bytes) => store.backend.setRawSa(shard, key, bytes),
    close: () => store.close(),
  } satisfies StoreUnderTest;
});

const server: RedisServer | string = await startRedisServer();
after(async () => {
  if (typeof server !== 'string') await server.stop();
});

const clusterServer: RedisServer | string = await startRedisServer('redis-server', { cluster: true });
after(async () => {
  if (typeof clusterServer !== 'string') await clusterServer.stop();
});

// Primary + replica + 3 sentinels (failover itself: sentinel.test.ts). The contract runs through
// the ioredis Sentinel client with every write confirmed by the replica (WAIT).
const sentinel: SentinelTopology | string = await startSentinelTopology();
after(async () => {
  if (typeof sentinel !== 'string') await sentinel.stop();
});
const sentinelPrimary: RedisServer | string =
  typeof sentinel === 'string' ? sentinel : { port: sentinel.nodes[0]!.port, stop: async () => {} };

// Three primaries, the slots split between them: keys of different shards live on different nodes.
const cluster3: RedisClusterServers | string = await startRedisCluster('redis-server', 3);
after(async () => {
  if (typeof cluster3 !== 'string') await cluster3.stop();
});
const cluster3Server: RedisServer | string =
  typeof cluster3 === 'string' ? cluster3 : { port: cluster3.nodes[0]!.port, stop: async () => {} };

/** The contract options for a Redis suite: skipped when its server did not start (a failure under CI). */
function redisOptions(server: RedisServer | string, propertyRuns: number): ContractOptions {
  const skip = requirement(typeof server === 'string' && server);
  return skip === false ? { propertyRuns } : { skip, propertyRuns };
}

function redisHarness(
  server: RedisServer | string,
  connect: (port: number) => RedisConnection,
  /** The client for the raw-bytes hooks; default a plain one (one node owns every slot). */
  rawClient: (port: number) => Redis | Cluster = (port) => new Redis({ host: '127.0.0.1', port }),
): (kek: Keyring) => Promise<StoreUnderTest> {
  return async (kek) => {
    if (typeof server === 'string') throw new Error(server);
    const raw = rawClient(server.port);
    if (raw instanceof Cluster) {
      await raw.ping(); // loads the slot map
      await Promise.all(raw.nodes('master').map((n) => n.flushdb()));
    } else await raw.flushdb();
    const store = new RedisStore({ connection: connect(server.port), kek });
    // ioredis retries a broken connection or cluster forever; fail this test in bounded time instead.
    const timer = new AbortController();
    const ready = await Promise.race([
      store.version().then(() => true),
      sleep(5000, false, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (!ready) {
      store.backend.client.disconnect();
      raw.disconnect();
      throw new Error('RedisStore did not answer within 5 s');
    }
    return {
      store,
      ttlMs: 200,
      elapse: realElapse,
      expireLease: async (shard) => {
        await raw.del(leaseKey(shard));
      },
      rawSa: async (shard, key) => {
        const v = await raw.getBuffer(saKey(shard, key));
        return v === null ? undefined : new Uint8Array(v);
      },
      setRawSa: async (shard, key, bytes) => {
        await raw.set(saKey(shard, key), Buffer.from(bytes));
      },
      close: async () => {
        await store.close();
        await raw.quit();
      },
    } satisfies StoreUnderTest;
  };
}

storeContract(
  'RedisStore (standalone redis-server)',
  redisHarness(server, (port) => ({ host: '127.0.0.1', port })),
  redisOptions(server, 40),
);

storeContract(
  'RedisStore (one-node Redis Cluster, ioredis Cluster client)',
  redisHarness(clusterServer, (port) => ({ nodes: [{ host: '127.0.0.1', port }] })),
  redisOptions(clusterServer, 20),
);

// A sharded server behind one address (a proxy, a sharded managed database): a plain client, and
// scripts over keys of several slots answered with CROSSSLOT. renewMany and owners() fall back to
// key-by-key calls after the first such answer.
storeContract(
  'RedisStore (one-node Redis Cluster through a plain client: multi-slot scripts refused with CROSSSLOT)',
  redisHarness(clusterServer, (port) => ({ host: '127.0.0.1', port })),
  redisOptions(clusterServer, 10),
);

storeContract(
  'RedisStore (Sentinel: primary + replica, ioredis Sentinel client, replicaAcks 1)',
  redisHarness(sentinelPrimary, () => {
    if (typeof sentinel === 'string') throw new Error(sentinel);
    return { sentinels: sentinel.sentinels, name: sentinel.name, replicaAcks: 1 };
  }),
  redisOptions(sentinelPrimary, 20),
);

storeContract(
  'RedisStore (Redis Cluster of 3 primaries, ioredis Cluster client)',
  redisHarness(
    cluster3Server,
    () => {
      if (typeof cluster3 === 'string') throw new Error(cluster3);
      return { nodes: cluster3.nodes };
    },
    () => {
      if (typeof cluster3 === 'string') throw new Error(cluster3);
      return new Cluster(cluster3.nodes.map((n) => ({ host: n.host, port: n.port })));
    },
  ),
  redisOptions(cluster3Server, 20),
);
