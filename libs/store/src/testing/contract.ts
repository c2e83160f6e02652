/**
 * The one contract suite for SaStore + LeaseTable (ARCHITECTURE.md, "State, leases and HA"),
 * run against every implementation by `store.test.ts`. An implementation passes by behaving the
 * same as the others here; nothing in it depends on which store it is except through the
 * `StoreUnderTest` hooks (how lease time passes, how the bytes at rest are reached).
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import type { SealedStore } from '../sealed-store.js';
import type { Keyring } from '../seal.js';
import { FencedWriteError, LocalUsageError, SealedValueError } from '../errors.js';

export interface StoreUnderTest {
  readonly store: SealedStore;
  /** A lease TTL short enough to wait out (real-time stores) or to jump over (simulated clock). */
  readonly ttlMs: number;
  /** Lets at least `ms` of lease-clock time pass. */
  elapse(ms: number): Promise<void>;
  /** Ends the shard's live lease the way TTL expiry does (lease gone, epoch counter kept). */
  expireLease(shard: number): Promise<void>;
  /** The SA's bytes at rest, bypassing the KEK. */
  rawSa(shard: number, key: string): Promise<Uint8Array | undefined>;
  setRawSa(shard: number, key: string, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export interface ContractOptions {
  /** Skip the whole suite with this reason (e.g. no redis-server). */
  readonly skip?: string;
  /** fast-check runs for the fencing property; real servers get fewer. */
  readonly propertyRuns?: number;
}

export const KEK_A: Keyring = { current: { id: 1, key: new Uint8Array(32).fill(0xa1) } };
export const KEK_B: Keyring = { current: { id: 1, key: new Uint8Array(32).fill(0xb2) } };
export const KEK_C: Keyring = { current: { id: 2, key: new Uint8Array(32).fill(0xc3) } };

const text = (s: string) => new TextEncoder().encode(s);

function containsSubarray(hay: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return true;
  }
  return false;
}

/** Bounded wait for a lease to be gone from owners() once its TTL has passed on the store's clock. */
async function waitLeaseGone(h: StoreUnderTest, shard: number): Promise<boolean> {
  for (let i = 0; i < 40; i++) {
    if (!(await h.store.owners()).has(shard)) return true;
    await h.elapse(25);
  }
  return false;
}

export function storeContract(
  name: string,
  make: (kek: Keyring) => Promise<StoreUnderTest>,
  options: ContractOptions = {},
): void {
  const withStore = (fn: (h: StoreUnderTest) => Promise<void>) => async () => {
    const h = await make(KEK_A);
    try {
      await fn(h);
    } finally {
      await h.close();
    }
  };
  const it = (title: string, fn: (h: StoreUnderTest) => Promise<void>) =>
    test(title, options.skip === undefined ? {} : { skip: options.skip }, withStore(fn));

  describe(`${name} satisfies the SaStore/LeaseTable contract (ARCHITECTURE.md: leases with fencing epochs)`, () => {
    it('put/get/delete/list round-trip SA records within their shard', async (h) => {
      const s = h.store;
      const lease = await s.acquire(3, 'w1', h.ttlMs * 50);
      assert.ok(lease);
      await s.putSa(3, lease.epoch, 'ike:0001', text('one'));
      await s.putSa(3, lease.epoch, 'ike:0002', text('two'));
      await s.putSa(3, lease.epoch, 'ike:0002', text('two v2'));
      assert.deepEqual(await s.getSa(3, 'ike:0001'), text('one'));
      assert.deepEqual(await s.getSa(3, 'ike:0002'), text('two v2'));
      assert.equal(await s.getSa(4, 'ike:0001'), undefined, 'keys are per shard');
      assert.equal(await s.getSa(3, 'ike:0003'), undefined);
      const list = await s.listShard(3);
      assert.deepEqual(
        [...list.sas].sort(([a], [b]) => (a < b ? -1 : 1)),
        [
          ['ike:0001', text('one')],
          ['ike:0002', text('two v2')],
        ],
      );
      await s.deleteSa(3, lease.epoch, 'ike:0001');
      await s.deleteSa(3, lease.epoch, 'ike:missing');
      assert.equal(await s.getSa(3, 'ike:0001'), undefined);
      assert.deepEqual([...(await s.listShard(3)).sas.keys()], ['ike:0002']);
      assert.equal((await s.listShard(4)).sas.size, 0);
    });

    it('getSa returns a copy: changing the caller buffer after put or get changes nothing stored', async (h) => {
      const s = h.store;
      const lease = await s.acquire(0, 'w1', h.ttlMs * 50);
      assert.ok(lease);
      const v = text('state');
      await s.putSa(0, lease.epoch, 'k', v);
      v.fill(0);
      const got = await s.getSa(0, 'k');
      assert.deepEqual(got, text('state'));
      got!.fill(0);
      assert.deepEqual(await s.getSa(0, 'k'), text('state'));
    });

    it('listShard returns every SA of a large shard across several bounded batches', async (h) => {
      const s = h.store;
      const lease = await s.acquire(7, 'w1', h.ttlMs * 200);
      assert.ok(lease);
      const n = 700;
      await Promise.all(
        Array.from({ length: n }, (_, i) => s.putSa(7, lease.epoch, `sa:${i}`, text(`v${i}`))),
      );
      await s.putSync(7, lease.epoch, 'sa:5', { messageIdOut: 9 });
      const list = await s.listShard(7);
      assert.equal(list.sas.size, n);
      for (let i = 0; i < n; i++) assert.deepEqual(list.sas.get(`sa:${i}`), text(`v${i}`));
      assert.deepEqual([...list.sync.keys()], ['sa:5']);
      assert.equal(list.sync.get('sa:5')?.messageIdOut, 9);
    });

    it('a stale owner cannot write after another owner acquired the shard (fencing epoch)', async (h) => {
      const s = h.store;
      const a = await s.acquire(1, 'worker-a', h.ttlMs);
      assert.ok(a);
      await s.putSa(1, a.epoch, 'ike:aa', text('from a'));
      await h.elapse(h.ttlMs + 50);
      assert.ok(await waitLeaseGone(h, 1), 'lease expired');
      const b = await s.acquire(1, 'worker-b', h.ttlMs * 50);
      assert.ok(b);
      assert.ok(b.epoch > a.epoch);
      await s.putSa(1, b.epoch, 'ike:aa', text('from b'));

      const fenced = (e: unknown) =>
        e instanceof FencedWriteError &&
        e.code === 'IKEGATE_ERR_STORE_FENCED' &&
        e.shard === 1 &&
        e.epoch === a.epoch &&
        e.currentEpoch === b.epoch;
      await assert.rejects(s.putSa(1, a.epoch, 'ike:aa', text('stale a')), fenced);
      await assert.rejects(s.putSa(1, a.epoch, 'ike:new', text('stale a')), fenced);
      await assert.rejects(s.deleteSa(1, a.epoch, 'ike:aa'), fenced);
      await assert.rejects(s.putSync(1, a.epoch, 'ike:aa', { messageIdOut: 99 }), fenced);
      assert.deepEqual(await s.getSa(1, 'ike:aa'), text('from b'));
      assert.equal(await s.getSa(1, 'ike:new'), undefined);
      assert.equal(await s.getSync(1, 'ike:aa'), undefined);
    });

    it('writes are fenced when the shard has no live lease (never acquired, released, or expired)', async (h) => {
      const s = h.store;
      const noLease = (e: unknown) => e instanceof FencedWriteError && e.currentEpoch === undefined;
      await assert.rejects(s.putSa(2, 1, 'k', text('x')), noLease);
      const a = await s.acquire(2, 'w1', h.ttlMs * 50);
      assert.ok(a);
      assert.equal(await s.release(2, 'w1', a.epoch), true);
      await assert.rejects(s.putSa(2, a.epoch, 'k', text('x')), noLease);
      const b = await s.acquire(2, 'w1', h.ttlMs);
      assert.ok(b);
      await h.elapse(h.ttlMs + 50);
      assert.ok(await waitLeaseGone(h, 2));
      await assert.rejects(s.putSa(2, b.epoch, 'k', text('x')), noLease);
      assert.equal(await s.getSa(2, 'k'), undefined);
    });

    it('acquire fails while another owner holds a live lease and succeeds after it expires', async (h) => {
      const s = h.store;
      const a = await s.acquire(5, 'w1', h.ttlMs);
      assert.ok(a);
      assert.equal(await s.acquire(5, 'w2', h.ttlMs), undefined);
      const owners = await s.owners();
      assert.deepEqual(owners.get(5), { owner: 'w1', epoch: a.epoch, expiresAt: a.expiresAt });
      await h.elapse(h.ttlMs + 50);
      assert.ok(await waitLeaseGone(h, 5), 'expired lease leaves owners()');
      const b = await s.acquire(5, 'w2', h.ttlMs * 50);
      assert.ok(b);
      assert.equal((await s.owners()).get(5)?.owner, 'w2');
    });

    it('acquire with takeFrom ends the live tenure of the holder it names (a dead member) and fences its writes; any other holder still refuses it', async (h) => {
      const s = h.store;
      const a = await s.acquire(6, 'w1', h.ttlMs * 50);
      assert.ok(a);
      await s.putSa(6, a.epoch, 'k', text('from-w1'));
      assert.equal(await s.acquire(6, 'w2', h.ttlMs * 50, 'w3'), undefined, 'takeFrom names another holder');
      const b = await s.acquire(6, 'w2', h.ttlMs * 50, 'w1');
      assert.ok(b);
      assert.ok(b.epoch > a.epoch);
      assert.equal((await s.owners()).get(6)?.owner, 'w2');
      await assert.rejects(s.putSa(6, a.epoch, 'k', text('late-w1')), FencedWriteError);
      assert.equal(await s.renew(6, 'w1', a.epoch, h.ttlMs * 50), false);
      assert.deepEqual(await s.getSa(6, 'k'), text('from-w1'));
    });

    it('concurrent acquires of a free shard by several owners grant exactly one lease', async (h) => {
      const s = h.store;
      for (let round = 0; round < 5; round++) {
        const shard = 20 + round;
        const grants = await Promise.all(
          ['w0', 'w1', 'w2', 'w3'].map((w) => s.acquire(shard, w, h.ttlMs * 50)),
        );
        const won = grants.filter((g) => g !== undefined);
        assert.equal(won.length, 1, `round ${round}`);
        const writes = await Promise.allSettled(
          grants.map((g, i) => s.putSa(shard, g?.epoch ?? won[0]!.epoch + 1, 'k', text(`w${i}`))),
        );
        assert.equal(writes.filter((w) => w.status === 'fulfilled').length, 1, 'only the winner writes');
      }
    });

    it('epochs strictly increase on every acquire, across expiry, release and the same owner', async (h) => {
      const s = h.store;
      const epochs: number[] = [];
      const first = await s.acquire(6, 'w1', h.ttlMs * 50);
      assert.ok(first);
      epochs.push(first.epoch);
      const again = await s.acquire(6, 'w1', h.ttlMs * 50);
      assert.ok(again, 'the live owner may start a new tenure (restart with the same id)');
      epochs.push(again.epoch);
      await assert.rejects(s.putSa(6, first.epoch, 'k', text('old incarnation')), FencedWriteError);
      assert.equal(await s.release(6, 'w1', again.epoch), true);
      const third = await s.acquire(6, 'w2', h.ttlMs);
      assert.ok(third);
      epochs.push(third.epoch);
      await h.expireLease(6);
      const fourth = await s.acquire(6, 'w1', h.ttlMs * 50);
      assert.ok(fourth);
      epochs.push(fourth.epoch);
      for (let i = 1; i < epochs.length; i++) assert.ok(epochs[i]! > epochs[i - 1]!, `epochs ${epochs}`);
    });

    it('renew extends only the live tenure of its owner and epoch', async (h) => {
      const s = h.store;
      const a = await s.acquire(8, 'w1', h.ttlMs);
      assert.ok(a);
      assert.equal(await s.renew(8, 'w2', a.epoch, h.ttlMs * 50), false, 'other owner');
      assert.equal(await s.renew(8, 'w1', a.epoch + 1, h.ttlMs * 50), false, 'other epoch');
      assert.equal(await s.renew(8, 'w1', a.epoch, h.ttlMs * 50), true);
      await h.elapse(h.ttlMs + 50);
      const after = (await s.owners()).get(8);
      assert.equal(after?.owner, 'w1', 'renewed lease outlives the first TTL');
      assert.equal(after?.epoch, a.epoch, 'renewal keeps the epoch');
      assert.ok(after!.expiresAt > a.expiresAt);
      await s.putSa(8, a.epoch, 'k', text('still mine'));

      const b = await s.acquire(9, 'w1', h.ttlMs);
      assert.ok(b);
      await h.elapse(h.ttlMs + 50);
      assert.ok(await waitLeaseGone(h, 9));
      assert.equal(await s.renew(9, 'w1', b.epoch, h.ttlMs), false, 'an expired lease cannot be renewed');
      assert.equal((await s.owners()).has(9), false);
    });

    it("renewMany answers each tenure as renew would, in the order asked: its own live ones extended, another owner's, another epoch, a released and an expired one refused", async (h) => {
      const s = h.store;
      // Expired first: a harness may expire every lease at once (the memory store's clock).
      const expiring = await s.acquire(23, 'w1', h.ttlMs);
      assert.ok(expiring);
      await h.expireLease(23);
      const mine = await s.acquire(20, 'w1', h.ttlMs);
      const theirs = await s.acquire(21, 'w2', h.ttlMs);
      const released = await s.acquire(22, 'w1', h.ttlMs);
      const also = await s.acquire(24, 'w1', h.ttlMs);
      assert.ok(mine && theirs && released && also);
      assert.ok(await s.release(22, 'w1', released.epoch));
      assert.deepEqual(await s.renewMany('w1', [], h.ttlMs * 50), []);
      const answers = await s.renewMany(
        'w1',
        [
          { shard: 24, epoch: also.epoch },
          { shard: 21, epoch: theirs.epoch },
          { shard: 20, epoch: mine.epoch + 1 },
          { shard: 22, epoch: released.epoch },
          { shard: 23, epoch: expiring.epoch },
          { shard: 20, epoch: mine.epoch },
        ],
        h.ttlMs * 50,
      );
      assert.deepEqual(answers, [true, false, false, false, false, true]);
      await h.elapse(h.ttlMs + 50);
      const owners = await s.owners();
      assert.equal(owners.get(20)?.epoch, mine.epoch, 'renewed: outlives the first TTL');
      assert.equal(owners.get(24)?.owner, 'w1');
      assert.equal(owners.has(22) || owners.has(23), false, 'nothing came back to life');
      assert.ok(await waitLeaseGone(h, 21), "w2's lease was not renewed by w1's call");
      await assert.rejects(s.renewMany('w1', [{ shard: 20, epoch: 1.5 }], 100), LocalUsageError);
      await assert.rejects(s.renewMany('', [{ shard: 20, epoch: 1 }], 100), LocalUsageError);
      await assert.rejects(s.renewMany('w1', [{ shard: -1, epoch: 1 }], 100), LocalUsageError);
    });

    it('renewMany over more tenures than one batch (300 shards) renews every one, answers in order', async (h) => {
      const s = h.store;
      const refs = [];
      for (let shard = 100; shard < 400; shard++) {
        // Long enough that none lapses while the others are acquired one by one.
        const g = await s.acquire(shard, 'w1', h.ttlMs * 50);
        assert.ok(g);
        refs.push({ shard, epoch: g.epoch });
      }
      refs[299] = { shard: 399, epoch: refs[299]!.epoch + 1 }; // the last one: a wrong epoch
      const answers = await s.renewMany('w1', refs, h.ttlMs * 50);
      assert.equal(answers.length, 300);
      assert.equal(answers.filter((a) => a).length, 299);
      assert.equal(answers[299], false);
    });

    it('release ends only the matching tenure, and the shard can be acquired at once', async (h) => {
      const s = h.store;
      const a = await s.acquire(10, 'w1', h.ttlMs * 50);
      assert.ok(a);
      assert.equal(await s.release(10, 'w2', a.epoch), false);
      assert.equal(await s.release(10, 'w1', a.epoch + 1), false);
      assert.equal((await s.owners()).get(10)?.owner, 'w1');
      assert.equal(await s.release(10, 'w1', a.epoch), true);
      assert.equal(await s.release(10, 'w1', a.epoch), false, 'twice');
      assert.equal((await s.owners()).has(10), false);
      const b = await s.acquire(10, 'w2', h.ttlMs * 50);
      assert.ok(b && b.epoch > a.epoch);
    });

    it('version moves on acquire and release, not on renew, so edges can poll it', async (h) => {
      const s = h.store;
      const v0 = await s.version();
      const a = await s.acquire(11, 'w1', h.ttlMs * 50);
      assert.ok(a);
      const v1 = await s.version();
      assert.notEqual(v1, v0);
      assert.equal(await s.renew(11, 'w1', a.epoch, h.ttlMs * 50), true);
      assert.equal(await s.version(), v1);
      assert.equal(await s.acquire(11, 'w2', h.ttlMs), undefined);
      assert.equal(await s.version(), v1, 'a failed acquire changes nothing');
      await s.release(11, 'w1', a.epoch);
      assert.notEqual(await s.version(), v1);
    });

    it('sync checkpoints merge with max(), never move back, and go away with their SA', async (h) => {
      const s = h.store;
      const a = await s.acquire(12, 'w1', h.ttlMs * 50);
      assert.ok(a);
      assert.equal(
        await s.putSync(12, a.epoch, 'child:1', { espSeqOut: 5n }),
        undefined,
        'no SA, no checkpoint',
      );
      assert.equal(await s.getSync(12, 'child:1'), undefined);
      await s.putSa(12, a.epoch, 'child:1', text('child sa'));
      assert.deepEqual(await s.putSync(12, a.epoch, 'child:1', { espSeqOut: 1000n, messageIdOut: 3 }), {
        messageIdOut: 3,
        messageIdIn: 0,
        espSeqOut: 1000n,
        espSeqIn: 0n,
      });
      const big = (1n << 64n) - 2n;
      const merged = await s.putSync(12, a.epoch, 'child:1', {
        espSeqOut: 999n,
        espSeqIn: big,
        messageIdIn: 7,
      });
      assert.deepEqual(merged, { messageIdOut: 3, messageIdIn: 7, espSeqOut: 1000n, espSeqIn: big });
      assert.deepEqual(await s.getSync(12, 'child:1'), merged);
      assert.deepEqual((await s.listShard(12)).sync.get('child:1'), merged);
      await s.deleteSa(12, a.epoch, 'child:1');
      assert.equal(await s.getSync(12, 'child:1'), undefined);
      await assert.rejects(s.putSync(12, a.epoch, 'x', { espSeqOut: -1n }), LocalUsageError);
      await assert.rejects(s.putSync(12, a.epoch, 'x', { messageIdIn: 2 ** 32 }), LocalUsageError);
    });

    it('SA values are sealed at rest with the KEK: the raw bytes are not the plaintext', async (h) => {
      const s = h.store;
      const a = await s.acquire(13, 'w1', h.ttlMs * 50);
      assert.ok(a);
      const secret = text('SK_d=00112233445566778899aabbccddeeff secret keys of the IKE SA');
      await s.putSa(13, a.epoch, 'ike:secret', secret);
      const raw = await h.rawSa(13, 'ike:secret');
      assert.ok(raw);
      assert.equal(raw[0], 0x01, 'format byte');
      assert.equal(raw[1], KEK_A.current.id, 'KEK id byte');
      assert.equal(raw.length, 2 + 12 + secret.length + 16);
      assert.equal(containsSubarray(raw, text('SK_d')), false);
      assert.equal(containsSubarray(raw, text('secret')), false);
      await s.putSa(13, a.epoch, 'ike:secret', secret);
      const raw2 = await h.rawSa(13, 'ike:secret');
      assert.notDeepEqual(raw2!.subarray(2, 14), raw.subarray(2, 14), 'fresh nonce per write');
    });

    it('a wrong KEK, a tampered value or a value moved to another key fails with SealedValueError', async (h) => {
      const s = h.store;
      const a = await s.acquire(14, 'w1', h.ttlMs * 50);
      assert.ok(a);
      await s.putSa(14, a.epoch, 'ike:1', text('plain state'));
      await s.putSa(14, a.epoch, 'ike:2', text('other state'));
      const unseal = (e: unknown) =>
        e instanceof SealedValueError && e.code === 'IKEGATE_ERR_STORE_UNSEAL' && /KEK/.test(e.message);
      await assert.rejects(s.withKeyring(KEK_B).getSa(14, 'ike:1'), unseal);
      await assert.rejects(s.withKeyring(KEK_B).listShard(14), unseal);
      await assert.rejects(
        s.withKeyring(KEK_C).getSa(14, 'ike:1'),
        (e: unknown) => e instanceof SealedValueError && e.code === 'IKEGATE_ERR_STORE_UNKNOWN_KEK',
      );
      const raw = (await h.rawSa(14, 'ike:1'))!;
      await h.setRawSa(14, 'ike:2', raw);
      await assert.rejects(s.getSa(14, 'ike:2'), unseal, 'AAD binds shard and key');
      const flipped = raw.slice();
      flipped[flipped.length - 20]! ^= 1;
      await h.setRawSa(14, 'ike:1', flipped);
      await assert.rejects(s.getSa(14, 'ike:1'), unseal);
      await h.setRawSa(14, 'ike:1', text('not sealed at all'));
      await assert.rejects(
        s.getSa(14, 'ike:1'),
        (e: unknown) => e instanceof SealedValueError && e.code === 'IKEGATE_ERR_STORE_UNSEAL',
      );
      // A takeover lists with skipUnreadable: the records that open come back, the others are
      // named (and stay in the store), instead of the whole shard failing on one record.
      await s.putSa(14, a.epoch, 'ike:3', text('a third state'));
      const listed = await s.listShard(14, { skipUnreadable: true });
      assert.deepEqual([...listed.sas.keys()].sort(), ['ike:3']);
      assert.deepEqual([...(listed.unreadable?.keys() ?? [])].sort(), ['ike:1', 'ike:2']);
      assert.ok(await h.rawSa(14, 'ike:1'), 'an unreadable record is left in the store');
      const otherKek = await s.withKeyring(KEK_B).listShard(14, { skipUnreadable: true });
      assert.equal(otherKek.sas.size, 0);
      assert.equal(otherKek.unreadable?.size, 3);
    });

    it('KEK rotation: the new KEK seals new writes and old values still open through previous', async (h) => {
      const s = h.store;
      const a = await s.acquire(15, 'w1', h.ttlMs * 50);
      assert.ok(a);
      await s.putSa(15, a.epoch, 'old', text('sealed under id 1'));
      const rotated = s.withKeyring({ current: KEK_C.current, previous: [KEK_A.current] });
      assert.deepEqual(await rotated.getSa(15, 'old'), text('sealed under id 1'));
      await rotated.putSa(15, a.epoch, 'new', text('sealed under id 2'));
      assert.equal((await h.rawSa(15, 'new'))?.[1], KEK_C.current.id);
      assert.deepEqual(await rotated.getSa(15, 'new'), text('sealed under id 2'));
      await assert.rejects(
        s.getSa(15, 'new'),
        SealedValueError,
        'a store without the new KEK cannot read it',
      );
    });

    it('rejects malformed arguments with LocalUsageError before touching the store', async (h) => {
      const s = h.store;
      const usage = (code: string) => (e: unknown) => e instanceof LocalUsageError && e.code === code;
      await assert.rejects(s.getSa(-1, 'k'), usage('IKEGATE_ERR_STORE_BAD_SHARD'));
      await assert.rejects(s.getSa(1024, 'k'), usage('IKEGATE_ERR_STORE_BAD_SHARD'));
      await assert.rejects(s.getSa(0, ''), usage('IKEGATE_ERR_STORE_BAD_KEY'));
      await assert.rejects(s.getSa(0, 'a}{b'), usage('IKEGATE_ERR_STORE_BAD_KEY'));
      await assert.rejects(s.getSa(0, 'x*'), usage('IKEGATE_ERR_STORE_BAD_KEY'));
      await assert.rejects(s.acquire(0, 'w1', 0), usage('IKEGATE_ERR_STORE_BAD_TTL'));
      await assert.rejects(s.acquire(0, '', 100), usage('IKEGATE_ERR_STORE_BAD_OWNER'));
      await assert.rejects(s.putSa(0, 0, 'k', text('x')), usage('IKEGATE_ERR_STORE_BAD_EPOCH'));
      await assert.rejects(s.renew(0, 'w1', 1.5, 100), usage('IKEGATE_ERR_STORE_BAD_EPOCH'));
    });

    it('property: random acquire/renew/release/expire/put across 3 owners never lets a non-owner write', async (h) => {
      const s = h.store;
      const owners = ['w0', 'w1', 'w2'] as const;
      const ownerIx = fc.integer({ min: 0, max: owners.length - 1 });
      const op = fc.oneof(
        fc.record({ kind: fc.constant('acquire' as const), o: ownerIx }),
        fc.record({ kind: fc.constant('renew' as const), o: ownerIx }),
        fc.record({ kind: fc.constant('release' as const), o: ownerIx }),
        fc.record({ kind: fc.constant('put' as const), o: ownerIx }),
        fc.record({ kind: fc.constant('delete' as const), o: ownerIx }),
        fc.record({ kind: fc.constant('expire' as const), o: ownerIx }),
      );
      let run = 0;
      await fc.assert(
        fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 25 }), async (ops) => {
          const shard = 100 + (run++ % 900);
          // A fresh shard per run; on a reused one (a long run), epochs continue, which the model allows.
          const ttl = h.ttlMs * 100;
          const held = new Map<string, number>();
          let lease: { owner: string; epoch: number } | undefined;
          let maxEpoch = 0;
          let stored: string | undefined = (await s.getSa(shard, 'sa')) === undefined ? undefined : 'unknown';
          await h.expireLease(shard);
          for (const [step, { kind, o }] of ops.entries()) {
            const who = owners[o]!;
            const mine = held.get(who);
            const isLive = lease !== undefined && lease.owner === who && lease.epoch === mine;
            switch (kind) {
              case 'acquire': {
                const g = await s.acquire(shard, who, ttl);
                assert.equal(g !== undefined, lease === undefined || lease.owner === who, `acquire ${step}`);
                if (g) {
                  assert.ok(g.epoch > maxEpoch, 'epoch increases');
                  maxEpoch = g.epoch;
                  held.set(who, g.epoch);
                  lease = { owner: who, epoch: g.epoch };
                }
                break;
              }
              case 'renew':
                if (mine === undefined) break;
                assert.equal(await s.renew(shard, who, mine, ttl), isLive, `renew ${step}`);
                break;
              case 'release':
                if (mine === undefined) break;
                assert.equal(await s.release(shard, who, mine), isLive, `release ${step}`);
                if (isLive) lease = undefined;
                break;
              case 'put':
              case 'delete': {
                if (mine === undefined) break;
                const value = `${who}@${mine}#${step}`;
                const write =
                  kind === 'put' ? s.putSa(shard, mine, 'sa', text(value)) : s.deleteSa(shard, mine, 'sa');
                const ok = await write.then(
                  () => true,
                  (e: unknown) => {
                    assert.ok(e instanceof FencedWriteError, String(e));
                    return false;
                  },
                );
                assert.equal(
                  ok,
                  isLive,
                  `${kind} by ${who} epoch ${mine} at ${step}, lease ${JSON.stringify(lease)}`,
                );
                if (ok) stored = kind === 'put' ? value : undefined;
                break;
              }
              case 'expire':
                await h.expireLease(shard);
                lease = undefined;
                break;
            }
            if (stored !== 'unknown') {
              const got = await s.getSa(shard, 'sa');
              assert.equal(got === undefined ? undefined : new TextDecoder().decode(got), stored);
            }
          }
        }),
        { numRuns: options.propertyRuns ?? 100 },
      );
    });
  });
}

/** Real-time stores wait; exported for harnesses. */
export const realElapse = (ms: number): Promise<void> => sleep(ms).then(() => undefined);
