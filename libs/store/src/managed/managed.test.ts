/**
 * The managed configuration store: the one contract suite (testing/managed-contract.ts) against
 * FileManagedStore (memory only, and on a state file) and RedisManagedStore on a real redis-server
 * (standalone, and a one-node Redis Cluster through the ioredis Cluster client), then what only one
 * implementation has: the state file's format and checks, PSKs sealed at rest in Redis, the key
 * layout, and the follower's behaviour when the store fails. Redis suites skip without redis-server,
 * and fail instead under CI=true (@ikegate/testkit `requirement`).
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from '@ikegate/telemetry';
import { requirement } from '@ikegate/testkit';
import { LocalUsageError, SealedValueError } from '../errors.js';
import { Sealer } from '../seal.js';
import { KEK_A, KEK_C } from '../testing/contract.js';
import {
  FAILOVER,
  type ManagedContractOptions,
  type ManagedHarnessOptions,
  managedStoreContract,
  type ManagedStoreUnderTest,
  plain,
  pskPeer,
  SEED,
  until,
  withoutSubscribe,
} from '../testing/managed-contract.js';
import { type RedisServer, startRedisServer } from '../testing/redis-server.js';
import { FileManagedStore } from './file.js';
import { type FollowerLog, type ManagedChangeEvent, ManagedFollower } from './follower.js';
import { DEFAULT_MANAGED_CHANNEL, MANAGED_KEYS, RedisManagedStore } from './redis.js';
import type { ManagedStore } from './types.js';

// A pino Logger from @ikegate/telemetry is a FollowerLog.
const _loggerFits: Logger extends FollowerLog ? true : never = true;
void _loggerFits;

// Both servers start before any suite is declared: node:test starts running suites declared
// before a top-level await, and may end the file's root (running its after hooks, which stop
// the servers) before suites declared after the await have run.
const server: RedisServer | string = await startRedisServer();
const clusterServer: RedisServer | string = await startRedisServer('redis-server', { cluster: true });
after(async () => {
  if (typeof server !== 'string') await server.stop();
  if (typeof clusterServer !== 'string') await clusterServer.stop();
});

const tempDirs: string[] = [];
after(async () => {
  await Promise.all(tempDirs.map((d) => rm(d, { recursive: true, force: true })));
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'ikegate-managed-'));
  tempDirs.push(d);
  return d;
}

managedStoreContract('FileManagedStore (memory only)', async (o) => {
  const store = await FileManagedStore.open(null, o);
  return { store, another: async () => store, close: () => store.close() } satisfies ManagedStoreUnderTest;
});

managedStoreContract('FileManagedStore (state file)', async (o) => {
  const path = join(await tempDir(), 'managed-state.json');
  let current = await FileManagedStore.open(path, o);
  return {
    store: current,
    another: async () => current,
    reopen: async () => {
      await current.close();
      current = await FileManagedStore.open(path, o);
      return current;
    },
    close: () => current.close(),
  } satisfies ManagedStoreUnderTest;
});

function redisOptions(s: RedisServer | string, propertyRuns: number): ManagedContractOptions {
  const skip = requirement(typeof s === 'string' && s);
  return skip === false ? { propertyRuns } : { skip, propertyRuns };
}

/** Stores on one redis-server, each on its own client (as separate processes); all closed at the end. */
class RedisHarness {
  readonly raw: Redis;
  readonly clients: (Redis | Cluster)[] = [];
  readonly stores: RedisManagedStore[] = [];

  constructor(
    readonly port: number,
    readonly cluster: boolean,
  ) {
    // One node owns every slot, so a plain client reaches every key.
    this.raw = new Redis({ host: '127.0.0.1', port });
  }

  client(extra: RedisOptions = {}): Redis | Cluster {
    const c = this.cluster
      ? new Cluster([{ host: '127.0.0.1', port: this.port }], {
          enableAutoPipelining: true,
          redisOptions: extra,
        })
      : new Redis({ host: '127.0.0.1', port: this.port, enableAutoPipelining: true, ...extra });
    this.clients.push(c);
    return c;
  }

  async open(o: ManagedHarnessOptions, kek = KEK_A, extra: RedisOptions = {}): Promise<RedisManagedStore> {
    const client = this.client(extra);
    const store = new RedisManagedStore(client, new Sealer(kek), o);
    this.stores.push(store);
    // ioredis retries a broken connection or cluster forever; fail in bounded time instead.
    const timer = new AbortController();
    const ready = await Promise.race([
      store.version().then(() => true),
      sleep(5000, false, { signal: timer.signal }).catch(() => false),
    ]);
    timer.abort();
    if (!ready) throw new Error('RedisManagedStore did not answer within 5 s');
    return store;
  }

  async close(): Promise<void> {
    for (const s of this.stores) await s.close();
    for (const c of this.clients) c.disconnect();
    this.raw.disconnect();
  }
}

/** How many connections are subscribed to the managed-config channel. */
async function subscribers(raw: Redis): Promise<number> {
  const [, n] = (await raw.call('PUBSUB', 'NUMSUB', DEFAULT_MANAGED_CHANNEL)) as [string, number];
  return Number(n);
}

function redisHarness(
  s: RedisServer | string,
  cluster: boolean,
): (o: ManagedHarnessOptions) => Promise<ManagedStoreUnderTest> {
  return async (o) => {
    if (typeof s === 'string') throw new Error(s);
    const h = new RedisHarness(s.port, cluster);
    await h.raw.flushdb();
    let store = await h.open(o);
    return {
      store,
      another: () => h.open(o),
      logSurvivesRestart: true,
      reopen: async () => {
        await store.close();
        store = await h.open(o);
        return store;
      },
      breakSubscriptions: async () => {
        const before = await subscribers(h.raw);
        await h.raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
        await until(async () => (await subscribers(h.raw)) >= before, 'subscribed again');
      },
      close: () => h.close(),
    } satisfies ManagedStoreUnderTest;
  };
}

managedStoreContract(
  'RedisManagedStore (standalone redis-server)',
  redisHarness(server, false),
  redisOptions(server, 25),
);
managedStoreContract(
  'RedisManagedStore (one-node Redis Cluster, ioredis Cluster client)',
  redisHarness(clusterServer, true),
  redisOptions(clusterServer, 10),
);

describe('FileManagedStore state file (format, mode 0600, refuses what it did not write)', () => {
  test('the file is mode 0600 and holds the documented format, with no history (the log stays in memory)', async () => {
    const path = join(await tempDir(), 'state.json');
    const store = await FileManagedStore.open(path, { now: () => 42 });
    await assert.rejects(stat(path), /ENOENT/, 'nothing is written before the first commit');
    await store.seed(SEED);
    await store.commit(1, [{ kind: 'peer', name: 'alice', value: null, keepSas: true }], 'api:ops');
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const doc = JSON.parse(await readFile(path, 'utf8'));
    assert.deepEqual(Object.keys(doc), [
      'format',
      'formatVersion',
      'version',
      'peers',
      'pools',
      'failover',
      'log',
    ]);
    assert.equal(doc.format, 'ikegate-managed-state');
    assert.equal(doc.formatVersion, 1);
    assert.equal(doc.version, 2);
    assert.deepEqual(
      doc.peers.map((p: { name: string }) => p.name),
      ['bob', 'carol'],
    );
    assert.deepEqual(doc.log, [], 'no history on disk');
    assert.deepEqual(
      (await store.changesSince(1))?.[0],
      {
        version: 2,
        actor: 'api:ops',
        at: 42,
        changes: [{ kind: 'peer', name: 'alice', value: null, keepSas: true }],
      },
      'in memory, followers catch up from the log',
    );
    await assert.rejects(stat(`${path}.tmp`), /ENOENT/, 'no temporary file is left behind');
    await store.close();
  });

  test('a corrupt or foreign state file is an error naming the file and the problem; the file is kept', async () => {
    const dir = await tempDir();
    const good = JSON.parse(
      JSON.stringify({ format: 'ikegate-managed-state', formatVersion: 1, version: 1 }),
    );
    const valid = {
      ...good,
      peers: SEED.peers,
      pools: SEED.pools,
      failover: FAILOVER,
      log: [{ version: 1, actor: 'config-file', at: 1, changes: [] }],
    };
    const cases: [string, string, RegExp][] = [
      ['not JSON', '{"format": "ikegate-managed-state",', /is not JSON/],
      [
        'a foreign file',
        JSON.stringify({ peers: [] }),
        /format must be "ikegate-managed-state".*not an ikegate managed state file/,
      ],
      ['a newer format', JSON.stringify({ ...valid, formatVersion: 2 }), /formatVersion must be 1, got 2/],
      ['peers not a list', JSON.stringify({ ...valid, peers: {} }), /peers must be an array/],
      [
        'a peer twice',
        JSON.stringify({ ...valid, peers: [SEED.peers[0], SEED.peers[0]] }),
        /peers\[1\]\.name repeats "alice"/,
      ],
      [
        'a nameless pool',
        JSON.stringify({ ...valid, pools: [{ cidr: '10.0.0.0/8' }] }),
        /pools\[0\]\.name must be/,
      ],
      ['no failover', JSON.stringify({ ...valid, failover: null }), /failover must be an object/],
      ['a log not ending at version', JSON.stringify({ ...valid, version: 3 }), /log\[0\]\.version is 1/],
      [
        'a change of unknown kind',
        JSON.stringify({ ...valid, log: [{ version: 1, actor: 'x', at: 1, changes: [{ kind: 'acl' }] }] }),
        /log\[0\]\.changes\[0\]\.kind must be/,
      ],
    ];
    for (const [what, text, message] of cases) {
      const path = join(dir, `${what.replaceAll(' ', '-')}.json`);
      await writeFile(path, text);
      await assert.rejects(
        FileManagedStore.open(path),
        (e: unknown) =>
          e instanceof LocalUsageError &&
          e.code === 'IKEGATE_ERR_STORE_BAD_STATE' &&
          e.message.includes(path) &&
          message.test(e.message),
        what,
      );
      assert.equal(await readFile(path, 'utf8'), text, `${what}: left as it was`);
    }
    const path = join(dir, 'valid.json');
    await writeFile(path, JSON.stringify(valid));
    const store = await FileManagedStore.open(path);
    assert.equal(await store.version(), 1);
    await store.close();
  });

  test('a write that fails rejects the commit and changes nothing', async () => {
    const dir = await tempDir();
    const path = join(dir, 'sub', 'state.json');
    const store = await FileManagedStore.open(path);
    await assert.rejects(store.seed(SEED), /ENOENT/);
    assert.equal(await store.version(), 0);
    assert.equal((await store.load()).peers.size, 0);
    assert.deepEqual(await store.changesSince(0), []);
    await store.close();
  });

  test('a replaced PSK is gone from the state file with the commit that replaced it (no history on disk)', async () => {
    const path = join(await tempDir(), 'state.json');
    const a = await FileManagedStore.open(path);
    await a.seed(SEED);
    const leaked = 'leaked-psk-Qm4sXv81zz';
    await a.commit(1, [{ kind: 'peer', name: 'p', value: pskPeer('p', leaked) }], 'api:t');
    assert.ok((await readFile(path, 'utf8')).includes(leaked));
    await a.commit(2, [{ kind: 'peer', name: 'p', value: pskPeer('p', 'rotated-psk-Lw93Hd0kk') }], 'api:t');
    assert.ok(!(await readFile(path, 'utf8')).includes(leaked), 'the old PSK is nowhere in the file');
    await a.close();
    const b = await FileManagedStore.open(path, { logLimit: 2 });
    assert.equal(await b.changesSince(1), undefined, 'after a restart followers load the state');
    assert.deepEqual(await b.changesSince(3), []);
    await b.close();
    await assert.rejects(
      b.version(),
      (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_STORE_CLOSED',
    );
  });

  test('documents are copied in and frozen: changing what was passed or returned changes nothing stored', async () => {
    const store = await FileManagedStore.open(null);
    const peer = { ...pskPeer('dave'), remoteTs: ['10.1.0.0/16'] };
    await store.seed({ peers: [peer], pools: [], failover: FAILOVER });
    peer.remoteTs.push('0.0.0.0/0');
    const got = (await store.load()).peers.get('dave')!;
    assert.deepEqual(got.remoteTs, ['10.1.0.0/16']);
    assert.throws(() => (got.remoteTs as string[]).push('0.0.0.0/0'), TypeError);
    await store.close();
  });
});

/** A FileManagedStore whose reads can be made to fail, counting calls, for the follower's failure paths. */
class FlakyStore {
  down = false;
  versionCalls = 0;
  commits = 0;
  loseEveryCommit = false;
  /** While set, version() waits for it: a refresh held in flight. */
  gate: Promise<void> | undefined;
  constructor(readonly inner: ManagedStore) {}
  get store(): ManagedStore {
    const fail = () => {
      if (this.down) throw new Error('connect ECONNREFUSED 127.0.0.1:6379');
    };
    return {
      ...withoutSubscribe(this.inner),
      version: async () => {
        this.versionCalls++;
        await this.gate;
        fail();
        return this.inner.version();
      },
      load: async () => {
        fail();
        return this.inner.load();
      },
      commit: async (b, c, a) => {
        this.commits++;
        if (this.loseEveryCommit) return false;
        return this.inner.commit(b, c, a);
      },
      subscribe: (cb) => this.inner.subscribe(cb),
    };
  }
}

function recordingLog(): FollowerLog & { lines: [string, string, object][] } {
  const lines: [string, string, object][] = [];
  return {
    lines,
    warn: (o, msg) => lines.push(['warn', msg, o]),
    info: (o, msg) => lines.push(['info', msg, o]),
  };
}

describe('ManagedFollower (catch-up, outages, mutate retries)', () => {
  test('mutate gives up with IKEGATE_ERR_STORE_CONFIG_CONFLICT after maxAttempts lost races', async () => {
    const inner = await FileManagedStore.open(null);
    await inner.seed(SEED);
    const flaky = new FlakyStore(inner);
    flaky.loseEveryCommit = true;
    const f = new ManagedFollower(flaky.store);
    await f.start();
    let plans = 0;
    await assert.rejects(
      f.mutate(
        'api:ops',
        () => {
          plans++;
          return { changes: [{ kind: 'pool', name: 'office', value: null }], result: undefined };
        },
        { maxAttempts: 4 },
      ),
      (e: unknown) =>
        e instanceof LocalUsageError &&
        e.code === 'IKEGATE_ERR_STORE_CONFIG_CONFLICT' &&
        /4 times/.test(e.message),
    );
    assert.equal(plans, 4);
    assert.equal(flaky.commits, 4);
    assert.equal(await inner.version(), 1);
    f.stop();
  });

  test('an unreachable store: the last state is served, the outage logged once, recovery logged once', async () => {
    const inner = await FileManagedStore.open(null);
    await inner.seed(SEED);
    const flaky = new FlakyStore(inner);
    const log = recordingLog();
    const f = new ManagedFollower(withoutSubscribe(flaky.store), { pollMs: 5, log });
    await f.start();
    flaky.down = true;
    const before = flaky.versionCalls;
    await until(() => flaky.versionCalls >= before + 10, 'polled ten times while down');
    await assert.rejects(f.refresh(), /ECONNREFUSED/, 'an explicit refresh reports the failure');
    assert.equal(f.state.version, 1, 'the last state is kept');
    assert.deepEqual(
      log.lines.map(([level, msg]) => [level, msg]),
      [['warn', 'managed-config-store-unreachable']],
    );
    assert.ok(await inner.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops'));
    flaky.down = false;
    await until(() => f.state.version === 2, 'caught up after the outage');
    await until(() => log.lines.length === 2, 'recovery logged');
    assert.deepEqual(log.lines[1]!.slice(0, 2), ['info', 'managed-config-store-recovered']);
    f.stop();
  });

  test('refresh: callers during a run share the one run after it, which sees what they committed', async () => {
    const inner = await FileManagedStore.open(null);
    await inner.seed(SEED);
    const flaky = new FlakyStore(inner);
    const f = new ManagedFollower(flaky.store, { pollMs: 3_600_000 });
    await f.start();
    const before = flaky.versionCalls;
    let open!: () => void;
    flaky.gate = new Promise((resolve) => (open = resolve));
    const first = f.refresh(); // in flight, waiting in version()
    assert.ok(await inner.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops'));
    const later = [f.refresh(), f.refresh(), f.refresh()];
    flaky.gate = undefined;
    open();
    await first;
    await Promise.all(later);
    assert.equal(f.state.version, 2);
    assert.equal(flaky.versionCalls - before, 2, 'the first run and one shared run');
    f.stop();
  });

  test('a listener that throws is logged and the others still hear every change', async () => {
    const store = await FileManagedStore.open(null);
    await store.seed(SEED);
    const log = recordingLog();
    const f = new ManagedFollower(store, { pollMs: 3_600_000, log });
    f.onChange(() => {
      throw new Error('listener bug');
    });
    const seen: ManagedChangeEvent[] = [];
    const off = f.onChange((e) => seen.push(e));
    await f.start();
    await f.mutate('api:ops', () => ({
      changes: [{ kind: 'pool', name: 'office', value: null }],
      result: 0,
    }));
    assert.deepEqual(
      seen.map((e) => [e.kind, e.state.version]),
      [
        ['reload', 1],
        ['changes', 2],
      ],
    );
    assert.ok(
      log.lines.every(([level, msg]) => level === 'warn' && msg === 'managed-config-listener-failed'),
    );
    assert.equal(log.lines.length, 2);
    off();
    await f.mutate('api:ops', () => ({ changes: [{ kind: 'peer', name: 'bob', value: null }], result: 0 }));
    assert.equal(seen.length, 2);
    f.stop();
  });

  test('a store that went back (replaced, reseeded) is reloaded, not followed', async () => {
    let store = await FileManagedStore.open(null);
    await store.seed(SEED);
    await store.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops');
    const proxy: ManagedStore = {
      seed: (i) => store.seed(i),
      load: () => store.load(),
      version: () => store.version(),
      changesSince: (v) => store.changesSince(v),
      commit: (b, c, a) => store.commit(b, c, a),
      subscribe: () => () => undefined,
      close: () => store.close(),
    };
    const f = new ManagedFollower(proxy, { pollMs: 3_600_000 });
    await f.start();
    assert.equal(f.state.version, 2);
    store = await FileManagedStore.open(null);
    await store.seed({ peers: [pskPeer('zed')], pools: [], failover: FAILOVER });
    await f.refresh();
    assert.deepEqual(plain(f.state), plain(await store.load()));
    f.stop();
  });
});

const redisSkip = requirement(typeof server === 'string' && server);
const clusterSkip = requirement(typeof clusterServer === 'string' && clusterServer);

/** Every byte Redis holds for `key`: the DUMP serialization and the value read by type. */
async function rawBytes(raw: Redis, key: string): Promise<Buffer[]> {
  const out: Buffer[] = [];
  const dump = await raw.dumpBuffer(key);
  if (dump !== null) out.push(dump);
  const type = await raw.type(key);
  if (type === 'string') out.push((await raw.getBuffer(key))!);
  else if (type === 'hash') out.push(...Object.values(await raw.hgetallBuffer(key)));
  else if (type === 'stream') {
    for (const [id, fields] of await raw.xrangeBuffer(key, '-', '+')) out.push(id, ...fields);
  } else assert.fail(`unexpected ${type} at ${key}`);
  return out;
}

async function allKeys(raw: Redis): Promise<string[]> {
  const keys = new Set<string>();
  let cursor = '0';
  do {
    const [next, batch] = await raw.scan(cursor, 'COUNT', 1000);
    for (const k of batch) keys.add(k);
    cursor = next;
  } while (cursor !== '0');
  return [...keys].sort();
}

describe('RedisManagedStore at rest (PSKs sealed, one hash tag)', { skip: redisSkip }, () => {
  const withRedis = (fn: (h: RedisHarness, store: RedisManagedStore) => Promise<void>) => async () => {
    if (typeof server === 'string') throw new Error(server);
    const h = new RedisHarness(server.port, false);
    try {
      await h.raw.flushdb();
      await fn(h, await h.open({}));
    } finally {
      await h.close();
    }
  };

  test(
    'no key holds a PSK in clear (DUMP and GET/HGETALL/XRANGE of every key), yet every read returns it',
    withRedis(async (h, store) => {
      const secrets = ['alpha-Q7w9e2r4t6y8', 'bravo-Z1x3c5v7b9n0', 'charlie-rotated-K8j6h4g2f0'];
      await store.seed({
        peers: [pskPeer('alice', secrets[0]), pskPeer('bob', secrets[1]), SEED.peers[2]!],
        pools: SEED.pools,
        failover: FAILOVER,
      });
      assert.ok(
        await store.commit(
          1,
          [{ kind: 'peer', name: 'alice', value: pskPeer('alice', secrets[2]) }],
          'api:ops',
        ),
      );
      assert.ok(await store.commit(2, [{ kind: 'peer', name: 'bob', value: null }], 'api:ops'));
      const keys = await allKeys(h.raw);
      assert.deepEqual(keys, Object.values(MANAGED_KEYS).sort());
      for (const key of keys) {
        for (const bytes of await rawBytes(h.raw, key)) {
          for (const s of secrets) assert.ok(!bytes.includes(s), `${key} holds ${s} in clear`);
        }
      }
      assert.match((await h.raw.hget(MANAGED_KEYS.peers, 'alice'))!, /"psk":\{"sealed":"[A-Za-z0-9+/=]+"\}/);
      assert.match(
        (await h.raw.hget(MANAGED_KEYS.peers, 'carol'))!,
        /"psk":\{"file":"\/etc\/ikegate\/carol.psk"\}/,
      );
      assert.deepEqual((await store.load()).peers.get('alice')?.auth, { psk: secrets[2] });
      const log = await store.changesSince(0);
      assert.deepEqual(
        log?.flatMap((c) =>
          c.changes.flatMap((x) => (x.kind === 'peer' && x.value !== null ? [x.value.auth] : [])),
        ),
        [
          { psk: secrets[0] },
          { psk: secrets[1] },
          { psk: { file: '/etc/ikegate/carol.psk' } },
          { psk: secrets[2] },
        ],
      );
    }),
  );

  test(
    "a sealed PSK copied into another peer's document fails to open, naming that peer",
    withRedis(async (h, store) => {
      await store.seed({ peers: [pskPeer('alice'), pskPeer('mallory')], pools: [], failover: FAILOVER });
      const alice = JSON.parse((await h.raw.hget(MANAGED_KEYS.peers, 'alice'))!);
      const mallory = JSON.parse((await h.raw.hget(MANAGED_KEYS.peers, 'mallory'))!);
      await h.raw.hset(MANAGED_KEYS.peers, 'mallory', JSON.stringify({ ...mallory, auth: alice.auth }));
      await assert.rejects(
        store.load(),
        (e: unknown) =>
          e instanceof SealedValueError &&
          e.code === 'IKEGATE_ERR_STORE_UNSEAL' &&
          e.message.includes('managed peer "mallory"') &&
          e.message.includes('failed authentication'),
      );
      // Another KEK id: named as unknown.
      const other = await h.open({}, KEK_C);
      await h.raw.hset(MANAGED_KEYS.peers, 'mallory', JSON.stringify(mallory));
      await assert.rejects(
        other.load(),
        (e: unknown) => e instanceof SealedValueError && e.code === 'IKEGATE_ERR_STORE_UNKNOWN_KEK',
      );
    }),
  );

  test(
    'corrupt values at rest are IKEGATE_ERR_STORE_BAD_STATE naming the key',
    withRedis(async (h, store) => {
      await store.seed(SEED);
      await h.raw.hset(MANAGED_KEYS.pools, 'office', '{"name":');
      await assert.rejects(
        store.load(),
        (e: unknown) =>
          e instanceof LocalUsageError &&
          e.code === 'IKEGATE_ERR_STORE_BAD_STATE' &&
          e.message.includes(`${MANAGED_KEYS.pools} field "office" is not JSON`),
      );
      await h.raw.set(MANAGED_KEYS.version, 'seven');
      await assert.rejects(store.version(), /IKEGATE|managed config in Redis/);
    }),
  );

  test(
    'close() ends the subscriber connection and leaves the shared client open',
    withRedis(async (h, store) => {
      store.subscribe(() => undefined);
      await until(async () => (await subscribers(h.raw)) === 1, 'subscribed');
      await store.close();
      await until(async () => (await subscribers(h.raw)) === 0, 'unsubscribed');
      assert.equal(await h.clients[0]!.ping(), 'PONG');
      await assert.rejects(
        store.version(),
        (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_STORE_CLOSED',
      );
    }),
  );

  test(
    'a commit published while the subscriber reconnects is still seen without polling (prompt after re-subscribing)',
    withRedis(async (h, store) => {
      await store.seed(SEED);
      // The subscriber (a duplicate of this client) reconnects 300 ms after a break: the commit
      // below is published while nobody is subscribed, and that message is lost.
      const f = new ManagedFollower(await h.open({}, KEK_A, { retryStrategy: () => 300 }), {
        pollMs: 3_600_000,
      });
      await f.start();
      try {
        await until(async () => (await subscribers(h.raw)) === 1, 'subscribed');
        for (let v = 1; v <= 3; v++) {
          await h.raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
          assert.ok(
            await store.commit(v, [{ kind: 'peer', name: `p${v}`, value: pskPeer(`p${v}`) }], 'api:t'),
          );
          await until(() => f.state.version === v + 1, `version ${v + 1} seen`);
        }
      } finally {
        f.stop();
      }
    }),
  );
});

describe('RedisManagedStore in Redis Cluster', { skip: clusterSkip }, () => {
  test('every key hashes to one slot', async () => {
    if (typeof clusterServer === 'string') throw new Error(clusterServer);
    const h = new RedisHarness(clusterServer.port, true);
    try {
      await h.raw.flushdb();
      const store = await h.open({});
      await store.seed(SEED);
      const keys = await allKeys(h.raw);
      assert.equal(keys.length, 5);
      const slots = await Promise.all(keys.map((k) => h.raw.call('CLUSTER', 'KEYSLOT', k)));
      assert.equal(new Set(slots).size, 1, JSON.stringify(slots));
    } finally {
      await h.close();
    }
  });
});
