/**
 * Issue #5, traffic through the cluster: `ikegate connect` (its TUN, a virtual IP from a pool the
 * workers split by shard) in a client namespace reaches a host namespace through an edge and the
 * worker owning its SA, whose TUN and host route for the virtual IP carry the packets.
 * Then that worker is killed (-9): the other takes the shard over, adopts the SA from Redis (no
 * new IKE_SA_INIT), points the virtual IP's route at its own TUN, and pings go through again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { requirement } from '@ikegate/testkit';
import { canUseNetns } from '../interop/lib/netns.js';
import { pingThrough } from '../interop/lib/swanctl.js';
import { Capture, haveCaptureTools, tsharkFields } from '../interop/lib/capture.js';
import { PSK, type Proc, TestCluster, until } from './lib/cluster.js';
import { ClientHostNet } from './lib/client-host.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok
    ? netns.why
    : spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0
      ? 'redis-server not installed'
      : !haveCaptureTools()
        ? 'tcpdump/tshark not installed'
        : false,
);

const tag = `dp${process.pid % 10000}`;

describe(
  'cluster data plane: connect -> edge -> worker TUN -> host, and a worker killed under it (issue #5)',
  { skip },
  () => {
    const c = new TestCluster(4000, { pool: '10.201.0.0/16', localTs: '10.66.2.0/24' });
    const net = new ClientHostNet(tag);
    let client: Proc;
    let vip = '';
    let capture: Capture | undefined;
    const pcap = `${c.dir}/client.pcap`;

    before(async () => {
      net.setUp();
      await c.start();
      await c.addWorker('w1', `ik${tag}1`.slice(0, 15));
      await c.addWorker('w2', `ik${tag}2`.slice(0, 15));
      const e1 = await c.addEdge('e1');
      // The client's side of the wire, to see the RFC 6311 sync after the takeover (tshark).
      capture = new Capture(net.client, `v${tag}cc`, pcap, `tcp port ${e1.tcp}`);
      await capture.start();
      await c.startControl();
      await until(
        () => c.shards().then((r) => r.owned),
        (n) => n === 1024,
      );
    });

    after(async () => {
      await capture?.stop();
      if (process.env.IKEGATE_CLUSTER_DEBUG)
        for (const w of c.workers)
          console.error(
            w.id,
            JSON.stringify(
              w.proc.lines
                .filter(
                  (l) => !['child-sa-installed', 'shard-released', 'shard-acquired'].includes(String(l.msg)),
                )
                .slice(-25),
            ),
            w.proc.stderr.join('').slice(-1000),
          );
      await c.stop();
      net.tearDown();
    });

    test('a virtual IP from the sharded pool, ping through edge -> worker -> TUN -> host and back (RFC 7296 §3.15, RFC 9329)', async () => {
      const e1 = c.edges[0]!;
      client = c.spawn(
        `connect-dp`,
        [
          'connect',
          '--server',
          '10.66.1.1',
          '--port-tcp',
          String(e1.tcp),
          '--transport',
          'tcp',
          '--id',
          'dp-1@example.org',
          '--remote-id',
          'gw.example.org',
          '--psk',
          PSK,
          '--ts',
          '10.66.2.0/24',
          '--tun',
          `ik${tag}c`.slice(0, 15),
          '--dpd',
          '0',
        ],
        net.client,
      );
      vip = String((await client.waitFor('tun-configured', 30_000)).virtualIp);
      assert.match(vip, /^10\.201\.\d+\.\d+$/);
      assert.equal(pingThrough(net.client, vip, '10.66.2.2', 3), 3);
    });

    test('kill -9 of the worker holding the SA: the other adopts it and its virtual IP route; pings flow again on the same IKE SA', async () => {
      const by = await c.sasByWorker();
      const [holder] = [...by.entries()].find(([, s]) => s.length > 0)!;
      const victim = c.workers.find((w) => w.id === holder)!;
      const other = c.workers.find((w) => w.id !== holder)!;
      await victim.proc.stop('SIGKILL'); // the re-executed TUN holder too, not only its launcher
      const adopted = await until(
        () => c.sasByWorker().then((m) => m.get(other.id)?.length ?? 0),
        (n) => n === 1,
        30_000,
      );
      assert.equal(adopted, 1, 'the other worker adopted the SA');
      const replies = await until(
        async () => pingThrough(net.client, vip, '10.66.2.2', 2),
        (n) => n === 2,
        20_000,
      );
      assert.equal(replies, 2, 'traffic flows through the new owner');
      assert.equal(client.count('initiating'), 1, 'no new IKE_SA_INIT');
      // RFC 6311 §4.3 both ways: the new owner restarted its inbound window past the stored
      // checkpoint and told the peer; `connect` moved its outbound counter above it.
      const adoptedLine = await other.proc.waitFor('ike-sa-adopted', 5_000);
      const counter = BigInt(String(adoptedLine.replayCounter));
      const synced = await client.waitFor('replay-counter-synced', 5_000);
      assert.equal(BigInt(String(synced.counter)), counter, 'the peer got the counter the new owner chose');
      assert.equal(synced.children, 1);
      // On the wire (tshark with the RFC 9329 dissector): after the setup, the new owner's sync
      // request (INFORMATIONAL, Message ID 0, from the gateway) and the peer's answer to it.
      await capture!.stop();
      const e1 = c.edges[0]!;
      const rows = tsharkFields(
        pcap,
        ['ip.src', 'isakmp.exchangetype', 'isakmp.messageid', 'isakmp.flag_r'],
        ['-d', `tcp.port==${e1.tcp},iketcp`, '-Y', 'isakmp'],
      ).map(
        ([src, type, mid, response]) =>
          `${src === '10.66.1.1' ? 'gw' : 'peer'} ${type} ${Number(mid)} ${response === 'True' || response === '1' ? 'response' : 'request'}`,
      );
      assert.deepEqual(
        rows.slice(0, 4),
        ['peer 34 0 request', 'gw 34 0 response', 'peer 35 1 request', 'gw 35 1 response'],
        rows.join(', '),
      );
      const sync = rows.indexOf('gw 37 0 request');
      assert.ok(sync >= 4, `the sync request after the setup: ${rows.join(', ')}`);
      assert.ok(rows.slice(sync).includes('peer 37 0 response'), `answered: ${rows.join(', ')}`);
    });
  },
);
