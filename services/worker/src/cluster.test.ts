import { type TestContext, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { defaultProvider } from '@ikegate/crypto';
import { MemoryStore, RedisStore } from '@ikegate/store';
import { Redis } from 'ioredis';
import { createLogger, Metrics } from '@ikegate/telemetry';
import {
  HANDOFF_POLL_MS,
  TAKE_RETRY_MS,
  MEMBER_FULL_SCAN_MS,
  type MemberInfo,
  type Membership,
  RedisMembership,
  ShardOwner,
} from './cluster.js';
import { startRedisServer } from '../../../libs/store/src/testing/redis-server.js';
import { Worker } from './worker.js';

const SHARDS = 16;

/** Membership in memory, with the drain flags the control API sets in Redis. */
class Members implements Membership {
  readonly records = new Map<string, MemberInfo>();
  readonly drained = new Set<string>();
  async heartbeat(info: MemberInfo): Promise<void> {
    this.records.set(info.id, info);
  }
  async leave(id: string): Promise<void> {
    this.records.delete(id);
  }
  async list(): Promise<MemberInfo[]> {
    return [...this.records.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
  }
  async draining(id: string): Promise<boolean> {
    return this.drained.has(id);
  }
}

function owner(
  id: string,
  store: MemoryStore,
  members: Members,
  metrics = new Metrics({ processMetrics: false }),
  /** SAs each dropped shard counts as (rebalance pacing), instead of the SAs the worker held. */
  sasPerShard?: number,
): ShardOwner {
  const log = createLogger({ destination: new PassThrough(), level: 'silent' });
  const worker = new Worker(
    {
      provider: defaultProvider,
      policy: { localId: 'gw.example.org', ikeProposals: [], espProposals: [], localTs: [], remoteTs: [] },
      matchPeer: () => undefined,
      layout: { shardBits: 4 },
      ikeLifetimeSeconds: 3600,
      childLifetimeSeconds: 3600,
      rekeyMarginSeconds: 60,
      dpdSeconds: 0,
    },
    { send: () => 'sent' },
    log,
    metrics,
  );
  if (sasPerShard !== undefined) {
    const drop = worker.dropShard.bind(worker);
    worker.dropShard = (shard) => (drop(shard), sasPerShard);
  }
  return new ShardOwner({
    workerId: id,
    relay: `${id}:1`,
    admin: `${id}:2`,
    store,
    members,
    worker,
    shardCount: SHARDS,
    leaseTtlMs: 60_000,
    log,
    metrics,
    configVersion: () => 7,
  });
}

test('a drained worker releases every shard to the others and takes none until undrained (issue #10 drain)', async () => {
  const store = new MemoryStore({
    kek: { current: { id: 1, key: new Uint8Array(32).fill(1) } },
    now: Date.now,
    shardCount: SHARDS,
  });
  const members = new Members();
  const a = owner('w1', store, members);
  const b = owner('w2', store, members);
  const round = async () => {
    for (let i = 0; i < 3; i++) {
      await a.tick();
      await b.tick();
    }
  };
  await round();
  assert.equal(a.owned.size + b.owned.size, SHARDS);
  assert.ok(a.owned.size > 0 && b.owned.size > 0, 'both hold shards');
  assert.equal(members.records.get('w1')?.configVersion, 7, 'the applied config version is published');

  members.drained.add('w1');
  await round();
  assert.equal(a.draining, true);
  assert.equal(members.records.get('w1')?.draining, true);
  assert.equal(a.owned.size, 0, 'w1 holds nothing');
  assert.equal(b.owned.size, SHARDS, 'w2 holds everything');

  members.drained.add('w2');
  await round();
  assert.equal(
    a.owned.size + b.owned.size,
    SHARDS,
    'every worker drained: draining means nothing, no shard is dropped',
  );

  members.drained.clear();
  await round();
  assert.equal(a.draining, false);
  assert.ok(a.owned.size > 0, 'undrained: w1 takes shards again');
  assert.equal(a.owned.size + b.owned.size, SHARDS);
  await a.stop();
  await b.stop();
});

/** The MemoryStore with its SA removals held until `open()` (a slow or stalled Redis). */
class GatedStore extends MemoryStore {
  #gate: Promise<void> = new Promise(() => undefined);
  #open: () => void = () => undefined;
  constructor() {
    super({
      kek: { current: { id: 1, key: new Uint8Array(32).fill(1) } },
      now: Date.now,
      shardCount: SHARDS,
    });
    this.shut();
  }
  shut(): void {
    this.#gate = new Promise((r) => (this.#open = r));
  }
  open(): void {
    this.#open();
  }
  override async deleteSa(shard: number, epoch: number, key: string): Promise<void> {
    await this.#gate;
    return super.deleteSa(shard, epoch, key);
  }
}

test('write-ahead: durable(spi) resolves only once the SA change is in the store, at once when nothing is pending, and after DURABLE_WAIT_MS (counted) when the store does not answer (issue #11)', async () => {
  const store = new GatedStore();
  const metrics = new Metrics({ processMetrics: false });
  const a = owner('w1', store as MemoryStore, new Members(), metrics);
  await a.tick();
  assert.equal(a.owned.size, SHARDS);
  assert.equal(a.durable('00000000000000aa'), undefined, 'nothing pending: no wait');

  a.gone('00000000000000aa', 3);
  let done = false;
  const wait = a.durable('00000000000000aa')!.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(done, false, 'held while the write is not done');
  store.open();
  await wait;
  assert.equal(done, true, 'released by the write');
  assert.equal(a.durable('00000000000000aa'), undefined);

  // A store that never answers: the wait ends after DURABLE_WAIT_MS, counted.
  store.shut();
  a.gone('00000000000000bb', 4);
  const started = Date.now();
  await a.durable('00000000000000bb');
  assert.ok(Date.now() - started >= 900, 'waited for the bound');
  assert.match(await metrics.render(), /ikegate_store_durable_timeouts_total 1/);
  store.open();
  await a.stop();
});

/** The MemoryStore counting lease-version reads (the lease watch's polls) per worker, and rounds. */
class CountingStore extends MemoryStore {
  readonly #versionReads = new Map<string, number>();
  /** Lease-table reads: one per placement round, whoever runs it. */
  tableReads = 0;
  /** Workers whose next lease-table read fails (a round that throws). */
  readonly failNextRound = new Set<string>();
  /** Acquires wait for this while set (a slow store). */
  acquireGate: Promise<void> | undefined;
  /** `${worker}:${method}` -> calls of that worker to that method wait for it (a slow store). */
  readonly gates = new Map<string, Promise<void>>();
  /** Shards whose next SA listing fails (an unreadable shard), and the listings asked for. */
  readonly failListShard = new Set<number>();
  readonly listShardCalls = new Map<number, number>();
  override async owners(): ReturnType<MemoryStore['owners']> {
    this.tableReads++;
    return super.owners();
  }
  override async listShard(...a: Parameters<MemoryStore['listShard']>): ReturnType<MemoryStore['listShard']> {
    const [shard] = a;
    this.listShardCalls.set(shard, (this.listShardCalls.get(shard) ?? 0) + 1);
    if (this.failListShard.delete(shard)) throw new Error('shard unreadable (test)');
    return super.listShard(...a);
  }
  /** The store as worker `id` uses it: its version reads counted under its name. */
  as(id: string): MemoryStore {
    return new Proxy(this, {
      get: (target, key) => {
        if (key === 'version')
          return () => {
            this.#versionReads.set(id, this.versionReads(id) + 1);
            return target.version();
          };
        if (key === 'acquire' && this.acquireGate) {
          const gate = this.acquireGate;
          return async (...a: Parameters<MemoryStore['acquire']>) => (await gate, target.acquire(...a));
        }
        const gate = typeof key === 'string' ? this.gates.get(`${id}:${key}`) : undefined;
        if (gate) {
          const f = Reflect.get(target, key, target) as (...a: unknown[]) => Promise<unknown>;
          return async (...a: unknown[]) => (await gate, f.apply(target, a));
        }
        if (key === 'owners' && this.failNextRound.delete(id))
          return () => Promise.reject(new Error('store unavailable (test)'));
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }
  versionReads(id: string): number {
    return this.#versionReads.get(id) ?? 0;
  }
}

/** A CountingStore of SHARDS shards. */
function countingStore(): CountingStore {
  return new CountingStore({
    kek: { current: { id: 1, key: new Uint8Array(32).fill(1) } },
    now: Date.now,
    shardCount: SHARDS,
  });
}

/**
 * w1 started alone until it holds every shard, then settled: its acquires moved the lease
 * version, so its watch runs one more round, which finds nothing; after that nothing runs a round
 * of w1's before its periodic one (20 s) or a kick.
 */
async function soloOwner(store: CountingStore, members: Members, sasPerShard?: number): Promise<ShardOwner> {
  const a = owner('w1', store.as('w1'), members, undefined, sasPerShard);
  a.start();
  assert.ok(await until(() => a.owned.size === SHARDS, 5000), 'w1 alone holds every shard');
  await new Promise((r) => setTimeout(r, 5 * HANDOFF_POLL_MS));
  return a;
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  return cond();
}

/** w1 holding every shard, then w2 started beside it: w2's plan awaits shards a live member holds. */
async function handoffPair(): Promise<{ store: CountingStore; a: ShardOwner; b: ShardOwner }> {
  const store = countingStore();
  const members = new Members();
  // leaseTtlMs 60 s: periodic rounds every 20 s, so anything quicker is the hand-off watch.
  const a = await soloOwner(store, members);
  const b = owner('w2', store.as('w2'), members);
  b.start();
  return { store, a, b };
}

test('rebalance hand-off: a joining worker takes each shard as soon as its live holder releases it, not a tick (lease TTL / 3) later; then, with no lease moving, the watch only reads the version', async () => {
  const { store, a, b } = await handoffPair();
  assert.ok(await until(() => store.versionReads('w2') > 2, 5000), 'w2 watches the lease version');
  assert.equal(b.owned.size, 0, 'w2 waits: a live member holds every shard');
  a.kick(); // w1's round (as its periodic one would): it releases the shards the plan moved
  assert.ok(
    await until(() => a.owned.size + b.owned.size === SHARDS && b.owned.size === SHARDS / 2, 5000),
    `w2 took its half well before its next periodic round: w1 ${a.owned.size}, w2 ${b.owned.size}`,
  );
  // Settled (the round after the last change found nothing more): polls, but no round.
  await new Promise((r) => setTimeout(r, 500));
  const [reads, tables] = [store.versionReads('w2'), store.tableReads];
  await new Promise((r) => setTimeout(r, 500));
  const polls = store.versionReads('w2') - reads;
  assert.ok(polls >= 2 && polls <= 500 / HANDOFF_POLL_MS + 2, `w2's version polls in 500 ms: ${polls}`);
  assert.equal(store.tableReads, tables, 'no round while no lease moved');
  await a.stop();
  await b.stop();
});

/** w1 and w2 started together, each holding half of the shards once balanced. */
async function balancedPair(): Promise<{
  store: CountingStore;
  members: Members;
  a: ShardOwner;
  b: ShardOwner;
}> {
  const store = countingStore();
  const members = new Members();
  const a = owner('w1', store.as('w1'), members);
  const b = owner('w2', store.as('w2'), members);
  a.start();
  b.start();
  assert.ok(
    await until(() => a.owned.size === SHARDS / 2 && b.owned.size === SHARDS / 2, 5000),
    `balanced: w1 ${a.owned.size}, w2 ${b.owned.size}`,
  );
  // The rounds the last acquires started (each worker's watch sees the version move) find nothing.
  await new Promise((r) => setTimeout(r, 10 * HANDOFF_POLL_MS));
  return { store, members, a, b };
}

test("drain hand-off: the other worker takes a drained worker's shards within a poll of their release, though its own last round came before the drain", async () => {
  const { store, members, a, b } = await balancedPair();
  // Settled: no lease moves, so the watch reads only the version and starts no round.
  const [reads, tables] = [store.versionReads('w2'), store.tableReads];
  await new Promise((r) => setTimeout(r, 1000));
  const polls = store.versionReads('w2') - reads;
  assert.ok(polls >= 3 && polls <= 1000 / HANDOFF_POLL_MS + 2, `w2's version polls in 1 s: ${polls}`);
  assert.equal(store.tableReads, tables, 'no round while no lease moved');
  // The operator drains w1; w1's round (as its periodic one would) releases every shard at once.
  // w2's last round saw w1 serving, so nothing told it to wait for these shards.
  members.drained.add('w1');
  a.kick();
  assert.ok(
    await until(() => b.owned.size === SHARDS, 5000),
    `w2 took the drained shards well before its next periodic round (20 s): w1 ${a.owned.size}, w2 ${b.owned.size}`,
  );
  await a.stop();
  await b.stop();
});

test('shutdown hand-off: a stopping worker releases its shards and leaves; the other takes them within a poll, not at its next periodic round', async () => {
  const { a, b } = await balancedPair();
  await a.stop();
  assert.ok(
    await until(() => b.owned.size === SHARDS, 5000),
    `w2 took the shards of the worker that left: ${b.owned.size} of ${SHARDS}`,
  );
  await b.stop();
});

test('rebalance hand-off: stop() while the watch polls ends it (no version reads after stop, no round started by a poll in flight)', async () => {
  const { store, a, b } = await handoffPair();
  const before = store.versionReads('w2');
  assert.ok(
    await until(() => store.versionReads('w2') > before + 2, 5000),
    'w2 is polling (w1 never releases)',
  );
  await b.stop();
  const stopped = store.versionReads('w2');
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(store.versionReads('w2'), stopped, 'no poll after stop');
  assert.equal(b.owned.size, 0);
  await a.stop();
});

/**
 * Runs `body` with a real redis-server and a connected client, both stopped after it. Without
 * redis-server the test is skipped, and fails under CI=true.
 */
async function withRedis(
  t: TestContext,
  body: (port: number, client: Redis) => Promise<void>,
): Promise<void> {
  const redis = await startRedisServer();
  if (typeof redis === 'string') {
    if (process.env.CI) assert.fail(`CI must run this: ${redis}`);
    t.skip(redis);
    return;
  }
  const client = new Redis({ host: '127.0.0.1', port: redis.port, lazyConnect: true });
  try {
    await client.connect();
    await body(redis.port, client);
  } finally {
    client.disconnect();
    await redis.stop();
  }
}

test('drain flag (control API, real Redis): a drain moves the lease version (what the lease watches compare); an undrain does not (the preStop hook undrains for a successor while the old process still runs)', async (t) => {
  await withRedis(t, async (port, client) => {
    const store = new RedisStore({
      connection: { host: '127.0.0.1', port },
      kek: { current: { id: 1, key: new Uint8Array(32).fill(1) } },
      shardCount: SHARDS,
    });
    try {
      const members = new RedisMembership(client);
      const v0 = await store.version();
      assert.equal(await members.setDraining('w1', true, 'test'), true);
      assert.equal(await members.draining('w1'), true);
      assert.equal(await store.version(), v0 + 1, 'a drain moves the version');
      assert.equal(await members.setDraining('w1', false, 'test'), true);
      assert.equal(await members.draining('w1'), false);
      assert.equal(await store.version(), v0 + 1, 'an undrain leaves it');
      assert.equal(await members.setDraining('w1', false, 'test'), false);
    } finally {
      await store.close();
    }
  });
});

test('lease watch after a failed round: a round that throws (the lease table unreadable) is run again once the store answers, not at the next periodic round', async () => {
  const { store, members, a, b } = await balancedPair();
  store.failNextRound.add('w2');
  members.drained.add('w1');
  a.kick(); // releases every shard: w2's watch runs a round, which fails
  assert.ok(await until(() => !store.failNextRound.has('w2'), 5000), "w2's round ran and failed");
  assert.ok(
    await until(() => b.owned.size === SHARDS, 5000),
    `w2 took the drained shards after its failed round: ${b.owned.size} of ${SHARDS}`,
  );
  await a.stop();
  await b.stop();
});

test('rebalance pacing: a worker sheds at most MAX_REBALANCE_SAS_PER_INTERVAL SAs for balance per periodic interval, though the lease watch runs a round after each release', async () => {
  const store = countingStore();
  const members = new Members();
  // Every shard counts as 600 SAs: 2 shards (1,200 SAs) reach the 1,000 of an interval.
  const a = await soloOwner(store, members, 600);
  const b = owner('w2', store.as('w2'), members, undefined, 600);
  b.start();
  await until(() => members.records.has('w2'), 5000);
  await a.tick(); // w1's periodic round: it releases 2 shards to w2 and stops for this interval
  assert.ok(await until(() => b.owned.size === 2, 5000), `w2 took the first 2: ${b.owned.size}`);
  // Each acquire and release moved the version: both watches ran rounds; w1's must not shed more.
  await new Promise((r) => setTimeout(r, 10 * HANDOFF_POLL_MS));
  assert.equal(b.owned.size, 2, 'still 2 within the interval (20 s): the next share waits for the next one');
  assert.equal(a.owned.size, SHARDS - 2);
  await a.stop();
  await b.stop();
});

test('undrain: a round the lease watch runs keeps a drained worker drained; only its periodic round takes the undrain (the preStop hook undrains for a successor while the old process still runs)', async () => {
  const { members, a, b } = await balancedPair();
  members.drained.add('w1');
  a.kick();
  assert.ok(await until(() => b.owned.size === SHARDS, 5000), 'w2 holds everything');
  assert.equal(members.records.get('w1')?.draining, true);
  members.drained.delete('w1');
  a.kick(); // a round the watch would start (any lease moving in the cluster)
  await until(() => !a.draining, 10 * HANDOFF_POLL_MS);
  assert.equal(a.draining, true, 'still draining after a kicked round');
  assert.equal(members.records.get('w1')?.draining, true, 'and announced so: nobody plans shards for it');
  await a.tick(); // its periodic round
  assert.equal(a.draining, false);
  assert.equal(members.records.get('w1')?.draining, undefined, 'serving again');
  await a.stop();
  await b.stop();
});

test('stop() while a round is acquiring: a lease granted after stop() released the others is handed back at once, not left to a holder that left', async () => {
  const store = countingStore();
  let open!: () => void;
  store.acquireGate = new Promise<void>((r) => (open = r));
  const members = new Members();
  const a = owner('w1', store.as('w1'), members);
  a.start(); // its first round waits in acquire
  await until(() => members.records.has('w1'), 5000);
  await a.stop();
  open();
  await new Promise((r) => setTimeout(r, 200));
  const held = [...(await store.owners()).values()].filter((l) => l.owner === 'w1');
  assert.deepEqual(held, [], 'no lease left with the stopped worker');
  assert.equal(a.owned.size, 0);
});

/** SCAN calls the Redis server ran so far (INFO commandstats). */
async function scans(client: Redis): Promise<number> {
  return Number(/^cmdstat_scan:calls=(\d+)/m.exec(await client.info('commandstats'))?.[1] ?? 0);
}

test('membership (real Redis): list() reads the member index, not the keyspace; a member that writes no index entry (an older version) is found by the full scan and indexed; an expired or departed one leaves the index', async (t) => {
  await withRedis(t, async (_port, client) => {
    // Keys of other kinds around (SA records): the index makes them cost nothing.
    await client.mset(
      ...Array.from({ length: 2000 }, (_, i) => [`ikegate:{s${i % 16}}:sa:k${i}`, 'x']).flat(),
    );
    const secret = new Uint8Array(32).fill(5);
    const members = new RedisMembership(client, undefined, { secret });
    const other = new RedisMembership(client, undefined, { secret }); // another process
    await members.heartbeat({ id: 'w1', relay: 'r1', admin: 'a1' }, 60_000);
    await other.heartbeat({ id: 'w2', relay: 'r2', admin: 'a2' }, 60_000);
    // An older worker: its record (sealed like ours) but no index entry.
    const legacy = new RedisMembership(client, 'ikegate:member:', { secret });
    await legacy.heartbeat({ id: 'w0', relay: 'r0', admin: 'a0' }, 60_000);
    await client.srem('ikegate:member-index', 'w0');

    const s0 = await scans(client);
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w0', 'w1', 'w2'],
      'the first list scans',
    );
    assert.ok((await scans(client)) > s0);
    assert.deepEqual(await client.smembers('ikegate:member-index').then((l) => l.sort()), ['w0', 'w1', 'w2']);
    // It found a record without an entry: the next list scans again, and finds none missing.
    const s1 = await scans(client);
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w0', 'w1', 'w2'],
    );
    assert.ok((await scans(client)) > s1, 'scanned again after finding an unindexed record');
    const s2 = await scans(client);
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w0', 'w1', 'w2'],
    );
    assert.equal(await scans(client), s2, `then no SCAN within ${MEMBER_FULL_SCAN_MS} ms of the last`);

    await client.del('ikegate:member:w2'); // w2's record expires
    await members.leave('w0');
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w1'],
    );
    assert.deepEqual(
      await client.smembers('ikegate:member-index'),
      ['w1'],
      'expired and departed ids dropped',
    );
    assert.equal(await scans(client), s2);

    // w2 heartbeats again between a list's read of the records and its SREM of w2 (w2's SADD finds
    // the id still indexed): w2 must stay in the index.
    await client.sadd('ikegate:member-index', 'w2');
    const racy = new Proxy(client, {
      get: (target, key) => {
        if (key === 'srem')
          return async (...a: Parameters<Redis['srem']>) => {
            await other.heartbeat({ id: 'w2', relay: 'r2', admin: 'a2' }, 60_000);
            return target.srem(...a);
          };
        const v = Reflect.get(target, key, target) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const third = new RedisMembership(racy, undefined, { secret });
    await third.list();
    assert.deepEqual(
      await client.smembers('ikegate:member-index').then((l) => l.sort()),
      ['w1', 'w2'],
      'a member whose record came back during the SREM is indexed again',
    );
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w1', 'w2'],
    );
    assert.throws(() => new RedisMembership(client, 'ikegate:member'), /must end with ':'/);

    // Edges keep their own index under their prefix.
    const edges = new RedisMembership(client, 'ikegate:edge:', { secret });
    await edges.heartbeat({ id: 'e1', relay: '', admin: 'a' }, 60_000);
    assert.deepEqual(
      (await edges.list()).map((m) => m.id),
      ['e1'],
    );
    // Nobody lists the edges' index but the control API, on request: the heartbeats of the live
    // edges drop crashed ones (their records expired) from it, at most once per pruneEveryMs.
    const crashed = new RedisMembership(client, 'ikegate:edge:', { secret, pruneEveryMs: Infinity });
    await crashed.heartbeat({ id: 'e2', relay: '', admin: 'b' }, 60_000);
    await client.del('ikegate:edge:e2'); // e2 crashed and its record expired
    await edges.heartbeat({ id: 'e1', relay: '', admin: 'a' }, 60_000);
    assert.deepEqual(
      (await client.smembers('ikegate:edge-index')).sort(),
      ['e1', 'e2'],
      `not again within ${MEMBER_FULL_SCAN_MS} ms of its first heartbeat's prune`,
    );
    const pruning = new RedisMembership(client, 'ikegate:edge:', { secret, pruneEveryMs: 0 });
    await pruning.heartbeat({ id: 'e3', relay: '', admin: 'c' }, 60_000);
    // The prune runs beside the heartbeat (not awaited by it): within a few round trips.
    for (let i = 0; i < 100 && (await client.sismember('ikegate:edge-index', 'e2')); i++)
      await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(
      (await client.smembers('ikegate:edge-index')).sort(),
      ['e1', 'e3'],
      "a heartbeat's prune dropped the crashed edge, with no list()",
    );
    await pruning.leave('e3');
    assert.deepEqual(await client.smembers('ikegate:edge-index'), ['e1']);
    assert.deepEqual(
      (await members.list()).map((m) => m.id),
      ['w1', 'w2'],
    );
  });
});

test('undrain while a watch round runs: the periodic round asked for meanwhile is not lost, it runs right after (and takes the undrain)', async () => {
  const { store, members, a, b } = await balancedPair();
  members.drained.add('w1');
  a.kick();
  assert.ok(await until(() => b.owned.size === SHARDS, 5000), 'w2 holds everything');
  members.drained.delete('w1');
  let open!: () => void;
  store.gates.set('w1:owners', new Promise<void>((r) => (open = r)));
  a.kick(); // a watch round, held in its lease-table read
  await new Promise((r) => setTimeout(r, 2 * HANDOFF_POLL_MS));
  const periodic = a.tick(); // the periodic timer fires meanwhile
  store.gates.delete('w1:owners');
  open();
  await periodic;
  assert.ok(await until(() => !a.draining, 5000), 'undrained by the periodic round that ran after');
  await a.stop();
  await b.stop();
});

test('stop() while a round renews: a lapsed lease is not re-acquired by the stopped worker, and its member record is not written again', async () => {
  const store = countingStore();
  const members = new Members();
  const a = await soloOwner(store, members);
  let open!: () => void;
  store.gates.set('w1:renewMany', new Promise<void>((r) => (open = r)));
  const round = a.tick(); // its periodic round, held in the renewal
  await new Promise((r) => setTimeout(r, HANDOFF_POLL_MS));
  await a.stop(); // releases every lease and leaves
  store.gates.delete('w1:renewMany');
  open(); // the renewals are refused: the leases are free, the next epoch is there to take
  await round;
  await new Promise((r) => setTimeout(r, 2 * HANDOFF_POLL_MS));
  const held = [...(await store.owners()).values()].filter((l) => l.owner === 'w1');
  assert.deepEqual(held, [], 'no lease taken again by the stopped worker');
  assert.equal(members.records.has('w1'), false, 'not a member again');
});

test('stop() while a heartbeat is in flight: the record it writes after stop() left the member set is removed again (the others would plan shards for it until it lapsed)', async () => {
  let open!: () => void;
  const gate = new Promise<void>((r) => (open = r));
  class SlowMembers extends Members {
    override async heartbeat(info: MemberInfo): Promise<void> {
      await gate;
      return super.heartbeat(info);
    }
  }
  const store = countingStore();
  const members = new SlowMembers();
  const a = owner('w1', store.as('w1'), members);
  const beat = a.heartbeat(); // held until the gate opens
  await a.stop();
  open();
  await beat;
  assert.equal(members.records.has('w1'), false, 'no member record after stop()');
});

test('a shard whose SAs cannot be read is not kept: its lease goes back (counted, logged), the round goes on, and a round after TAKE_RETRY_MS takes it with its SAs, where the lease used to be renewed with the SAs never adopted until a restart', async () => {
  const store = countingStore();
  const metrics = new Metrics({ processMetrics: false });
  const a = owner('w1', store.as('w1'), new Members(), metrics);
  store.failListShard.add(3);
  await a.tick(); // does not throw: the other shards' takes and the round are not failed by it
  assert.equal(a.owned.size, SHARDS - 1, 'every other shard is taken in the same round');
  assert.equal(a.owned.has(3), false, 'the unreadable shard is not held');
  assert.equal((await store.owners()).get(3), undefined, 'its lease was handed back');
  assert.match(await metrics.render(), /ikegate_shard_take_failures_total\{stage="list"\} 1/);
  await a.tick();
  assert.equal(store.listShardCalls.get(3), 1, 'not tried again before its retry time');
  await new Promise((r) => setTimeout(r, TAKE_RETRY_MS + 50));
  await a.tick();
  assert.equal(a.owned.has(3), true, 'the first round after it takes it');
  assert.equal(store.listShardCalls.get(3), 2, 'and reads its SAs again (to adopt them)');
  await a.stop();
});

test('a started worker retries a shard whose listing failed after TAKE_RETRY_MS, not at its next periodic round (a third of the lease TTL: 20 s here)', async () => {
  const store = countingStore();
  const a = owner('w1', store.as('w1'), new Members());
  store.failListShard.add(3);
  a.start();
  try {
    assert.ok(await until(() => (store.listShardCalls.get(3) ?? 0) >= 1, 5000), 'the first take failed');
    assert.ok(
      await until(() => a.owned.size === SHARDS, TAKE_RETRY_MS + 2000),
      `retried and taken: ${a.owned.size} of ${SHARDS}, listings of shard 3: ${store.listShardCalls.get(3)}`,
    );
  } finally {
    await a.stop();
  }
});

test('stop() while listings fail: the leases being listed are released all the same', async () => {
  const store = countingStore();
  const a = owner('w1', store.as('w1'), new Members());
  for (let s = 0; s < SHARDS; s++) store.failListShard.add(s);
  let open!: () => void;
  store.gates.set('w1:listShard', new Promise<void>((r) => (open = r)));
  const round = a.tick();
  await new Promise((r) => setTimeout(r, 2 * HANDOFF_POLL_MS));
  const stopping = a.stop();
  store.gates.delete('w1:listShard');
  open(); // the listings fail while stop() flushes
  await stopping;
  await round;
  const held = [...(await store.owners()).values()].filter((l) => l.owner === 'w1');
  assert.deepEqual(held, [], 'no lease left to the stopped worker');
});

test("stop() while a round reads a shard's SAs: the shard's lease is released before stop() returns (the caller closes the store next), not left to a holder that left", async () => {
  const store = countingStore();
  const a = owner('w1', store.as('w1'), new Members());
  let open!: () => void;
  store.gates.set('w1:listShard', new Promise<void>((r) => (open = r)));
  const round = a.tick(); // every take holds in its listing
  await new Promise((r) => setTimeout(r, 2 * HANDOFF_POLL_MS));
  const granted = [...(await store.owners()).values()].filter((l) => l.owner === 'w1').length;
  assert.equal(granted, SHARDS, 'the round holds every lease, reading the SAs');
  await a.stop();
  const held = [...(await store.owners()).values()].filter((l) => l.owner === 'w1');
  assert.deepEqual(held, [], 'no lease held by the stopped worker when stop() returned');
  store.gates.delete('w1:listShard');
  open();
  await round;
  assert.equal(a.owned.size, 0);
});

test('a round asked for while the running round fails (a member seen dead, a drain) still runs, not lost with the failure', async () => {
  const store = countingStore();
  const a = owner('w1', store.as('w1'), new Members());
  await a.tick();
  let fail!: (e: Error) => void;
  store.gates.set('w1:owners', new Promise<void>((_, reject) => (fail = reject)));
  const round = a.tick(); // held in its lease-table read, then failed there
  await new Promise((r) => setTimeout(r, 2 * HANDOFF_POLL_MS));
  a.kick(); // news meanwhile: another round is wanted
  const tables = store.tableReads;
  store.gates.delete('w1:owners');
  fail(new Error('store unavailable (test)'));
  await round; // the later round succeeded: no failure to report
  assert.equal(store.tableReads, tables + 1, 'the round asked for ran after the failed one');
  await a.stop();
});

test('a takeover adopts the records of a shard it can open and counts the ones it cannot (a KEK not in its keyring, a tampered value), instead of leaving the whole shard unserved for one record', async () => {
  const store = countingStore();
  const metrics = new Metrics({ processMetrics: false });
  const before = await store.acquire(3, 'w0', 60_000);
  assert.ok(before);
  await store.putSa(3, before.epoch, 'ike:a', new TextEncoder().encode('sealed, but no snapshot'));
  store.backend.setRawSa(3, 'ike:b', new TextEncoder().encode('not sealed with any KEK here'));
  await store.release(3, 'w0', before.epoch);
  const a = owner('w1', store.as('w1'), new Members(), metrics);
  await a.tick();
  assert.equal(a.owned.has(3), true, 'the shard is taken');
  const text = await metrics.render();
  assert.match(text, /ikegate_drops_total\{layer="store",reason="unreadable_record"\} 1/);
  assert.match(text, /ikegate_drops_total\{layer="store",reason="bad_snapshot"\} 1/);
  assert.match(text, /ikegate_shard_take_failures_total\{stage="list"\} 0/);
  await a.stop();
});
