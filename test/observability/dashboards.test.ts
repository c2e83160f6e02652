/**
 * Issue #13: the Grafana dashboards in helm/ikegate/dashboards show real data.
 *
 * Structure (always): the files are what scripts/dashboards.ts generates, unique uids and panel
 * ids, every panel on the datasource variable, every query filtered by the cluster / namespace /
 * instance variables.
 *
 * Data (real processes): a cluster (Redis, 2 workers with TUNs, 1 edge, control) scraped every
 * second by a real Prometheus on loopback, with the labels a Kubernetes scrape would add
 * (cluster, namespace). Peers connect (a `connect` client with a TUN pinging a host behind the
 * cluster over TCP, UDP load-generator SAs), one is rekeyed through the API, one peer fails to
 * authenticate, a stranger sends garbage to the TCP port, and the worker holding the pinging
 * client's SA is killed with -9. Then every query of every panel, with the dashboard's variables
 * substituted, must return a non-empty result with at least one number through Prometheus's HTTP
 * API. Every target's /metrics must pass `promtool check metrics`.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { requirement } from '@ikegate/testkit';
import { DASHBOARDS, fileOf, textOf } from '../../scripts/dashboards.js';
import { canUseNetns } from '../interop/lib/netns.js';
import { pingThrough } from '../interop/lib/swanctl.js';
import { PSK, type Proc, TestCluster, until } from '../cluster/lib/cluster.js';
import { ClientHostNet } from '../cluster/lib/client-host.js';
import { prometheusMissing, PrometheusServer, promtool } from './lib/prometheus.js';
import { writePreviews } from './lib/preview.js';

interface Panel {
  id: number;
  title: string;
  type: string;
  datasource: { type: string; uid: string };
  gridPos: { h: number; w: number; x: number; y: number };
  targets: { expr: string; refId: string }[];
}
interface Dashboard {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
}

const dashboards = DASHBOARDS.map((d) => JSON.parse(readFileSync(fileOf(d), 'utf8')) as Dashboard);

describe('Grafana dashboards: structure (issue #13)', () => {
  test('the files are what scripts/dashboards.ts generates (run `npx tsx scripts/dashboards.ts` after a change)', () => {
    for (const d of DASHBOARDS) assert.equal(readFileSync(fileOf(d), 'utf8'), textOf(d), fileOf(d));
  });

  test('unique uids and panel ids; every panel on ${datasource}, inside the 24-column grid, every query filtered by cluster, namespace and instance', () => {
    assert.equal(new Set(dashboards.map((d) => d.uid)).size, dashboards.length);
    for (const d of dashboards) {
      // The per-peer dashboard adds `peer`, and every one of its queries is for that one peer.
      const extra = d.uid === 'ikegate-peer' ? ['peer'] : [];
      assert.deepEqual(
        d.templating.list.map((v) => v.name),
        ['datasource', 'cluster', 'namespace', 'instance', ...extra],
      );
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${d.uid}: duplicate panel ids`);
      for (const p of d.panels) {
        assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, p.title);
        assert.ok(p.gridPos.x + p.gridPos.w <= 24 && p.gridPos.w > 0 && p.gridPos.h > 0, p.title);
        assert.ok(p.targets.length > 0, `${p.title}: no query`);
        for (const t of p.targets)
          for (const v of [
            'cluster="$cluster"',
            'namespace="$namespace"',
            'instance=~"$instance"',
            ...extra.map((e) => `${e}="$${e}"`),
          ])
            assert.ok(t.expr.includes(v), `${d.uid} / ${p.title}: ${t.expr} lacks ${v}`);
      }
    }
  });
});

const netns = canUseNetns();
const skip = requirement(
  !netns.ok
    ? netns.why
    : spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0
      ? 'redis-server not installed'
      : prometheusMissing(),
);

const tag = `ob${process.pid % 10000}`;
const LABELS = { cluster: 'test', namespace: 'ikegate' };

/** The dashboard's variables as Grafana substitutes them ("All" instances is `.*`). */
function substitute(expr: string): string {
  return expr
    .replaceAll('$cluster', LABELS.cluster)
    .replaceAll('$namespace', LABELS.namespace)
    .replaceAll('$instance', '.*')
    .replaceAll('$peer', 'load')
    .replaceAll('$__rate_interval', '2m');
}

describe(
  'Grafana dashboards: every panel query returns data from a real Prometheus scraping a running cluster (issue #13)',
  { skip },
  () => {
    const c = new TestCluster(4000, { pool: '10.203.0.0/16', localTs: '10.66.2.0/24' });
    const prom = new PrometheusServer();
    const net = new ClientHostNet(tag);
    let client: Proc;
    let vip = '';
    let pinger: ReturnType<typeof spawn> | undefined;

    before(async () => {
      net.setUp();
      await c.start();
      await c.addWorker('w1', `ik${tag}1`.slice(0, 15));
      await c.addWorker('w2', `ik${tag}2`.slice(0, 15));
      await c.addEdge('e1');
      await c.startControl();
      await until(
        () => c.shards().then((r) => r.owned),
        (n) => n === 1024,
      );
      await prom.start(
        [...c.workers.map((w) => w.admin), ...c.edges.map((e) => e.admin), c.controlPort].map((port) => ({
          address: `127.0.0.1:${port}`,
          labels: LABELS,
        })),
      );
    });

    after(async () => {
      pinger?.kill('SIGKILL');
      await prom.stop();
      await c.stop();
      net.tearDown();
    });

    test('every target is scraped and its /metrics passes `promtool check metrics`', async () => {
      const health = await until(
        () => prom.targets(),
        (m) => m.size === 4 && [...m.values()].every((h) => h === 'up'),
        20_000,
      );
      assert.ok(
        [...health.values()].every((h) => h === 'up'),
        JSON.stringify([...health]),
      );
      for (const address of health.keys()) {
        const text = await (await fetch(`http://${address}/metrics`)).text();
        const r = promtool(['check', 'metrics'], text);
        assert.equal(r.status, 0, `${address}: ${r.out}`);
        assert.equal(r.out.trim(), '', `${address}: ${r.out}`);
      }
    });

    test('the scenario: TCP client with traffic, UDP SAs, a rekey, a failed authentication, garbage on the TCP port, kill -9 of a worker', async () => {
      const e1 = c.edges[0]!;
      client = c.spawn(
        'connect-ob',
        [
          'connect',
          '--server',
          '10.66.1.1',
          '--port-tcp',
          String(e1.tcp),
          '--transport',
          'tcp',
          '--id',
          'ob-1@example.org',
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
          '--log-level',
          process.env.IKEGATE_TEST_LOG_LEVEL ?? 'info',
        ],
        net.client,
      );
      vip = String((await client.waitFor('tun-configured', 30_000)).virtualIp);
      assert.equal(pingThrough(net.client, vip, '10.66.2.2', 2), 2);
      // Steady traffic through the tunnel for the rest of the test (bounded: 600 pings).
      pinger = spawn(
        'ip',
        ['netns', 'exec', net.client, 'ping', '-q', '-i', '0.2', '-c', '600', '-I', vip, '10.66.2.2'],
        { stdio: 'ignore' },
      );
      const udp = await c.loadgen(e1, { count: 20, transport: 'udp', idPrefix: 'ob-udp' });
      assert.equal(udp.summary.established, 20);
      // Peers with the wrong PSK: IKE_AUTH refused (authentication_failed). Sixteen of them, so
      // that both workers refuse some (with 3, all landed on the worker killed below in 1 run of 8,
      // and the panels fed by that worker alone, such as "Last errors", had no series left).
      const bad = c.spawn('loadgen-bad', [
        'loadgen',
        '--server',
        e1.address,
        '--port-ike',
        String(e1.ike),
        '--port-natt',
        String(e1.natT),
        '--transport',
        'udp',
        '--count',
        '16',
        '--id',
        'ob-bad-{n}@example.org',
        '--remote-id',
        'gw.example.org',
        '--psk',
        'not-the-right-psk-at-all',
        '--no-vip',
        '--json',
        '--quiet',
        '--timeout',
        '20',
      ]);
      await bad.waitLine((l) => 'attempted' in l, 'bad loadgen summary', 60_000);
      // Scraped before a worker is killed below: the refusals may all be on the worker killed.
      await until(
        async () => {
          const r = await prom.query(
            'sum(ikegate_peer_errors_total{peer="load",reason="authentication_failed"})',
          );
          return Number(r[0]?.value[1] ?? 0);
        },
        (n) => n >= 1,
        20_000,
      );
      // A rekey of the client's CHILD SA through the control API.
      const sas = await c.allSas('identity=ob-1@example.org');
      assert.equal(sas.items.length, 1);
      const spi = sas.items[0]!.spi;
      assert.equal(
        (await c.ctl(`/v1/sas/${spi}/rekey`, { method: 'POST', body: { what: 'children' } })).status,
        202,
      );
      // The rekey is done, and Prometheus has scraped it, before its worker is killed below.
      await until(
        async () => {
          const r = await prom.query('sum(ikegate_peer_rekeys_total{peer="load",kind="child"})');
          return Number(r[0]?.value[1] ?? 0);
        },
        (n) => n >= 1,
        20_000,
      );
      // Garbage on the RFC 9329 port: not the IKETCP prefix.
      await new Promise<void>((resolve) => {
        const s = tcpConnect(e1.tcp, '127.0.0.1', () => s.end('GET / HTTP/1.0\r\n\r\n'));
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        s.setTimeout(5000, () => s.destroy());
      });
      // A TLS client that completes the handshake and leaves, and one that speaks no TLS at all.
      await new Promise<void>((resolve) => {
        const s = tlsConnect({ port: e1.tls, host: '127.0.0.1', rejectUnauthorized: false }, () => s.end());
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        s.setTimeout(5000, () => s.destroy());
      });
      await new Promise<void>((resolve) => {
        const s = tcpConnect(e1.tls, '127.0.0.1', () => s.end('GET / HTTP/1.0\r\n\r\n'));
        s.on('close', () => resolve());
        s.on('error', () => resolve());
        s.setTimeout(5000, () => s.destroy());
      });
      // kill -9 of the worker holding the pinging client's SA.
      const holder = sas.items[0]!.worker;
      const victim = c.workers.find((w) => w.id === holder)!;
      await victim.proc.stop('SIGKILL');
      const other = c.workers.find((w) => w !== victim)!;
      await other.proc.waitFor('ike-sa-adopted', 30_000, (l) => l.peerId === 'ob-1@example.org');
      const replies = await until(
        async () => pingThrough(net.client, vip, '10.66.2.2', 1),
        (n) => n === 1,
        20_000,
      );
      assert.equal(replies, 1, 'traffic flows through the new owner');
      // A few scrapes after everything happened.
      await sleep(5000);
    });

    test('every panel query of every dashboard returns a non-empty result with a number in it', async () => {
      // Panels whose series start at 0 show the scenario's events, not just their zeros.
      for (const expr of [
        'sum(ikegate_tls_handshakes_total{result="ok"})',
        'sum(ikegate_tls_handshakes_total{result="failed",reason="protocol"})',
        // The worker that refused them, or held the rekeyed SA, may be the one killed: its last
        // samples count (CI once had every refusal on the killed worker: an empty sum).
        'sum(max_over_time(ikegate_peer_errors_total{peer="load",reason="authentication_failed"}[1h]))',
        'sum(max_over_time(ikegate_peer_rekeys_total{peer="load",kind="child"}[1h]))',
        'sum(ikegate_peer_esp_packets_total{peer="load",direction="in"})',
      ]) {
        const r = await prom.query(expr);
        assert.ok(Number(r[0]?.value[1]) >= 1, `${expr}: ${JSON.stringify(r)}`);
      }
      // The control process reads the shard leases from Redis: all 1024 known, none left unowned
      // once the new owner took the killed worker's shards over.
      const shards = await prom.query('max(ikegate_cluster_shards)');
      assert.equal(Number(shards[0]?.value[1]), 1024);
      const unowned = await prom.query('max(ikegate_cluster_shards_without_owner)');
      assert.equal(Number(unowned[0]?.value[1]), 0);
      const empty: string[] = [];
      for (const d of dashboards)
        for (const p of d.panels)
          for (const t of p.targets) {
            const result = await prom.query(substitute(t.expr));
            const numbers = result.map((r) => Number(r.value[1])).filter((v) => Number.isFinite(v));
            if (numbers.length === 0)
              empty.push(`${d.uid} / ${p.title} [${t.refId}]: ${JSON.stringify(result).slice(0, 200)}`);
          }
      assert.deepEqual(empty, [], `panels without data:\n${empty.join('\n')}`);
    });

    // The pictures in docs/observability.md: IKEGATE_DASHBOARD_PICTURES=<dir> writes a preview of
    // each dashboard drawn from the same queries (and, with chromium installed, a PNG) into <dir>.
    const pictures = process.env.IKEGATE_DASHBOARD_PICTURES;
    if (pictures)
      test('pictures: a preview of every dashboard from the same queries, over the whole scenario', async () => {
        const r = await writePreviews(dashboards, pictures, {
          prometheus: `http://127.0.0.1:${prom.port}`,
          substitute,
        });
        assert.deepEqual(r.empty, [], 'panels without data in the preview');
      });
  },
);
