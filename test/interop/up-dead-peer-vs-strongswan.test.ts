/**
 * Issue #9, "must show": a peer that vanishes over UDP is declared dead on schedule and its
 * virtual IP freed. A strongSwan road warrior brings up an IKE SA with a virtual IP through
 * `ikegate up` (dpd.intervalSeconds 2, ike.retransmit initialMs 500, maxRetransmits 3), pings
 * through it, and then vanishes: nftables on the gateway's outer link (netdev ingress and egress,
 * so ikegate's sends succeed as they would towards a peer gone behind the network) loses
 * everything from and to it.
 *
 * RFC 7296 §2.4: after the DPD interval without authenticated inbound traffic the gateway sends
 * an INFORMATIONAL request, retransmits it (UDP, the same octets) after 0.5, 1 and 2 s, waits one
 * more interval (4 s) and deletes the SA as dead-peer: 2 + 7.5 s after the last traffic. The IKE
 * messages towards the peer are copied to NFLOG group 6 before the link loses them, so tshark sees
 * the schedule; the windows asserted are generous (no tight wall-clock).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { Capture, haveCaptureTools, tsharkFields } from './lib/capture.js';
import { gatewayConfig, IkegateProcess, logTime, metricValue } from './lib/ikegate-process.js';
import { canUseNetns } from './lib/netns.js';
import { haveNft, ikeOn4500, NftTable } from './lib/nft.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough, roadWarriorConf } from './lib/swanctl.js';
import { Chain3 } from './lib/topology.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok
    ? netns.why
    : !haveStrongswan()
      ? 'strongSwan (charon, swanctl) not installed'
      : !haveNft()
        ? 'nft (nftables) not installed'
        : !haveCaptureTools()
          ? 'tcpdump/tshark not installed'
          : false,
);

const PSK = 'road-warrior-psk-a07e53c91f';
const NFLOG_GROUP = 6;
const INFORMATIONAL = 37;
const DPD_SECONDS = 2;
const RETRANSMIT = { initialMs: 500, maxRetransmits: 3 };
/** The intervals after the liveness request: one per retransmission, then the last wait. */
const INTERVALS_MS = Array.from(
  { length: RETRANSMIT.maxRetransmits + 1 },
  (_, i) => RETRANSMIT.initialMs * 2 ** i,
);
const SCHEDULE_MS = INTERVALS_MS.reduce((a, b) => a + b, 0); // 7.5 s

describe(
  'a strongSwan road warrior that vanishes over UDP -> `ikegate up` declares it dead on schedule, frees its virtual IP (issue #9)',
  { skip },
  () => {
    const net = new Chain3('dpd', '10.83');
    const gw = new IkegateProcess(net.gateway);
    const watch = new NftTable(net.gateway, 'interop_dpd');
    const cut = new NftTable(net.gateway, 'interop_dpd', 'netdev');
    const pcap = join(gw.dir, 'to-peer.pcap');
    let capture: Capture;
    let charon: Charon;
    let vip = '';
    /** Wall-clock bounds (ms) of the moment the link to the peer went dark. */
    let cutFrom = 0;
    let cutTo = 0;
    let deletedAt = 0;

    before(async () => {
      net.create();
      // Every IKE message the gateway sends the peer on 4500, logged at the IP output hook.
      watch.load(`
  counter ike_to_peer {}
  chain output {
    type filter hook output priority filter; policy accept;
    ip daddr ${net.clientAddr} ${ikeOn4500('sport')} log group ${NFLOG_GROUP} queue-threshold 1 counter name ike_to_peer
  }`);
      // No capture filter: tcpdump cannot filter on the NFLOG link type (the nft rule chooses).
      capture = new Capture(net.gateway, `nflog:${NFLOG_GROUP}`, pcap, '');
      await capture.start();
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.83.100.0/24',
          psk: PSK,
          hostNet: '10.83.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg0',
          dpdSeconds: DPD_SECONDS,
          retransmit: RETRANSMIT,
          accessFile: gw.access.file,
        }),
      );
      await gw.waitFor('ikegate-up', { timeoutMs: 20_000 });
      charon = new Charon({
        netns: net.client,
        swanctlConf: roadWarriorConf({
          psk: PSK,
          local: net.clientAddr,
          remote: net.gatewayOuter,
          hostNet: '10.83.2.0/24',
        }),
      });
      await charon.start();
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG)
        console.error(JSON.stringify(gw.lines.slice(-40)), gw.stderr.join(''), charon?.log().slice(-4000));
      await capture?.stop();
      cut.delete();
      watch.delete();
      await charon?.stop();
      await gw.stop();
      net.destroy();
    });

    test('the road warrior is up with a virtual IP and answers liveness checks while it is there (RFC 7296 §2.4)', async () => {
      const out = charon.swanctl('--initiate', '--child', 't', '--ike', 'rw', '--timeout', '20');
      assert.match(out, /initiate completed successfully/, charon.log().slice(-3000));
      vip = String((await gw.waitFor('child-sa-installed')).virtualIp);
      assert.match(vip, /^10\.83\.100\.\d+$/);
      // Idle for longer than the DPD interval: the gateway checks, strongSwan answers, nothing dies.
      const sentBefore = watch.packets('ike_to_peer');
      const until = Date.now() + DPD_SECONDS * 1000 * 3;
      while (watch.packets('ike_to_peer') === sentBefore && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      assert.ok(watch.packets('ike_to_peer') > sentBefore, 'a liveness check after the DPD interval');
      await new Promise((r) => setTimeout(r, 1000));
      assert.equal(gw.count('ike-sa-deleted'), 0);
      assert.equal(gw.poolInUse(), 1);
    });

    test('a vanished peer is declared dead after the DPD interval plus the retransmission schedule, its virtual IP freed (RFC 7296 §2.4)', async () => {
      // Traffic up to the last moment: the ping's ESP is authenticated inbound traffic, so no
      // liveness check is outstanding when the link goes dark right after it.
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3, charon.log().slice(-2000));
      cutFrom = Date.now();
      cut.load(`
  counter from_peer {}
  counter ike_lost {}
  counter other_lost {}
  chain ingress {
    type filter hook ingress device "${net.gatewayToClient}" priority filter; policy accept;
    ip saddr ${net.clientAddr} counter name from_peer drop
  }
  chain egress {
    type filter hook egress device "${net.gatewayToClient}" priority filter; policy accept;
    ip daddr ${net.clientAddr} ${ikeOn4500('sport')} counter name ike_lost drop
    ip daddr ${net.clientAddr} counter name other_lost drop
  }`);
      cutTo = Date.now();

      const del = await gw.waitFor('ike-sa-deleted', {
        timeoutMs: DPD_SECONDS * 1000 + SCHEDULE_MS + 15_000,
      });
      deletedAt = logTime(del);
      assert.equal(del.reason, 'dead-peer', JSON.stringify(del));
      const elapsed = deletedAt - cutTo;
      // Not before every retransmission had its interval; at most the DPD interval + schedule + slack.
      assert.ok(elapsed >= SCHEDULE_MS, `declared dead ${elapsed} ms after the cut (< ${SCHEDULE_MS})`);
      assert.ok(
        deletedAt - cutFrom <= DPD_SECONDS * 1000 + SCHEDULE_MS + 5_000,
        `declared dead ${deletedAt - cutFrom} ms after the cut`,
      );

      assert.equal(
        cut.packets('ike_lost'),
        1 + RETRANSMIT.maxRetransmits,
        'one liveness request and maxRetransmits retransmissions went towards the vanished peer',
      );
      assert.equal(gw.poolInUse(), 0, 'the virtual IP is back in the pool');
      assert.equal(gw.sas().length, 0);
      const m = gw.metrics();
      assert.equal(
        metricValue(m, 'ikegate_ike_sa_events_total', { event: 'deleted', reason: 'dead-peer' }),
        1,
      );
      assert.equal(metricValue(m, 'ikegate_ike_sas', { status: 'established' }), 0);
      assert.equal(metricValue(m, 'ikegate_child_sas'), 0);
      assert.equal(metricValue(m, 'ikegate_child_sa_events_total', { event: 'removed' }), 1);
    });

    test('the liveness request is retransmitted with the same octets and exponential backoff, then one more interval (RFC 7296 §2.1, §2.4)', async () => {
      assert.ok(deletedAt > 0, 'the previous test saw the SA deleted');
      await capture.stop();
      const rows = tsharkFields(pcap, [
        'frame.time_epoch',
        'isakmp.exchangetype',
        'isakmp.flag_r',
        'isakmp.messageid',
        'udp.payload',
      ]).filter((r) => Number(r[0]) * 1000 >= cutFrom);
      const shown = JSON.stringify(rows.map((r) => r.slice(0, 4)));
      assert.equal(rows.length, 1 + RETRANSMIT.maxRetransmits, shown);
      for (const r of rows) {
        assert.equal(Number(r[1]), INFORMATIONAL, shown);
        assert.ok(r[2] === 'False' || r[2] === '0', `a request: ${shown}`);
        assert.equal(r[3], rows[0]![3], `one Message ID: ${shown}`);
        assert.equal(r[4], rows[0]![4], 'a retransmission repeats the octets');
      }
      const times = rows.map((r) => Number(r[0]) * 1000);
      // The first check comes a DPD interval after the last traffic (the ping, just before the cut).
      assert.ok(
        times[0]! - cutFrom >= DPD_SECONDS * 1000 - 500,
        `first check ${times[0]! - cutFrom} ms after`,
      );
      const gaps = [...times.slice(1), deletedAt].map((t, i) => Math.round(t - times[i]!));
      for (const [i, expected] of INTERVALS_MS.entries())
        assert.ok(
          gaps[i]! >= expected - 50 && gaps[i]! <= 2 * expected + 1_000,
          `interval ${i + 1} is ${gaps[i]} ms, expected about ${expected} (all: ${gaps.join(', ')})`,
        );
    });
  },
);
