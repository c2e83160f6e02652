/**
 * Issue #9, "must show": strongSwan's own retransmissions are answered from the cache. A strongSwan
 * road warrior initiates to `ikegate up` over UDP; nftables in the gateway's namespace loses the
 * gateway's first IKE_AUTH response on its outer link (netdev egress, so ikegate's send succeeds as
 * on a lossy network; matched on the IKE header: exchange type 35 with the Response flag, after
 * the non-ESP marker on 4500), and only the first: a dynamic set remembers it. charon retransmits
 * its IKE_AUTH request, and the gateway must answer it from its cached response (RFC 7296 §2.1:
 * the same octets; with AES-GCM's random IV a recomputed response would differ) without
 * processing it again: one IKE SA, one child SA, one virtual IP.
 *
 * Every IKE_AUTH message in or out of the gateway is copied to NFLOG group 5 at the IP hooks,
 * before the link loses it, so tcpdump -i nflog:5 has the lost response too and tshark compares.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { Capture, haveCaptureTools, tsharkFields } from './lib/capture.js';
import { gatewayConfig, IkegateProcess, metricValue } from './lib/ikegate-process.js';
import { canUseNetns } from './lib/netns.js';
import { haveNft, ikeMatch, NftTable } from './lib/nft.js';
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

const PSK = 'road-warrior-psk-31c9e0b7d4';
const IKE_AUTH = 35;
const NFLOG_GROUP = 5;

describe(
  'strongSwan retransmits IKE_AUTH after its first response is lost -> `ikegate up` answers from its cache (issue #9)',
  { skip },
  () => {
    const net = new Chain3('rtx', '10.84');
    const gw = new IkegateProcess(net.gateway);
    // Logs and counts IKE_AUTH in and out at the IP hooks; loses the first response on the link.
    const watch = new NftTable(net.gateway, 'interop_rtx');
    const lose = new NftTable(net.gateway, 'interop_rtx', 'netdev');
    let capture: Capture;
    let charon: Charon;
    let vip = '';

    before(async () => {
      net.create();
      const ports = [500, 4500] as const;
      const log = `log group ${NFLOG_GROUP} queue-threshold 1`;
      watch.load(`
  counter auth_requests {}
  counter auth_responses {}
  chain input {
    type filter hook input priority filter; policy accept;
${ports.map((port) => `    ${ikeMatch({ port, dir: 'dport', exchange: IKE_AUTH, response: false })} ${log} counter name auth_requests`).join('\n')}
  }
  chain output {
    type filter hook output priority filter; policy accept;
${ports.map((port) => `    ${ikeMatch({ port, dir: 'sport', exchange: IKE_AUTH, response: true })} ${log} counter name auth_responses`).join('\n')}
  }`);
      // On the gateway's outer link, after ikegate's sendmsg() succeeded: the first response to
      // each peer address is lost, later ones pass (the set remembers who lost one).
      lose.load(`
  counter lost {}
  counter passed {}
  set lost_once { type ipv4_addr; flags dynamic; }
  chain egress {
    type filter hook egress device "${net.gatewayToClient}" priority filter; policy accept;
${ports.map((port) => `    ${ikeMatch({ port, dir: 'sport', exchange: IKE_AUTH, response: true })} jump ike_auth_response`).join('\n')}
  }
  chain ike_auth_response {
    ip daddr @lost_once counter name passed accept
    add @lost_once { ip daddr } counter name lost drop
  }`);
      // No capture filter: tcpdump cannot filter on the NFLOG link type (the nft rules choose).
      capture = new Capture(net.gateway, `nflog:${NFLOG_GROUP}`, join(gw.dir, 'ike-auth.pcap'), '');
      await capture.start();
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.84.100.0/24',
          psk: PSK,
          hostNet: '10.84.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg0',
          accessFile: gw.access.file,
        }),
      );
      await gw.waitFor('ikegate-up', { timeoutMs: 20_000 });
      charon = new Charon({
        netns: net.client,
        // Retransmit after 1 s instead of 4 s; the schedule is charon's, the answer is ikegate's.
        charonExtra: '  retransmit_timeout = 1.0',
        swanctlConf: roadWarriorConf({
          psk: PSK,
          local: net.clientAddr,
          remote: net.gatewayOuter,
          hostNet: '10.84.2.0/24',
        }),
      });
      await charon.start();
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG)
        console.error(JSON.stringify(gw.lines.slice(-40)), gw.stderr.join(''), charon?.log().slice(-4000));
      await capture?.stop();
      await charon?.stop();
      await gw.stop();
      lose.delete();
      watch.delete();
      net.destroy();
    });

    test("answers strongSwan's retransmitted IKE_AUTH from its cache, one IKE SA and one child SA (RFC 7296 §2.1)", async () => {
      const out = charon.swanctl('--initiate', '--child', 't', '--ike', 'rw', '--timeout', '20');
      assert.match(out, /initiate completed successfully/, charon.log().slice(-3000));
      assert.match(
        charon.log(),
        /retransmit 1 of request with message ID 1\b/,
        'charon retransmitted its IKE_AUTH request',
      );
      const child = await gw.waitFor('child-sa-installed');
      vip = String(child.virtualIp);
      assert.match(vip, /^10\.84\.100\.\d+$/);

      assert.equal(lose.packets('lost'), 1, 'exactly one IKE_AUTH response lost');
      assert.equal(lose.packets('passed'), 1, 'the retransmission answered once');
      assert.equal(watch.packets('auth_requests'), 2, 'the request and its retransmission');
      assert.equal(watch.packets('auth_responses'), 2, 'two responses sent');

      const m = gw.metrics();
      const messages = (direction: string, exchange: string) =>
        metricValue(m, 'ikegate_ike_messages_total', { direction, exchange });
      assert.equal(messages('in', 'IKE_SA_INIT'), 1);
      assert.equal(messages('out', 'IKE_SA_INIT'), 1);
      assert.equal(messages('in', 'IKE_AUTH'), 2);
      assert.equal(messages('out', 'IKE_AUTH'), 2);
      assert.equal(metricValue(m, 'ikegate_child_sa_events_total', { event: 'installed' }), 1);
      assert.equal(metricValue(m, 'ikegate_ike_sa_events_total', { event: 'established' }), 1);
      assert.equal(gw.count('ike-sa-established'), 1);
      assert.equal(gw.count('child-sa-installed'), 1);
      const sas = gw.sas();
      assert.equal(sas.length, 1);
      assert.equal(sas[0]!.status, 'established');
      assert.equal(sas[0]!.children.length, 1, 'exactly one child SA installed on the gateway');
      assert.equal(gw.poolInUse(), 1, 'one virtual IP handed out, not two');
    });

    test('the two IKE_AUTH responses on the wire are byte-identical, as are the two requests (RFC 7296 §2.1)', async () => {
      await capture.stop();
      const rows = tsharkFields(
        join(gw.dir, 'ike-auth.pcap'),
        ['isakmp.flag_r', 'isakmp.messageid', 'udp.payload'],
        ['-Y', `isakmp.exchangetype == ${IKE_AUTH}`],
      );
      const requests = rows.filter((r) => r[0] === 'False' || r[0] === '0');
      const responses = rows.filter((r) => r[0] === 'True' || r[0] === '1');
      assert.equal(requests.length, 2, JSON.stringify(rows.map((r) => r.slice(0, 2))));
      assert.equal(responses.length, 2, JSON.stringify(rows.map((r) => r.slice(0, 2))));
      assert.ok(requests.every((r) => Number(r[1]) === 1) && responses.every((r) => Number(r[1]) === 1));
      assert.equal(requests[0]![2], requests[1]![2], 'charon retransmitted the same octets');
      assert.ok(responses[0]![2]!.length > 100, 'an encrypted IKE_AUTH response, not an empty field');
      assert.equal(responses[0]![2], responses[1]![2], 'the answer came from the cache, octet for octet');
      // Order on the wire: request, (lost) response, request again, the same response again.
      assert.deepEqual(
        rows.map((r) => (r[0] === 'True' || r[0] === '1' ? 'resp' : 'req')),
        ['req', 'resp', 'req', 'resp'],
      );
    });

    test('the SA set up through the retransmission carries traffic: ping from the virtual IP to the host', () => {
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3, charon.log().slice(-2000));
      const m = gw.metrics();
      assert.ok(metricValue(m, 'ikegate_esp_packets_total', { direction: 'in' }) >= 3);
      assert.ok(metricValue(m, 'ikegate_esp_packets_total', { direction: 'out' }) >= 3);
    });
  },
);
