/**
 * Issue #9, "must show": a TCP peer whose stream closes is handled per the failover policy
 * (wait-for-reconnect, failover.waitSeconds 3). `ikegate connect` reaches `ikegate up` over RFC
 * 9329 TCP 4500 in the three-namespace topology, gets a virtual IP and pings the host.
 *
 * - SIGKILL (the whole connect process tree: no DELETE, the kernel closes the stream): the gateway
 *   keeps the SA established and its virtual IP allocated while it waits for the peer to come back
 *   (RFC 9329 §6: only the initiator reconnects), then deletes it as connection-lost about
 *   waitSeconds after the stream closed, and frees the virtual IP.
 * - A stream cut with `ss -K` that connect reopens within the wait: the same IKE SA continues on
 *   the new stream (no new IKE_SA_INIT), still there after waitSeconds, nothing counted as lost.
 *
 * Windows are generous (no tight wall-clock); times come from the gateway's own log lines.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { gatewayConfig, IkegateProcess, logTime, metricValue } from './lib/ikegate-process.js';
import { canUseNetns } from './lib/netns.js';
import { pingThrough } from './lib/swanctl.js';
import { Chain3 } from './lib/topology.js';

const netns = canUseNetns();
const skip = requirement(!netns.ok && netns.why);
const PSK = 'connect-failover-psk-6e0d2b9a17';
const WAIT_SECONDS = 3;

describe(
  '`ikegate connect` -> `ikegate up` over RFC 9329 TCP: a closed stream waits failover.waitSeconds for the peer (issue #9)',
  { skip },
  () => {
    const net = new Chain3('fo', '10.82');
    const gw = new IkegateProcess(net.gateway);
    const clients: IkegateProcess[] = [];

    const client = () => {
      const c = new IkegateProcess(net.client);
      clients.push(c);
      c.start([
        'connect',
        '--server',
        net.gatewayOuter,
        '--transport',
        'tcp',
        '--id',
        'dave@example.org',
        '--remote-id',
        'gw.example.org',
        '--psk',
        PSK,
        '--ts',
        '10.82.2.0/24',
        '--tun',
        'ikgc0',
        '--dpd',
        '0',
        '--log-level',
        'debug',
      ]);
      return c;
    };
    const sas = () => gw.sas();
    const inUse = () => gw.poolInUse();
    const lost = () =>
      metricValue(gw.metrics(), 'ikegate_ike_sa_events_total', {
        event: 'deleted',
        reason: 'connection-lost',
      });

    before(async () => {
      net.create();
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.82.100.0/24',
          psk: PSK,
          hostNet: '10.82.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg0',
          failoverWaitSeconds: WAIT_SECONDS,
          accessFile: gw.access.file,
        }),
      );
      await gw.waitFor('ikegate-up', { timeoutMs: 20_000 });
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG)
        for (const p of [gw, ...clients])
          console.error(JSON.stringify(p.lines.slice(-40)), p.stderr.join(''));
      for (const c of clients) await c.stop();
      await gw.stop();
      net.destroy();
    });

    test('a killed TCP peer: the SA stays established during failover.waitSeconds, then is deleted as connection-lost and its virtual IP freed (RFC 9329 §6)', async () => {
      const c = client();
      const vip = String((await c.waitFor('tun-configured', { timeoutMs: 20_000 })).virtualIp);
      const est = await gw.waitFor('ike-sa-established');
      assert.equal(est.transport, 'tcp');
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3);
      const spi = sas()[0]!.spi;

      const killed = c.killHard();
      assert.ok(killed.length >= 1, 'connect was running');
      const closed = await gw.waitFor('peer-connection-closed', { timeoutMs: 10_000 });
      const closedAt = logTime(closed);

      // Inside the wait: still established, the virtual IP still the peer's, nothing lost yet.
      await sleep(1000);
      const during = sas();
      assert.equal(during.length, 1, JSON.stringify(during));
      assert.equal(during[0]!.spi, spi);
      assert.equal(during[0]!.status, 'established');
      assert.equal(during[0]!.virtualIp, vip);
      assert.equal(inUse(), 1);
      assert.equal(gw.count('ike-sa-deleted'), 0);
      assert.equal(lost(), 0);

      const del = await gw.waitFor('ike-sa-deleted', { timeoutMs: WAIT_SECONDS * 1000 + 10_000 });
      assert.equal(del.reason, 'connection-lost', JSON.stringify(del));
      assert.equal(del.spi, spi);
      const waited = logTime(del) - closedAt;
      assert.ok(
        waited >= WAIT_SECONDS * 1000 - 100 && waited <= WAIT_SECONDS * 1000 + 3_000,
        `deleted ${waited} ms after the stream closed (failover.waitSeconds ${WAIT_SECONDS})`,
      );
      assert.equal(sas().length, 0);
      assert.equal(inUse(), 0, 'the virtual IP is back in the pool');
      assert.equal(lost(), 1);
      const m = gw.metrics();
      assert.equal(metricValue(m, 'ikegate_ike_sas', { status: 'established' }), 0);
      assert.equal(metricValue(m, 'ikegate_child_sas'), 0);
    });

    test('a cut stream reopened within failover.waitSeconds: the same IKE SA continues, nothing is lost (RFC 9329 §6)', async (t) => {
      const c = client();
      const vip = String((await c.waitFor('tun-configured', { timeoutMs: 20_000 })).virtualIp);
      await gw.waitFor('ike-sa-established', { n: 2 });
      const [sa] = sas();
      assert.ok(sa, 'one SA');
      const closedBefore = gw.count('peer-connection-closed');
      const ss = spawnSync('ip', [
        'netns',
        'exec',
        net.client,
        'ss',
        '-K',
        'dst',
        net.gatewayOuter,
        'dport',
        '=',
        '4500',
      ]);
      if (ss.status !== 0) return t.skip(requirement(`ss -K unavailable: ${ss.stderr.toString()}`, t));
      const cutAt = Date.now();
      await c.waitFor('stream-restored', { timeoutMs: 15_000 });
      await gw.waitFor('peer-connection-closed', { n: closedBefore + 1, timeoutMs: 10_000 });

      // Past the wait: had the gateway not taken the new stream, the SA would be gone by now.
      await sleep(Math.max(0, cutAt + WAIT_SECONDS * 1000 + 1_500 - Date.now()));
      const now = sas();
      assert.equal(now.length, 1, JSON.stringify(now));
      assert.equal(now[0]!.spi, sa.spi, 'the same IKE SA');
      assert.equal(now[0]!.status, 'established');
      assert.equal(now[0]!.transport, 'tcp');
      assert.notEqual(now[0]!.remote, sa.remote, 'the SA moved to the new stream (new source port)');
      assert.equal(gw.count('ike-sa-established'), 2, 'no new IKE SA on the gateway');
      assert.equal(c.count('initiating'), 1, 'no new IKE_SA_INIT from connect');
      assert.equal(gw.count('ike-sa-deleted'), 1, 'only the first test deleted an SA');
      assert.equal(lost(), 1, 'no second connection-lost');
      assert.equal(inUse(), 1);
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3);

      await c.stop();
      const del = await gw.waitFor('ike-sa-deleted', { n: 2, timeoutMs: 10_000 });
      assert.equal(del.reason, 'peer-deleted', JSON.stringify(del));
      assert.equal(inUse(), 0);
    });
  },
);
