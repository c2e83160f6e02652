/**
 * The one contract suite for ManagedStore (managed/types.ts) and the ManagedFollower on top of it,
 * run against every implementation by `managed/managed.test.ts`. An implementation passes by
 * behaving like the others here; nothing depends on which store it is except through the
 * `ManagedStoreUnderTest` hooks (another process's handle, a restart, a broken subscription).
 *
 * Waits are bounded loops (every 10 ms, up to 5 s); nothing asserts how long anything took.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import fc from 'fast-check';
import type { FailoverDoc, PeerDoc, PoolDoc } from '@ikegate/config';
import { LocalUsageError } from '../errors.js';
import { type ManagedChangeEvent, ManagedFollower } from '../managed/follower.js';
import type { ConfigChange, ManagedState, ManagedStore } from '../managed/types.js';

export interface ManagedStoreUnderTest {
  /** A store on fresh, empty state (version 0). */
  readonly store: ManagedStore;
  /**
   * Another handle on the same state, as a second process opens it (a new Redis client); a store
   * that one process owns returns `store` itself. `close` closes it.
   */
  another(): Promise<ManagedStore>;
  /** Closes `store` and opens its state again, as after a restart; absent when state dies with the object. */
  readonly reopen?: () => Promise<ManagedStore>;
  /**
   * Whether the change log survives `reopen` (Redis keeps it; the state file keeps only the current
   * documents, so no replaced PSK stays on disk: followers load the whole state after a restart).
   */
  readonly logSurvivesRestart?: boolean;
  /**
   * Breaks every subscriber connection the way a network blip does, and returns once they are
   * subscribed again; absent for a store without connections.
   */
  readonly breakSubscriptions?: () => Promise<void>;
  close(): Promise<void>;
}

export interface ManagedHarnessOptions {
  readonly logLimit?: number;
  readonly now?: () => number;
}

export interface ManagedContractOptions {
  /** Skip the whole suite with this reason (e.g. no redis-server). */
  readonly skip?: string;
  /** fast-check runs of the model property; real servers get fewer. */
  readonly propertyRuns?: number;
}

export const FAILOVER: FailoverDoc = { policy: 'wait-for-reconnect', waitSeconds: 30 };

export function pskPeer(name: string, psk = `psk-of-${name}-Zq8vT3`): PeerDoc {
  return { name, id: `${name}.vpn.example.com`, auth: { psk }, pool: 'office', remoteTs: ['dynamic'] };
}

export function officePool(name = 'office', cidr = '10.8.0.0/24'): PoolDoc {
  return { name, cidr, dns: ['10.8.0.1'] };
}

export const SEED = {
  peers: [
    pskPeer('alice'),
    { name: 'bob', id: 'bob@example.com', auth: { ca: '/etc/ikegate/ca.pem' } },
    { name: 'carol', id: '*.branch.example.com', auth: { psk: { file: '/etc/ikegate/carol.psk' } } },
  ] satisfies PeerDoc[],
  pools: [officePool()],
  failover: FAILOVER,
};

/** A state as plain, order-independent JSON, for deepEqual. */
export function plain(s: ManagedState): unknown {
  const sorted = (m: ReadonlyMap<string, unknown>) =>
    Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.parse(
    JSON.stringify({
      version: s.version,
      peers: sorted(s.peers),
      pools: sorted(s.pools),
      failover: s.failover,
    }),
  );
}

const json = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** Polls `cond` every 10 ms for up to 5 s. */
export async function until(cond: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (await cond()) return;
    await sleep(10);
  }
  assert.fail(`still not ${what} after 5 s`);
}

/** The store with `subscribe` doing nothing: followers on it learn of changes only by polling. */
export function withoutSubscribe(s: ManagedStore): ManagedStore {
  return {
    seed: (i) => s.seed(i),
    load: () => s.load(),
    version: () => s.version(),
    changesSince: (v) => s.changesSince(v),
    commit: (b, c, a) => s.commit(b, c, a),
    subscribe: () => () => undefined,
    close: () => s.close(),
  };
}

/** Effectively never: a follower with this poll interval sees changes only through subscriptions. */
const NO_POLL_MS = 3_600_000;

const isBadChange = (e: unknown) => e instanceof LocalUsageError && e.code === 'IKEGATE_ERR_STORE_BAD_CHANGE';

/** The naive reference: Maps changed one change at a time. */
class MapModel {
  version: number;
  readonly peers: Map<string, PeerDoc>;
  readonly pools: Map<string, PoolDoc>;
  failover: FailoverDoc;
  constructor(s: ManagedState) {
    this.version = s.version;
    this.peers = new Map(s.peers);
    this.pools = new Map(s.pools);
    this.failover = s.failover;
  }
  apply(changes: readonly ConfigChange[]): void {
    this.version++;
    for (const c of changes) {
      if (c.kind === 'failover') this.failover = c.value;
      else if (c.kind === 'peer') {
        if (c.value === null) this.peers.delete(c.name);
        else this.peers.set(c.name, c.value);
      } else if (c.value === null) this.pools.delete(c.name);
      else this.pools.set(c.name, c.value);
    }
  }
}

const NAMES = ['p0', 'p1', 'p2', 'p3'];
const authArb = fc.oneof(
  fc.string({ minLength: 1, maxLength: 24 }).map((psk) => ({ psk })),
  fc.constant({ psk: { file: '/etc/ikegate/peer.psk' } }),
  fc.constant({ ca: '/etc/ikegate/ca.pem' }),
);
const changeArb: fc.Arbitrary<ConfigChange> = fc.oneof(
  fc
    .record({
      name: fc.constantFrom(...NAMES),
      auth: authArb,
      wait: fc.option(fc.integer({ min: 0, max: 600 })),
    })
    .map(({ name, auth, wait }): ConfigChange => ({
      kind: 'peer',
      name,
      value: {
        name,
        id: `${name}.example.com`,
        auth,
        ...(wait === null ? {} : { failover: { waitSeconds: wait } }),
      },
    })),
  fc
    .record({ name: fc.constantFrom(...NAMES), keepSas: fc.boolean() })
    .map(({ name, keepSas }): ConfigChange => ({ kind: 'peer', name, value: null, keepSas })),
  fc
    .record({ name: fc.constantFrom(...NAMES), octet: fc.integer({ min: 0, max: 255 }) })
    .map(({ name, octet }): ConfigChange => ({
      kind: 'pool',
      name,
      value: { name, cidr: `10.${octet}.0.0/16` },
    })),
  fc.constantFrom(...NAMES).map((name): ConfigChange => ({ kind: 'pool', name, value: null })),
  fc.integer({ min: 0, max: 3600 }).map((waitSeconds): ConfigChange => ({
    kind: 'failover',
    value: { policy: 'wait-for-reconnect', waitSeconds },
  })),
);

export function managedStoreContract(
  name: string,
  make: (options: ManagedHarnessOptions) => Promise<ManagedStoreUnderTest>,
  options: ManagedContractOptions = {},
): void {
  const it = (
    title: string,
    fn: (h: ManagedStoreUnderTest, t: TestContext) => Promise<void>,
    harness: ManagedHarnessOptions = {},
  ) =>
    test(title, options.skip === undefined ? {} : { skip: options.skip }, async (t) => {
      const h = await make(harness);
      try {
        await fn(h, t);
      } finally {
        await h.close();
      }
    });

  describe(`${name} satisfies the ManagedStore contract (versioned documents, CAS commits, bounded change log)`, () => {
    it('an unseeded store is version 0, empty, with nothing in its log', async ({ store }) => {
      assert.equal(await store.version(), 0);
      const s = await store.load();
      assert.equal(s.version, 0);
      assert.equal(s.peers.size, 0);
      assert.equal(s.pools.size, 0);
      assert.deepEqual(await store.changesSince(0), []);
    });

    it('seed writes version 1 once, recorded as one commit by config-file', async ({ store }) => {
      assert.equal(await store.seed(SEED), true);
      assert.equal(await store.seed({ peers: [pskPeer('mallory')], pools: [], failover: FAILOVER }), false);
      const s = await store.load();
      assert.deepEqual(plain(s), {
        version: 1,
        peers: { alice: SEED.peers[0], bob: SEED.peers[1], carol: SEED.peers[2] },
        pools: { office: SEED.pools[0] },
        failover: FAILOVER,
      });
      const log = await store.changesSince(0);
      assert.equal(log?.length, 1);
      assert.equal(log[0]!.version, 1);
      assert.equal(log[0]!.actor, 'config-file');
      assert.deepEqual(json(log[0]!.changes), [
        ...SEED.peers.map((p) => ({ kind: 'peer', name: p.name, value: p })),
        { kind: 'pool', name: 'office', value: SEED.pools[0] },
        { kind: 'failover', value: FAILOVER },
      ]);
      await assert.rejects(
        store.seed({ peers: [pskPeer('x'), pskPeer('x')], pools: [], failover: FAILOVER }),
        isBadChange,
      );
    });

    it('concurrent seeders from several processes: exactly one wins and its documents are the state', async (h) => {
      const handles = [h.store, ...(await Promise.all(Array.from({ length: 7 }, () => h.another())))];
      const wins = await Promise.all(
        handles.map((s, i) => s.seed({ peers: [pskPeer(`seeder-${i}`)], pools: [], failover: FAILOVER })),
      );
      assert.equal(wins.filter(Boolean).length, 1, `wins: ${wins.join(',')}`);
      const winner = wins.indexOf(true);
      const s = await h.store.load();
      assert.equal(s.version, 1);
      assert.deepEqual([...s.peers.keys()], [`seeder-${winner}`]);
      assert.equal((await h.store.changesSince(0))?.length, 1);
    });

    it('commit applies on the current version only; on a stale base it writes nothing', async ({ store }) => {
      await store.seed(SEED);
      assert.equal(
        await store.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops'),
        true,
      );
      assert.equal(
        await store.commit(1, [{ kind: 'peer', name: 'erin', value: pskPeer('erin') }], 'api:ops'),
        false,
      );
      assert.equal(await store.commit(5, [{ kind: 'pool', name: 'office', value: null }], 'api:ops'), false);
      const s = await store.load();
      assert.equal(s.version, 2);
      assert.ok(s.peers.has('dave'));
      assert.ok(!s.peers.has('erin'));
      assert.ok(s.pools.has('office'));
      assert.equal((await store.changesSince(1))?.length, 1);
    });

    it('20 concurrent commits on the same base from several processes: exactly one succeeds', async (h) => {
      await h.store.seed(SEED);
      const handles = [h.store, await h.another(), await h.another(), await h.another()];
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          handles[i % handles.length]!.commit(
            1,
            [{ kind: 'peer', name: `racer-${i}`, value: pskPeer(`racer-${i}`) }],
            `api:racer-${i}`,
          ),
        ),
      );
      assert.equal(results.filter(Boolean).length, 1, `results: ${results.join(',')}`);
      const winner = results.indexOf(true);
      const s = await h.store.load();
      assert.equal(s.version, 2);
      assert.deepEqual(
        [...s.peers.keys()].filter((n) => n.startsWith('racer-')),
        [`racer-${winner}`],
      );
      const log = await h.store.changesSince(1);
      assert.equal(log?.length, 1);
      assert.equal(log[0]!.actor, `api:racer-${winner}`);
    });

    let clock = 1_700_000_000_000;
    it(
      'changesSince returns the later commits oldest first, with their changes, actor and time',
      async ({ store }) => {
        await store.seed(SEED);
        const commits: ConfigChange[][] = [
          [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }],
          [
            { kind: 'peer', name: 'alice', value: null, keepSas: true },
            { kind: 'pool', name: 'lab', value: officePool('lab', '10.9.0.0/24') },
          ],
          [{ kind: 'failover', value: { policy: 'wait-for-reconnect', waitSeconds: 90 } }],
          [
            { kind: 'peer', name: 'dave', value: pskPeer('dave', 'rotated-secret-77') },
            { kind: 'peer', name: 'dave', value: null },
            { kind: 'pool', name: 'office', value: null },
          ],
        ];
        const stamps: number[] = [];
        for (const [i, changes] of commits.entries()) {
          stamps.push(clock + 1);
          assert.equal(await store.commit(1 + i, changes, `api:user-${i}`), true);
        }
        for (let since = 0; since <= 5; since++) {
          const got = await store.changesSince(since);
          assert.ok(got, `changesSince(${since})`);
          assert.deepEqual(
            got.map((c) => c.version),
            Array.from({ length: 5 - since }, (_, i) => since + 1 + i),
          );
          for (const c of got.filter((c) => c.version >= 2)) {
            assert.deepEqual(json(c.changes), json(commits[c.version - 2]));
            assert.equal(c.actor, `api:user-${c.version - 2}`);
            assert.equal(c.at, stamps[c.version - 2]);
          }
        }
        const s = await store.load();
        assert.deepEqual(plain(s), {
          version: 5,
          peers: { bob: SEED.peers[1], carol: SEED.peers[2] },
          pools: { lab: officePool('lab', '10.9.0.0/24') },
          failover: { policy: 'wait-for-reconnect', waitSeconds: 90 },
        });
        assert.equal(await store.changesSince(6), undefined, 'a version the store never reached');
      },
      { now: () => ++clock },
    );

    it(
      'changesSince is undefined once the log no longer reaches back (logLimit 3)',
      async ({ store }) => {
        await store.seed(SEED);
        for (let v = 1; v < 8; v++) {
          assert.ok(
            await store.commit(v, [{ kind: 'peer', name: `p${v}`, value: pskPeer(`p${v}`) }], 'api:t'),
          );
        }
        // Versions 6, 7, 8 are kept: the commits after 5 and later are all there, after 4 they are not.
        for (let since = 0; since <= 4; since++)
          assert.equal(await store.changesSince(since), undefined, `since ${since}`);
        for (let since = 5; since <= 8; since++) {
          assert.deepEqual(
            (await store.changesSince(since))?.map((c) => c.version),
            Array.from({ length: 8 - since }, (_, i) => since + 1 + i),
          );
        }
      },
      { logLimit: 3 },
    );

    it('malformed commits are refused with IKEGATE_ERR_STORE_BAD_CHANGE before anything is written', async ({
      store,
    }) => {
      await store.seed(SEED);
      const bad: [number, ConfigChange[], string][] = [
        [1, [{ kind: 'peer', name: 'x', value: pskPeer('y') }], 'api:t'],
        [1, [{ kind: 'peer', name: '', value: null }], 'api:t'],
        [
          1,
          [
            {
              kind: 'peer',
              name: 'x',
              value: { ...pskPeer('x'), auth: { psk: { sealed: 'AAAA' } } as never },
            },
          ],
          'api:t',
        ],
        [1, [{ kind: 'nonsense' } as unknown as ConfigChange], 'api:t'],
        [-1, [], 'api:t'],
        [1.5, [], 'api:t'],
        [1, [], ''],
      ];
      for (const [base, changes, actor] of bad) {
        await assert.rejects(store.commit(base, changes, actor), isBadChange, JSON.stringify(changes));
      }
      assert.equal(await store.version(), 1);
    });

    it('the state survives a restart; the log too where the store keeps one across restarts', async (h, t) => {
      if (h.reopen === undefined) return t.skip('this store keeps its state in the object only');
      await h.store.seed(SEED);
      await h.store.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops');
      const before = plain(await h.store.load());
      const again = await h.reopen();
      assert.deepEqual(plain(await again.load()), before);
      assert.equal(await again.version(), 2);
      if (h.logSurvivesRestart)
        assert.deepEqual(
          (await again.changesSince(0))?.map((c) => [c.version, c.actor]),
          [
            [1, 'config-file'],
            [2, 'api:ops'],
          ],
        );
      else assert.equal(await again.changesSince(0), undefined, 'no history after a restart: load instead');
      assert.deepEqual(await again.changesSince(2), [], 'and nothing is missing at the current version');
      assert.equal(await again.commit(2, [{ kind: 'pool', name: 'office', value: null }], 'api:ops'), true);
    });

    it('subscribe: prompted after another process commits; a throwing subscriber stops nobody; unsubscribe ends it', async (h) => {
      await h.store.seed(SEED);
      const other = await h.another();
      let prompts = 0;
      let thrown = 0;
      const offThrowing = h.store.subscribe(() => {
        thrown++;
        throw new Error('subscriber bug');
      });
      const off = h.store.subscribe(() => prompts++);
      await sleep(50); // let a subscriber connection settle (its first prompt is allowed)
      const base = prompts;
      assert.ok(await other.commit(1, [{ kind: 'peer', name: 'dave', value: pskPeer('dave') }], 'api:ops'));
      await until(() => prompts > base && thrown > 0, 'prompted');
      off();
      offThrowing();
      const after = prompts;
      assert.ok(await other.commit(2, [{ kind: 'peer', name: 'dave', value: null }], 'api:ops'));
      assert.equal(await h.store.version(), 3, 'the store still works');
      await sleep(50);
      assert.equal(prompts, after, 'no prompt after unsubscribe');
    });

    it('follower: a commit through one follower reaches another by subscription alone (no polling)', async (h) => {
      await h.store.seed(SEED);
      const a = new ManagedFollower(h.store, { pollMs: NO_POLL_MS });
      const b = new ManagedFollower(await h.another(), { pollMs: NO_POLL_MS });
      const events: ManagedChangeEvent[] = [];
      b.onChange((e) => events.push(e));
      await Promise.all([a.start(), b.start()]);
      try {
        assert.equal(b.state.version, 1);
        assert.deepEqual(
          events.map((e) => e.kind),
          ['reload'],
        );
        const r = await a.mutate('api:ops', (s) => ({
          changes: [
            { kind: 'peer', name: 'dave', value: { ...pskPeer('dave'), pool: [...s.pools.keys()][0] } },
          ],
          result: 'made',
        }));
        assert.deepEqual(r, { version: 2, result: 'made' });
        assert.equal(a.state.version, 2, 'the writer sees its own commit when mutate resolves');
        await until(() => b.state.version === 2, 'seen by the other follower');
        assert.deepEqual(b.state.peers.get('dave'), { ...pskPeer('dave'), pool: 'office' });
        const last = events.at(-1);
        assert.equal(last?.kind, 'changes');
        assert.equal(last.kind === 'changes' && last.batch.actor, 'api:ops');
        assert.equal(last.state, b.state);
      } finally {
        a.stop();
        b.stop();
      }
    });

    it('follower: with the subscription disabled, polling alone brings every change', async (h) => {
      await h.store.seed(SEED);
      const f = new ManagedFollower(withoutSubscribe(await h.another()), { pollMs: 20 });
      await f.start();
      try {
        for (let v = 1; v <= 3; v++) {
          assert.ok(
            await h.store.commit(
              v,
              [{ kind: 'pool', name: `pool-${v}`, value: officePool(`pool-${v}`) }],
              'api:t',
            ),
          );
        }
        await until(() => f.state.version === 4, 'polled');
        assert.deepEqual(plain(f.state), plain(await h.store.load()));
      } finally {
        f.stop();
      }
    });

    it(
      'follower: behind a gap in the log, it reloads and says so once',
      async (h) => {
        await h.store.seed(SEED);
        const f = new ManagedFollower(withoutSubscribe(await h.another()), { pollMs: NO_POLL_MS });
        await f.start();
        const events: ManagedChangeEvent[] = [];
        f.onChange((e) => events.push(e));
        try {
          for (let v = 1; v <= 5; v++) {
            assert.ok(
              await h.store.commit(v, [{ kind: 'peer', name: `p${v}`, value: pskPeer(`p${v}`) }], 'api:t'),
            );
          }
          await f.refresh();
          assert.equal(events.length, 1);
          const e = events[0]!;
          assert.equal(e.kind, 'reload');
          assert.equal(e.kind === 'reload' && e.previous.version, 1);
          assert.equal(e.state.version, 6);
          assert.deepEqual(plain(f.state), plain(await h.store.load()));
          // Within the log again: one event per commit.
          assert.ok(await h.store.commit(6, [{ kind: 'peer', name: 'p1', value: null }], 'api:t'));
          assert.ok(await h.store.commit(7, [{ kind: 'peer', name: 'p2', value: null }], 'api:t'));
          await f.refresh();
          assert.deepEqual(
            events.slice(1).map((x) => [x.kind, x.state.version]),
            [
              ['changes', 7],
              ['changes', 8],
            ],
          );
        } finally {
          f.stop();
        }
      },
      { logLimit: 2 },
    );

    it('follower: two followers mutating concurrently 50 times each: every change lands', async (h) => {
      await h.store.seed(SEED);
      const followers = [new ManagedFollower(h.store), new ManagedFollower(await h.another())];
      await Promise.all(followers.map((f) => f.start()));
      try {
        const versions = await Promise.all(
          followers.map(async (f, w) => {
            const mine: number[] = [];
            for (let i = 0; i < 50; i++) {
              const name = `w${w}-${i}`;
              const r = await f.mutate(
                `api:w${w}`,
                (s) => {
                  assert.ok(!s.peers.has(name));
                  return { changes: [{ kind: 'peer', name, value: pskPeer(name) }], result: s.peers.size };
                },
                // Two writers in a tight loop lose races far more often than operators do.
                { maxAttempts: 200 },
              );
              mine.push(r.version);
            }
            return mine;
          }),
        );
        const all = versions.flat().sort((x, y) => x - y);
        assert.deepEqual(
          all,
          Array.from({ length: 100 }, (_, i) => i + 2),
          'each commit made one version',
        );
        const s = await h.store.load();
        assert.equal(s.version, 101);
        assert.equal(s.peers.size, 100 + SEED.peers.length);
        for (const f of followers) {
          await f.refresh();
          assert.deepEqual(plain(f.state), plain(s));
        }
      } finally {
        for (const f of followers) f.stop();
      }
    });

    it('follower: a plan that throws commits nothing and its error comes out unchanged; no changes, no commit', async (h) => {
      await h.store.seed(SEED);
      const f = new ManagedFollower(h.store, { pollMs: NO_POLL_MS });
      await f.start();
      try {
        const oops = new RangeError('no such pool');
        await assert.rejects(
          f.mutate('api:ops', () => {
            throw oops;
          }),
          (e) => e === oops,
        );
        assert.deepEqual(await f.mutate('api:ops', () => ({ changes: [], result: 7 })), {
          version: 1,
          result: 7,
        });
        assert.equal(await h.store.version(), 1);
        assert.deepEqual(await h.store.changesSince(1), []);
      } finally {
        f.stop();
      }
    });

    it('follower: the subscription comes back after its connection breaks', async (h, t) => {
      if (h.breakSubscriptions === undefined) return t.skip('this store has no subscriber connection');
      await h.store.seed(SEED);
      const f = new ManagedFollower(await h.another(), { pollMs: NO_POLL_MS });
      await f.start();
      try {
        for (let v = 1; v <= 3; v++) {
          await h.breakSubscriptions();
          assert.ok(
            await h.store.commit(
              v,
              [{ kind: 'pool', name: `pool-${v}`, value: officePool(`pool-${v}`) }],
              'api:t',
            ),
          );
          await until(() => f.state.version === v + 1, `version ${v + 1} seen after a broken subscription`);
        }
      } finally {
        f.stop();
      }
    });

    test(
      'property: random commits followed by a follower give the naive Map model, refreshed at any point',
      options.skip === undefined ? {} : { skip: options.skip },
      async () => {
        const h = await make({ logLimit: 5 });
        try {
          await h.store.seed(SEED);
          await fc.assert(
            fc.asyncProperty(
              fc.array(
                fc.record({
                  changes: fc.array(changeArb, { minLength: 1, maxLength: 4 }),
                  look: fc.boolean(),
                }),
                {
                  minLength: 1,
                  maxLength: 10,
                },
              ),
              async (commits) => {
                const f = new ManagedFollower(withoutSubscribe(h.store), { pollMs: NO_POLL_MS });
                await f.start();
                try {
                  const model = new MapModel(f.state);
                  for (const { changes, look } of commits) {
                    assert.ok(await h.store.commit(model.version, changes, 'api:prop'));
                    model.apply(changes);
                    if (look) {
                      await f.refresh();
                      assert.deepEqual(plain(f.state), plain(model));
                    }
                  }
                  await f.refresh();
                  assert.deepEqual(plain(f.state), plain(model));
                  assert.deepEqual(plain(await h.store.load()), plain(model));
                } finally {
                  f.stop();
                }
              },
            ),
            { numRuns: options.propertyRuns ?? 100 },
          );
        } finally {
          await h.close();
        }
      },
    );
  });
}
