/**
 * Issue #4: ikegate's own client (`ikegate connect`, its TUN and virtual IP) to `ikegate up` over
 * RFC 9329 TCP 4500 and over TLS 443 (RFC 9329 §8), in the three-namespace topology: ping and a
 * 10 MB transfer with SHA-256 to the host behind the gateway. The TLS session is captured with
 * the client's key log, and tshark (TLS decryption + our RFC 9329 dissector) must decode every
 * frame inside it as IKE or ESP with nothing malformed, in the exchange order the gateway counted.
 * Then the stream is cut (`ss -K`) and the client reconnects and continues on the same IKE SA
 * (RFC 9329 §6: no new IKE_SA_INIT).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { requirement } from '@ikegate/testkit';
import { haveCaptureTools, tsharkFields } from './lib/capture.js';
import { BulkCapture } from './lib/bulk-capture.js';
import { canUseNetns } from './lib/netns.js';
import { gatewayConfig, IkegateProcess } from './lib/ikegate-process.js';
import { pingThrough } from './lib/swanctl.js';
import { Chain3 } from './lib/topology.js';
import { Sink, transfer } from './lib/transfer.js';

const netns = canUseNetns();
const skip = requirement(!netns.ok && netns.why);
const PSK = 'connect-client-psk-5b2e9a71c4';
const MB = 1024 * 1024;

/** Prints the body of a GET to argv[1] (run by node inside a namespace); exit 1 on an error or a non-200. */
const METRICS_SCRAPE = `fetch(process.argv[1]).then(async (r) => {
  if (r.status !== 200) throw new Error('status ' + r.status);
  process.stdout.write(await r.text());
}).catch((e) => { console.error(e.message); process.exit(1); });`;

describe(
  '`ikegate connect` -> `ikegate up` over TCP 4500 and TLS 443 (RFC 9329), TUN to TUN (issue #4)',
  { skip },
  () => {
    const net = new Chain3('cn', '10.86');
    const gw = new IkegateProcess(net.gateway);
    const sink = new Sink();
    const clients: IkegateProcess[] = [];

    const client = (transport: string, extra: string[] = []) => {
      const c = new IkegateProcess(net.client);
      clients.push(c);
      c.start([
        'connect',
        '--server',
        net.gatewayOuter,
        '--transport',
        transport,
        '--id',
        'dave@example.org',
        '--remote-id',
        'gw.example.org',
        '--psk',
        PSK,
        '--ts',
        '10.86.2.0/24',
        '--tun',
        'ikgc0',
        '--dpd',
        '0',
        '--log-level',
        'debug',
        ...extra,
      ]);
      return c;
    };

    before(async () => {
      net.create();
      await sink.start(net.host, net.hostAddr, 5002);
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.86.100.0/24',
          psk: PSK,
          hostNet: '10.86.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg0',
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
      sink.stop();
      await gw.stop();
      net.destroy();
    });

    test('over TCP 4500: IKE SA, virtual IP on the client TUN, ping and 10 MB with SHA-256 (RFC 9329 §3); the client counts them at --metrics', async () => {
      const c = client('tcp', ['--metrics', '127.0.0.1:9102']);
      const est = await c.waitFor('tun-configured', { timeoutMs: 20_000 });
      const vip = String(est.virtualIp);
      assert.match(vip, /^10\.86\.100\.\d+$/);
      const gwEst = await gw.waitFor('ike-sa-established');
      assert.equal(gwEst.transport, 'tcp');
      assert.equal(gwEst.peerId, 'dave@example.org');
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3);
      const r = await transfer(net.client, vip, net.hostAddr, 5002, 10 * MB);
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.reply.sha256, r.sha256);
      // The client's own counters, scraped inside its namespace: the 10 MB went out as ESP, read
      // from its TUN; the TUN's and the UDP socket's drop series exist (0 or more).
      const scrape = spawnSync(
        'ip',
        [
          'netns',
          'exec',
          net.client,
          process.execPath,
          '-e',
          METRICS_SCRAPE,
          'http://127.0.0.1:9102/metrics',
        ],
        { encoding: 'utf8', timeout: 15_000 },
      );
      assert.equal(scrape.status, 0, scrape.stderr);
      const count = (re: RegExp) => Number(re.exec(scrape.stdout)?.[1] ?? NaN);
      assert.ok(
        count(/^ikegate_esp_packets_total\{direction="out"\} (\d+)$/m) >= (10 * MB) / 1500,
        scrape.stdout,
      );
      assert.ok(count(/^ikegate_esp_inner_bytes_total\{direction="out"\} (\d+)$/m) >= 10 * MB, scrape.stdout);
      assert.ok(count(/^ikegate_drops_total\{layer="tun",reason="read_ring_full"\} (\d+)$/m) >= 0);
      assert.ok(count(/^ikegate_tun_coalesced_segments_total\{result="merged"\} (\d+)$/m) >= 0);
    });

    test('a cut TCP stream is reopened by the client, which continues on the same IKE SA (RFC 9329 §6)', async (t) => {
      const c = clients[0]!;
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
      await c.waitFor('stream-restored', { timeoutMs: 15_000 });
      const vip = String((await c.waitFor('tun-configured')).virtualIp);
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3);
      assert.equal(gw.count('ike-sa-established'), 1, 'no new IKE SA');
      assert.equal(c.count('initiating'), 1, 'no new IKE_SA_INIT');
      await c.stop();
      await gw.waitFor('ike-sa-deleted');
    });

    test('over TLS 443 with a key log: tshark decrypts it and every frame inside is IKE or ESP, none malformed (RFC 9329 §8)', async (t) => {
      const keylog = join(gw.dir, 'tls-keys.log');
      const pcap = join(gw.dir, 'tls.pcap');
      const capture = haveCaptureTools()
        ? new BulkCapture(net.gateway, 'any', pcap, 'tcp port 443')
        : undefined;
      await capture?.start();
      const c = client('tls', ['--insecure', '--keylog', keylog]);
      const vip = String((await c.waitFor('tun-configured', { timeoutMs: 20_000 })).virtualIp);
      const gwEst = await gw.waitFor('ike-sa-established', { n: 2 });
      assert.equal(gwEst.transport, 'tls');
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3);
      // Small: tcpdump must not drop a segment, or TLS decryption of the rest of the stream fails.
      const r = await transfer(net.client, vip, net.hostAddr, 5002, 256 * 1024);
      assert.equal(r.reply.sha256, r.sha256);
      await c.stop();
      await gw.waitFor('ike-sa-deleted', { n: 2 });
      // Without tcpdump/tshark only the decode check is left out; the TLS tunnel above has run.
      if (!capture) return t.skip(requirement('tcpdump/tshark not installed', t));
      const stats = await capture.stop();
      assert.equal(
        stats?.droppedByKernel ?? 0,
        0,
        'tcpdump lost packets: the decode check would be meaningless',
      );
      const rows = tsharkFields(
        pcap,
        ['frame.number', 'isakmp.exchangetype', 'esp.spi', '_ws.malformed', 'iketcp.prefix'],
        ['-o', `tls.keylog_file:${keylog}`, '-Y', 'tls.record.content_type == 23'],
      );
      assert.ok(rows.length > 10, `TLS application records seen: ${rows.length}`);
      const malformed = rows.filter((row) => row[3]);
      assert.equal(malformed.length, 0, JSON.stringify(malformed.slice(0, 5)));
      const undecoded = rows.filter((row) => !row[1] && !row[2] && !row[4]);
      assert.equal(
        undecoded.length,
        0,
        `records not decoded as IKE or ESP: ${JSON.stringify(undecoded.slice(0, 5))}`,
      );
      const exchanges = rows.flatMap((row) => (row[1] ? row[1].split(',') : []));
      assert.deepEqual(exchanges.slice(0, 4), ['34', '34', '35', '35'], 'IKE_SA_INIT then IKE_AUTH');
      assert.ok(exchanges.includes('37'), 'the INFORMATIONAL DELETE');
    });
  },
);
