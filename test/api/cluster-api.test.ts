/**
 * Issue #10 "Must show", against a running cluster of real processes: redis-server, 2 `ikegate
 * worker`s (each with its TUN), 1 `ikegate edge`, `ikegate control`; a real strongSwan (charon with
 * kernel-libipsec, INTEROP.md) in its own namespace as the road warrior, `ikegate loadgen` for
 * many peers.
 *
 *   strongSwan netns  10.74.1.2 --veth-- 10.74.1.1 (this namespace: the edge on UDP 500/4500)
 *                                        10.74.2.1/32 (this namespace: what the tunnel reaches)
 *
 * The edge listens on the veth address because strongSwan's IKE_SA_INIT goes to port 500 and it
 * then floats to 4500 (INTEROP.md); everything else (Redis, relays, admin ports) stays on
 * loopback. Tunnel traffic: strongSwan pings 10.74.2.1 from its virtual IP; the worker owning the
 * SA writes the packet to its TUN, this namespace answers it locally and the reply goes back to
 * that worker through the /32 route it keeps for the virtual IP. No forwarding is switched on.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { requirement } from '@ikegate/testkit';
import { canUseNetns, ip } from '../interop/lib/netns.js';
import { Charon, haveStrongswan } from '../interop/lib/strongswan.js';
import { pingThrough } from '../interop/lib/swanctl.js';
import { type SaItem, type SaList, TestCluster, until } from '../cluster/lib/cluster.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok
    ? netns.why
    : spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0
      ? 'redis-server not installed'
      : !haveStrongswan()
        ? 'strongSwan (charon, swanctl) not installed'
        : false,
);

const tag = `ap${process.pid % 10000}`;
const NS = `ig${tag}s`;
const VETH_HERE = `v${tag}r`;
const VETH_THERE = `v${tag}s`;
const EDGE_ADDR = '10.74.1.1';
const CLIENT_ADDR = '10.74.1.2';
const TARGET = '10.74.2.1';
const POOL = { name: 'api', cidr: '10.203.0.0/16' };
const PEER_ID = 'carol@api.test';
const PSK_1 = 'first-api-psk-5b0f1d7e93c2';
const PSK_2 = 'second-api-psk-c47a2e9b01f8';

function carolConf(psk: string): string {
  return `connections {
  rw {
    local_addrs = ${CLIENT_ADDR}
    remote_addrs = ${EDGE_ADDR}
    vips = 0.0.0.0
    encap = yes
    proposals = aes256gcm16-prfsha256-x25519
    rekey_time = 0
    local {
      auth = psk
      id = ${PEER_ID}
    }
    remote {
      auth = psk
      id = gw.example.org
    }
    children {
      t {
        esp_proposals = aes256gcm16
        remote_ts = ${TARGET}/32
        rekey_time = 0
      }
    }
  }
}
secrets {
  ike-1 {
    secret = "${psk}"
    id-1 = ${PEER_ID}
    id-2 = gw.example.org
  }
}
`;
}

/** Index of an IPv4 address inside POOL. */
function poolIndex(address: string): number {
  const n = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  return n(address) - n(POOL.cidr.split('/')[0]!);
}

describe(
  'control API against a running cluster: strongSwan, loadgen, 2 workers, 1 edge (issue #10)',
  { skip },
  () => {
    const c = new TestCluster(3000);
    let charon: Charon;

    /** `swanctl --initiate` of the road warrior: whether it came up, and what swanctl printed. */
    const initiate = (): { ok: boolean; out: string } => {
      const r = spawnSync('swanctl', ['--initiate', '--child', 't', '--ike', 'rw', '--timeout', '10'], {
        env: charon.env,
        encoding: 'utf8',
        timeout: 15_000,
      });
      return {
        ok: r.status === 0 && /initiate completed successfully/.test(r.stdout),
        out: r.stdout + r.stderr,
      };
    };
    const swanctl = (...args: string[]) => {
      const r = spawnSync('swanctl', args, { env: charon.env, encoding: 'utf8', timeout: 15_000 });
      if (r.status !== 0) throw new Error(`swanctl ${args.join(' ')}: ${r.stdout}${r.stderr}`);
      return r.stdout;
    };
    const listSas = () => swanctl('--list-sas');
    const terminate = async () => {
      spawnSync('swanctl', ['--terminate', '--ike', 'rw', '--timeout', '10'], {
        env: charon.env,
        timeout: 15_000,
      });
      await until(
        async () => listSas(),
        (s) => !/ESTABLISHED/.test(s),
        10_000,
      );
    };
    /** Reloads strongSwan's connection and secret (the PSK it authenticates with). */
    const useCharonPsk = (psk: string) => {
      writeFileSync(join(charon.dir, 'swanctl.conf'), carolConf(psk));
      swanctl('--load-all', '--clear', '--file', join(charon.dir, 'swanctl.conf'));
    };
    const carolSa = async (): Promise<SaItem | undefined> =>
      ((await c.ctl(`/v1/sas?peer=carol&state=established`)).body as SaList).items[0];
    /** Waits (bounded) until every worker lists at least `version` of the managed configuration. */
    const applied = async (version: number) => {
      const r = await until(
        () => c.ctl('/v1/config').then((x) => x.body as { members: { kind: string; version?: number }[] }),
        (v) => v.members.filter((m) => m.kind === 'worker').every((m) => (m.version ?? 0) >= version),
        5_000,
      );
      assert.ok(
        r.members.filter((m) => m.kind === 'worker').every((m) => (m.version ?? 0) >= version),
        `every worker applied version ${version}: ${JSON.stringify(r.members)}`,
      );
    };

    before(async () => {
      spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', VETH_HERE], { stdio: 'ignore' });
      ip('netns', 'add', NS);
      ip('-n', NS, 'link', 'set', 'lo', 'up');
      ip('link', 'add', VETH_HERE, 'type', 'veth', 'peer', 'name', VETH_THERE);
      ip('link', 'set', VETH_THERE, 'netns', NS);
      ip('addr', 'add', `${EDGE_ADDR}/24`, 'dev', VETH_HERE);
      ip('addr', 'add', `${TARGET}/32`, 'dev', VETH_HERE);
      ip('link', 'set', VETH_HERE, 'up');
      ip('-n', NS, 'addr', 'add', `${CLIENT_ADDR}/24`, 'dev', VETH_THERE);
      ip('-n', NS, 'link', 'set', VETH_THERE, 'up');
      await c.start();
      await c.addWorker('w1', `ik${tag}1`);
      await c.addWorker('w2', `ik${tag}2`);
      await c.addEdge('e1', { address: EDGE_ADDR, ike: 500, natT: 4500 });
      await c.startControl();
      const shards = await until(
        () => c.shards(),
        (s) => s.owned === 1024 && Object.keys(s.byWorker).length === 2,
      );
      assert.equal(shards.owned, 1024);
      charon = new Charon({ netns: NS, swanctlConf: carolConf(PSK_1), log: { ike: 2, cfg: 1, knl: 1 } });
      await charon.start();
    });

    after(async () => {
      if (process.env.IKEGATE_CLUSTER_DEBUG) {
        for (const p of [...c.workers.map((w) => w.proc), ...c.edges.map((e) => e.proc), c.control!])
          console.error(p.name, JSON.stringify(p.lines.slice(-30)), p.stderr.join('').slice(-1500));
        console.error(charon?.log().slice(-6000));
      }
      await charon?.stop();
      await c.stop();
      spawnSync('ip', ['netns', 'del', NS], { stdio: 'ignore' });
      spawnSync('ip', ['link', 'del', VETH_HERE], { stdio: 'ignore' });
    });

    test('a peer created with POST /v1/peers (PSK, pool) is accepted by strongSwan within 1 s of the 201, no restart; before, strongSwan is refused with AUTHENTICATION_FAILED (issue #10 live apply, RFC 7296 §2.21.2)', async (t) => {
      const pool = await c.ctl('/v1/pools', { method: 'POST', body: POOL });
      assert.equal(pool.status, 201, JSON.stringify(pool.body));

      const early = initiate();
      assert.equal(early.ok, false, 'no peer matches carol yet');
      assert.match(early.out, /AUTHENTICATION_FAILED/, early.out);

      const created = await c.ctl('/v1/peers', {
        method: 'POST',
        body: {
          name: 'carol',
          id: PEER_ID,
          auth: { psk: PSK_1 },
          pool: POOL.name,
          localTs: ['10.74.2.0/24'],
        },
      });
      const t0 = performance.now();
      assert.equal(created.status, 201, JSON.stringify(created.body));
      assert.equal(created.headers.get('location'), '/v1/peers/carol');
      assert.doesNotMatch(JSON.stringify(created.body), new RegExp(PSK_1), 'the PSK is write-only');
      assert.deepEqual((created.body as { auth: unknown }).auth, { kind: 'psk' });

      // Setups from the moment the 201 arrived until one is accepted (each refusal is fast).
      let attempts = 0;
      let last = { ok: false, out: '' };
      while (performance.now() - t0 < 10_000) {
        attempts++;
        last = initiate();
        if (last.ok) break;
        await sleep(25);
      }
      const elapsed = performance.now() - t0;
      assert.ok(last.ok, `strongSwan never got in: ${last.out}\n${charon.log().slice(-3000)}`);
      t.diagnostic(
        `201 -> strongSwan's initiate completed: ${elapsed.toFixed(0)} ms, ${attempts} attempt(s)`,
      );
      assert.ok(
        elapsed <= 1000,
        `issue #10: a peer created through the API must be accepted within 1 s; strongSwan got in ${elapsed.toFixed(0)} ms after the 201 (${attempts} attempts)`,
      );

      const sas = listSas();
      const vip = /\[(10\.203\.\d+\.\d+)\]/.exec(sas)?.[1];
      assert.ok(vip, `a virtual IP from pool ${POOL.name}: ${sas}`);
      const sa = await until(carolSa, (s) => s !== undefined);
      assert.equal(sa?.virtualIp, vip);
      assert.equal(sa?.peerId, PEER_ID);
      assert.equal(pingThrough(NS, vip, TARGET, 3), 3, 'traffic through the new peer’s tunnel');
    });

    test('PATCH of the peer’s PSK: the old PSK fails on the next setup, the new one works (issue #10, RFC 7296 §2.15)', async () => {
      const patched = await c.ctl('/v1/peers/carol', { method: 'PATCH', body: { auth: { psk: PSK_2 } } });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.doesNotMatch(
        JSON.stringify(patched.body),
        new RegExp(`${PSK_1}|${PSK_2}`),
        'PSKs are write-only',
      );
      await applied(Number(patched.headers.get('ikegate-config-version')));
      await terminate();

      const old = initiate();
      assert.equal(old.ok, false, 'the old PSK no longer authenticates');
      assert.match(old.out, /AUTHENTICATION_FAILED/, old.out);

      useCharonPsk(PSK_2);
      const fresh = initiate();
      assert.ok(fresh.ok, `the new PSK authenticates: ${fresh.out}`);
      assert.match(listSas(), /ESTABLISHED/);
    });

    test('shrinking a pool below its use is refused: 409 in-use with the holders (SPI, peer id, worker) (issue #10 pools)', async () => {
      let sa = await until(carolSa, (s) => s !== undefined);
      assert.ok(sa?.virtualIp);
      // Host index = shard mod 1024 (managed-pool.ts); a /30 keeps index 2 only. For the 1-in-1024
      // case of index 2, set the SA up again (a new SPI, another shard).
      for (let i = 0; i < 3 && poolIndex(sa!.virtualIp!) < 3; i++) {
        await terminate();
        assert.ok(initiate().ok);
        sa = await until(carolSa, (s) => s !== undefined && s.spi !== sa!.spi);
      }
      assert.ok(poolIndex(sa!.virtualIp!) >= 3);
      const before = (await c.ctl(`/v1/pools/${POOL.name}`)).body as { cidr: string; inUse: number };
      assert.equal(before.inUse, 1);

      const shrink = await c.ctl(`/v1/pools/${POOL.name}`, {
        method: 'PUT',
        body: { cidr: '10.203.0.0/30' },
      });
      assert.equal(shrink.status, 409, JSON.stringify(shrink.body));
      assert.match(shrink.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const problem = shrink.body as { type: string; holders: Record<string, string>[] };
      assert.equal(problem.type, 'urn:ikegate:problem:in-use');
      assert.deepEqual(problem.holders, [
        { address: sa!.virtualIp, spi: sa!.spi, peerId: PEER_ID, peer: 'carol', worker: sa!.worker },
      ]);

      const del = await c.ctl(`/v1/pools/${POOL.name}`, { method: 'DELETE' });
      assert.equal(del.status, 409, JSON.stringify(del.body));
      assert.deepEqual((del.body as { peers: string[] }).peers, ['carol']);
      assert.equal((del.body as { holders: unknown[] }).holders.length, 1);

      const after = (await c.ctl(`/v1/pools/${POOL.name}`)).body as { cidr: string; inUse: number };
      assert.equal(after.cidr, POOL.cidr, 'the pool is unchanged');
    });

    test('POST /v1/workers/{id}/drain moves its SAs to the other worker, none lost: same SPIs there, each answers a liveness check, strongSwan’s traffic continues (issue #10 cluster drains, RFC 7296 §1.4)', async () => {
      const load = await c.loadgen(c.edges[0]!, { count: 60, transport: 'udp', idPrefix: 'd' });
      assert.equal(load.summary.established, 60, JSON.stringify(load.summary));
      const sa = (await until(carolSa, (s) => s !== undefined))!;
      const victim = c.workers.find((w) => w.id === sa.worker)!;
      const other = c.workers.find((w) => w !== victim)!;
      const before = await until(
        () => c.sasByWorker(),
        (m) => [...m.values()].flat().length === 61,
      );
      const all = [...before.values()].flat();
      assert.equal(all.length, 61);
      const moving = before.get(victim.id)!;
      assert.ok(moving.includes(sa.spi) && moving.length > 1, `${victim.id} holds carol's SA and others`);
      const initsBefore = await c.metric(other.admin, 'ikegate_ike_messages_total', {
        direction: 'in',
        exchange: 'IKE_SA_INIT',
      });

      const drain = await c.ctl(`/v1/workers/${victim.id}/drain`, { method: 'POST', role: 'operator' });
      assert.equal(drain.status, 202, JSON.stringify(drain.body));
      const moved = await until(
        () => c.sasByWorker(),
        (m) => (m.get(victim.id)?.length ?? 1) === 0 && all.every((spi) => m.get(other.id)?.includes(spi)),
        30_000,
      );
      assert.deepEqual(moved.get(victim.id), [], `${victim.id} holds nothing after the drain`);
      assert.deepEqual(
        [...moved.get(other.id)!].sort(),
        [...all].sort(),
        'the same SPIs, every one, on the other worker',
      );
      // Empty shards may still be between the drained worker's release and the other's acquire.
      const shards = await until(
        () => c.shards(),
        (v) => v.byWorker[other.id] === 1024,
        30_000,
      );
      assert.deepEqual(shards.byWorker, { [other.id]: 1024 });
      const workers = (await c.ctl('/v1/workers')).body as { items: { id: string; draining: boolean }[] };
      assert.equal(workers.items.find((w) => w.id === victim.id)?.draining, true);
      assert.equal(
        await c.metric(other.admin, 'ikegate_ike_messages_total', {
          direction: 'in',
          exchange: 'IKE_SA_INIT',
        }),
        initsBefore,
        'nobody set up a new IKE SA: they were adopted',
      );

      // Traffic continues on strongSwan's SA (same IKE SA: the SPI is still listed, now on the other worker).
      assert.equal(pingThrough(NS, sa.virtualIp!, TARGET, 3), 3, 'pings through the adopting worker');
      assert.equal((await carolSa())?.worker, other.id);

      // A liveness check on each moved SA is answered by its peer (the SA's last activity advances).
      const lastBefore = new Map(
        (await c.allSas()).items
          .filter((s) => moving.includes(s.spi))
          .map((s) => [s.spi, s.lastActivity ?? '']),
      );
      assert.equal(lastBefore.size, moving.length);
      for (const spi of moving) {
        const r = await c.ctl(`/v1/sas/${spi}/liveness`, { method: 'POST', role: 'operator' });
        assert.equal(r.status, 202, `${spi}: ${JSON.stringify(r.body)}`);
      }
      const answeredBy = async () =>
        new Set(
          (await c.allSas()).items
            .filter((s) => lastBefore.has(s.spi) && (s.lastActivity ?? '') > lastBefore.get(s.spi)!)
            .map((s) => s.spi),
        );
      const answered = await until(answeredBy, (a) => a.size === moving.length, 15_000);
      const silent = moving.filter((spi) => !answered.has(spi));
      assert.deepEqual(
        silent.filter((spi) => spi !== sa.spi),
        [],
        'every moved loadgen SA answered its liveness check',
      );
      const strongswanAfter = listSas();

      // Undrained, it takes shards again (for the tests after this one).
      const undrain = await c.ctl(`/v1/workers/${victim.id}/drain`, { method: 'DELETE', role: 'operator' });
      assert.equal(undrain.status, 200, JSON.stringify(undrain.body));
      const back = await until(
        () => c.shards(),
        (s) => s.byWorker[victim.id] === 512 && s.byWorker[other.id] === 512,
        30_000,
      );
      assert.deepEqual(back.byWorker, { [victim.id]: 512, [other.id]: 512 }, 'placement is even again');
      await load.proc.stop('SIGKILL');

      // strongSwan's SA: the adopting worker synchronized Message IDs with it (RFC 6311 §4.2, an
      // INFORMATIONAL with Message ID 0) and must keep it usable for its own requests afterwards.
      assert.match(strongswanAfter, /ESTABLISHED/, `strongSwan kept its SA:\n${charon.log().slice(-1500)}`);
      assert.ok(
        answered.has(sa.spi),
        `strongSwan answered the liveness check on ${sa.spi}:\n${charon.log().slice(-1500)}`,
      );
    });

    test('DELETE /v1/peers/{name} sends DELETE to its SAs (strongSwan drops the SA) and frees the virtual IP (issue #10, RFC 7296 §1.4.1)', async () => {
      // (Set up again if an earlier test left strongSwan without an SA: this test is about deletion.)
      if (!/ESTABLISHED/.test(listSas())) assert.ok(initiate().ok);
      const vip = /\[(10\.203\.\d+\.\d+)\]/.exec(listSas())?.[1];
      const sa = (await until(
        async () => ((await c.ctl(`/v1/sas?peer=carol&virtualIp=${vip}`)).body as SaList).items[0],
        (s) => s !== undefined,
      ))!;
      assert.ok(sa, `the SA holding ${vip} is listed`);
      const inUse = ((await c.ctl(`/v1/pools/${POOL.name}`)).body as { inUse: number }).inUse;
      assert.ok(inUse >= 1);
      const del = await c.ctl('/v1/peers/carol', { method: 'DELETE' });
      assert.equal(del.status, 200, JSON.stringify(del.body));
      assert.equal((del.body as { keepSas: boolean }).keepSas, false);
      const sas = await until(
        async () => listSas(),
        (s) => !/ESTABLISHED/.test(s),
        10_000,
      );
      assert.doesNotMatch(sas, /ESTABLISHED/, 'strongSwan has no SA left');
      assert.match(charon.log(), /received DELETE for IKE_SA rw/, 'strongSwan got our DELETE');
      // strongSwan's SA is gone and its address is free (inUse counts every holder: an SA left over
      // from an earlier failure, whose peer no longer answers, may still hold one while its DELETE
      // is retransmitted).
      assert.equal(
        (
          await until(
            () => c.ctl(`/v1/sas/${sa.spi}`),
            (r) => r.status === 404,
            10_000,
          )
        ).status,
        404,
        `SA ${sa.spi} is gone`,
      );
      const pool = await until(
        () => c.ctl(`/v1/pools/${POOL.name}`).then((r) => r.body as { inUse: number }),
        (p) => p.inUse <= inUse - 1,
        10_000,
      );
      assert.equal(pool.inUse, inUse - 1, `the virtual IP ${vip} is back in the pool`);
      const gone = await c.ctl('/v1/peers/carol');
      assert.equal(gone.status, 404);
      assert.match(gone.headers.get('content-type') ?? '', /^application\/problem\+json/);
      const again = initiate();
      assert.equal(again.ok, false);
      assert.match(again.out, /AUTHENTICATION_FAILED/, 'the deleted peer is refused');
    });

    test('GET /v1/sas pages (limit=7) return every SA exactly once while SAs are created and deleted concurrently (issue #10 sas: cursor pagination)', async () => {
      const edge = c.edges[0]!;
      const stay = await c.loadgen(edge, { count: 150, transport: 'tcp', idPrefix: 'p' });
      assert.equal(stay.summary.established, 150, JSON.stringify(stay.summary));
      const victims = await c.loadgen(edge, { count: 60, transport: 'udp', idPrefix: 'v' });
      assert.equal(victims.summary.established, 60, JSON.stringify(victims.summary));
      const snapshot = (await c.allSas()).items;
      const victimSpis = snapshot.filter((s) => s.peerId?.startsWith('v-')).map((s) => s.spi);
      const staying = new Set(snapshot.filter((s) => !victimSpis.includes(s.spi)).map((s) => s.spi));
      assert.equal(victimSpis.length, 60);
      assert.ok(staying.size >= 150);

      // New SAs arrive during the listing (rate-limited, so they spread over it) while victims are deleted.
      const creator = c.spawnLoadgen(edge, {
        count: 80,
        transport: 'udp',
        idPrefix: 'n',
        rate: 25,
        hold: true,
      });
      await until(
        async () => ((await c.ctl('/v1/sas?limit=1&peer=load')).body as SaList).counts.established ?? 0,
        (n) => n > snapshot.length,
        15_000,
      );
      const seen = new Map<string, number>();
      const totals: number[] = [];
      let deleted = 0;
      let cursor: string | null = null;
      let pages = 0;
      do {
        const r = await c.ctl(`/v1/sas?limit=7${cursor ? `&cursor=${cursor}` : ''}`, { role: 'viewer' });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        const page = r.body as SaList;
        assert.ok(page.items.length <= 7);
        assert.deepEqual(page.unreachable, []);
        for (const s of page.items) seen.set(s.spi, (seen.get(s.spi) ?? 0) + 1);
        totals.push(Object.values(page.counts).reduce((a, b) => a + b, 0));
        // Two victims per page: one before the cursor (already listed or not) and one after it.
        for (const spi of [victimSpis.shift(), victimSpis.pop()])
          if (spi !== undefined) {
            const d = await c.ctl(`/v1/sas/${spi}`, { method: 'DELETE', role: 'operator' });
            if (d.status === 202) deleted++;
          }
        cursor = page.next;
        pages++;
        await sleep(50);
      } while (cursor !== null && pages < 500);
      assert.equal(cursor, null, 'the listing ends');

      const twice = [...seen].filter(([, n]) => n > 1).map(([spi]) => spi);
      assert.deepEqual(twice, [], 'no SA is listed twice');
      const missing = [...staying].filter((spi) => !seen.has(spi));
      assert.deepEqual(missing, [], 'every SA that existed throughout is listed');
      assert.ok(deleted >= 40, `SAs were deleted during the listing (${deleted})`);
      assert.ok(
        Math.max(...totals) > Math.min(...totals) || new Set(totals).size > 1,
        `SAs came and went during the listing (totals per page: ${totals.join(',')})`,
      );
      const created = [...seen.keys()].filter(
        (spi) => !staying.has(spi) && !snapshot.some((s) => s.spi === spi),
      );
      assert.ok(created.length > 0, 'SAs created during the listing were listed too');
      await creator.stop('SIGKILL');
    });
  },
);
