/**
 * Issue #4, "the same over TCP 4500 through `ikegate tcp-shim`": strongSwan (charon with
 * kernel-libipsec, UDP only: it has no RFC 9329 support) reaches `ikegate up` over RFC 9329 TCP
 * through the real `ikegate tcp-shim` command running beside it in the client namespace.
 *
 *   client ns: charon (UDP 510/4510) --UDP--> tcp-shim 127.0.0.2:500/4500 --TCP "IKETCP"+frames-->
 *   gateway ns: ikegate up (TCP 4500 on the outer veth, TUN, masquerade) --> host ns
 *
 * IKE SA + CHILD SA over TCP, a virtual IP from the pool (RFC 7296 §3.15), ping and a 10 MB TCP
 * transfer with an end-to-end SHA-256, child and IKE rekeys from strongSwan (and from ikegate, down
 * the same stream) while traffic flows, DELETE from strongSwan. The TCP session is captured on the
 * gateway's outer veth and read back with tshark and docs/wireshark/iketcp.lua: every frame is IKE
 * or ESP, nothing is malformed, and the IKE exchanges on the wire are the ones ikegate counted.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { BulkCapture } from './lib/bulk-capture.js';
import { haveCaptureTools, tsharkFields } from './lib/capture.js';
import { gatewayConfig, IkegateProcess } from './lib/ikegate-process.js';
import { canUseNetns, ip } from './lib/netns.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough, roadWarriorConf } from './lib/swanctl.js';
import { TcpShimProcess } from './lib/tcp-shim-process.js';
import { Chain3 } from './lib/topology.js';
import { Sink, transfer } from './lib/transfer.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok
    ? netns.why
    : !haveStrongswan()
      ? 'strongSwan (charon, swanctl) not installed'
      : !haveCaptureTools()
        ? 'tcpdump/tshark not installed'
        : false,
);

const PSK = 'road-warrior-psk-8d1c7f03a2';
const MB = 1024 * 1024;
const SHIM_ADDR = '127.0.0.2';
const EXCHANGES: Record<string, string> = {
  '34': 'IKE_SA_INIT',
  '35': 'IKE_AUTH',
  '36': 'CREATE_CHILD_SA',
  '37': 'INFORMATIONAL',
};

/**
 * The road warrior of up-vs-strongswan.test.ts (not imported from there: importing a test file
 * would run its suite here too), pointed at the shim. encap = yes: ESP goes to the shim's 4500
 * in UDP, never as raw protocol 50 (services/tcp-shim/README.md).
 */

/** `ikegate_ike_messages_total` from /metrics, in + out, by exchange name. */
function metricExchanges(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const m of metrics.matchAll(
    /^ikegate_ike_messages_total\{direction="(in|out)",exchange="(\w+)"\} (\d+)$/gm,
  ))
    counts[m[2]!] = (counts[m[2]!] ?? 0) + Number(m[3]);
  return counts;
}

describe(
  'strongSwan road warrior -> `ikegate tcp-shim` -> `ikegate up` over RFC 9329 TCP: VIP, ping, 10 MB TCP, rekeys, DELETE, tshark (issue #4)',
  { skip },
  () => {
    const net = new Chain3('shim', '10.87');
    const gw = new IkegateProcess(net.gateway);
    const shim = new TcpShimProcess(net.client);
    const sink = new Sink();
    const dir = mkdtempSync(join(tmpdir(), 'ikegate-shim-'));
    const pcap = join(dir, 'tcp4500.pcap');
    // Chain3 names the client<->gateway veth ends v<id>cg / v<id>gc (see topology.ts).
    const gatewayOuterIf = `v${net.gatewayToHost.slice(1, -2)}gc`;
    let capture: BulkCapture;
    let charon: Charon;
    let vip = '';

    const saSpi = () => gw.sas().find((s) => s.status === 'established')?.spi ?? '';

    before(async () => {
      net.create();
      // 127.0.0.0/8 is on lo already; an explicit 127.0.0.2 makes the shim's address visible.
      ip('-n', net.client, 'addr', 'add', `${SHIM_ADDR}/8`, 'dev', 'lo');
      capture = new BulkCapture(net.gateway, gatewayOuterIf, pcap, 'tcp port 4500');
      await capture.start();
      await sink.start(net.host, net.hostAddr, 5001, 240_000);
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.87.100.0/24',
          psk: PSK,
          hostNet: '10.87.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg1',
          accessFile: gw.access.file,
        }),
      );
      await gw.waitFor('ikegate-up', { timeoutMs: 20_000 });
      await shim.start(['--listen', SHIM_ADDR, '--upstream', `${net.gatewayOuter}:4500`]);
      charon = new Charon({
        netns: net.client,
        // charon binds UDP 500/4500 on every address of the namespace: give it other ports so the
        // shim can have 500/4500 on 127.0.0.2. It still sends to the remote's 500, then 4500.
        charonExtra: '  port = 510\n  port_nat_t = 4510',
        swanctlConf: roadWarriorConf({
          local: '127.0.0.1',
          remote: SHIM_ADDR,
          hostNet: '10.87.2.0/24',
          psk: PSK,
        }),
      });
      await charon.start();
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG) {
        console.error(JSON.stringify(gw.lines.slice(3)), gw.stderr.join(''));
        console.error(JSON.stringify(shim.lines), shim.stderr.join(''));
        console.error(charon?.log().slice(-5000));
      }
      sink.stop();
      await capture?.stop();
      await charon?.stop();
      await shim.stop();
      await gw.stop();
      net.destroy();
      // The capture is some 30 MB: kept only when debugging.
      if (process.env.IKEGATE_INTEROP_DEBUG) console.error(`capture kept: ${pcap}`);
      else rmSync(dir, { recursive: true, force: true });
    });

    test('IKE SA and CHILD SA come up over TCP through the shim, with a virtual IP from the pool (RFC 9329 §3, RFC 7296 §3.15)', async () => {
      const out = charon.swanctl('--initiate', '--child', 't', '--ike', 'rw', '--timeout', '20');
      assert.match(out, /initiate completed successfully/, charon.log().slice(-3000));
      const est = await gw.waitFor('ike-sa-established');
      assert.equal(est.transport, 'tcp', JSON.stringify(est));
      assert.equal(est.peerId, 'carol@example.org');
      assert.equal(est.peer, 'road-warriors');
      // The gateway sees the shim's TCP connection from the client's veth address.
      assert.match(String(est.remote), new RegExp(`^${net.clientAddr.replace(/\./g, '\\.')}:\\d+$`));
      const child = await gw.waitFor('child-sa-installed');
      vip = String(child.virtualIp);
      assert.match(vip, /^10\.87\.100\.\d+$/);
      assert.notEqual(vip, '10.87.100.1', 'the gateway address is never handed out');
      assert.match(charon.swanctl('--list-sas'), new RegExp(`\\[${vip.replace(/\./g, '\\.')}\\]`));
      const connected = await shim.waitFor('upstream_connected');
      assert.equal(connected.daemon, '127.0.0.1');
    });

    test('ping from the virtual IP reaches the host through the TCP tunnel, TUN and masquerade', () => {
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3, charon.log().slice(-2000));
    });

    test('a 10 MB TCP transfer through the tunnel arrives intact (SHA-256 end to end)', async () => {
      const r = await transfer(net.client, vip, net.hostAddr, 5001, 10 * MB, 90_000);
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.reply.bytes, 10 * MB);
      assert.equal(r.reply.sha256, r.sha256);
    });

    test('child and IKE rekeys from strongSwan, then from ikegate, while a transfer flows over the same stream (RFC 7296 §1.3.2, §1.3.3, §2.8)', async () => {
      const installed = gw.count('child-sa-installed');
      const running = transfer(net.client, vip, net.hostAddr, 5001, 16 * MB, 120_000);
      await new Promise((r) => setTimeout(r, 300));
      assert.match(charon.swanctl('--rekey', '--child', 't'), /rekey completed successfully/);
      await gw.waitFor('child-sa-installed', { n: installed + 1 });
      assert.match(charon.swanctl('--rekey', '--ike', 'rw'), /rekey completed successfully/);
      await gw.waitFor('ike-sa-rekeyed');
      const spi = saSpi();
      assert.match(spi, /^[0-9a-f]{16}$/);
      assert.equal(gw.api('POST', `/v1/sas/${spi}/rekey`, { what: 'children' }, 'operator').status, 202);
      await gw.waitFor('child-sa-installed', { n: installed + 2 });
      assert.equal(gw.api('POST', `/v1/sas/${spi}/rekey`, { what: 'ike' }, 'operator').status, 202);
      await gw.waitFor('ike-sa-rekeyed', { n: 2 });
      const r = await running;
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.reply.bytes, 16 * MB);
      assert.equal(r.reply.sha256, r.sha256);
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 2), 2);
      const sas = gw.sas();
      assert.equal(sas.length, 1);
      assert.equal(sas[0]!.children.length, 1);
      // All of it over the one stream the shim opened: no redial.
      assert.equal(shim.count('upstream_connected'), 1, JSON.stringify(shim.lines));
      assert.equal(shim.count('upstream_closed'), 0, JSON.stringify(shim.lines));
    });

    test('/metrics: TCP frames both ways, no UDP', () => {
      const m = String(gw.api('GET', '/metrics').body);
      assert.match(m, /ikegate_ike_sas\{status="established"\} 1/);
      assert.match(m, /ikegate_child_sas 1/);
      assert.match(m, /ikegate_esp_packets_total\{direction="in"\} [1-9]\d{3,}/);
      assert.match(m, /ikegate_frames_total\{transport="tcp",kind="esp",direction="out"\} [1-9]/);
      assert.match(m, /ikegate_frames_total\{transport="tcp",kind="ike",direction="in"\} [1-9]/);
      assert.doesNotMatch(m, /ikegate_frames_total\{transport="udp",[^}]*\} [1-9]/);
    });

    test('DELETE from strongSwan removes the SAs and frees the virtual IP (RFC 7296 §1.4.1)', async () => {
      assert.match(charon.swanctl('--terminate', '--ike', 'rw'), /terminate completed successfully/);
      const del = await gw.waitFor('ike-sa-deleted');
      assert.equal(del.reason, 'peer-deleted');
      assert.equal(gw.poolInUse(), 0);
    });

    test('tshark with the RFC 9329 dissector: every frame of the TCP 4500 stream is IKE or ESP, none malformed, and the IKE exchanges are the ones ikegate counted', async () => {
      const stats = await capture.stop();
      assert.ok(stats, `tcpdump statistics: ${capture.stderr}`);
      assert.equal(stats.droppedByKernel, 0, 'tcpdump saw every packet');
      const rows = tsharkFields(pcap, [
        'frame.number',
        'tcp.stream',
        'tcp.len',
        'iketcp.prefix',
        'iketcp.kind',
        'isakmp.exchangetype',
        'esp.spi',
        'tcp.reassembled_in',
        '_ws.malformed',
        '_ws.expert.message',
        'tcp.analysis.retransmission',
        'tcp.analysis.out_of_order',
      ]);
      const at = (r: string[], i: number) => (r[i] ? r[i].split(',') : []);
      const streams = new Set(rows.map((r) => r[1]));
      assert.equal(streams.size, 1, `one TCP stream: ${[...streams].join(' ')}`);
      // Every segment with payload carries IKE/ESP frames (or the prefix), or is part of a frame
      // reassembled in a later segment. TCP retransmissions (real ones, on the veth) repeat octets
      // already dissected, so tshark does not hand them to the dissector again; a segment the
      // capture saw out of order (a retransmission after a loss the capture did not see) is not
      // reassembled by tshark's default either (tcp.reassemble_out_of_order off).
      const orphans = rows.filter(
        (r) => Number(r[2]) > 0 && !r[3] && at(r, 4).length === 0 && !r[7] && !r[10] && !r[11],
      );
      assert.deepEqual(orphans.slice(0, 5), [], 'segments that decode as neither IKE nor ESP');
      const malformed = rows.filter((r) => r[8] || /iketcp|Malformed/i.test(r[9] ?? ''));
      assert.deepEqual(malformed.slice(0, 5), [], 'malformed frames or dissector experts');
      const prefixes = rows.filter((r) => r[3]).length;
      assert.equal(prefixes, 1, 'one IKETCP prefix, from the shim (the originator) only');
      const kinds = rows.flatMap((r) => at(r, 4));
      assert.ok(
        kinds.every((k) => k === 'IKE' || k === 'ESP'),
        `kinds: ${[...new Set(kinds)].join(' ')}`,
      );
      const ike = rows.flatMap((r) => at(r, 5)).map((x) => EXCHANGES[x] ?? `other(${x})`);
      assert.equal(ike.length, kinds.filter((k) => k === 'IKE').length, 'each IKE frame decoded by isakmp');
      assert.equal(
        rows.flatMap((r) => at(r, 6)).length,
        kinds.filter((k) => k === 'ESP').length,
        'each ESP frame decoded by esp',
      );
      assert.ok(kinds.filter((k) => k === 'ESP').length > 1000, 'the transfers went over the stream');
      // Order on the wire: setup first, rekeys in the middle, the DELETE last.
      assert.deepEqual(
        ike.slice(0, 4),
        ['IKE_SA_INIT', 'IKE_SA_INIT', 'IKE_AUTH', 'IKE_AUTH'],
        ike.join(' '),
      );
      assert.deepEqual(ike.slice(-2), ['INFORMATIONAL', 'INFORMATIONAL'], ike.join(' '));
      const wire: Record<string, number> = {};
      for (const x of ike) wire[x] = (wire[x] ?? 0) + 1;
      // Four rekeys (two child, two IKE), request + response each.
      assert.equal(wire.CREATE_CHILD_SA, 8, ike.join(' '));
      // Each message on the wire is one that ikegate received or sent (/metrics, in + out).
      const counted = metricExchanges(String(gw.api('GET', '/metrics').body));
      assert.deepEqual(wire, counted, `wire ${JSON.stringify(wire)} vs /metrics ${JSON.stringify(counted)}`);
    });

    test('the shim stops on SIGTERM with its counters: nothing dropped, every datagram relayed', async () => {
      await charon.stop();
      await shim.stop();
      const closed = await shim.waitFor('closed', { timeoutMs: 1000 });
      const c = closed.counters as {
        datagramsIn: number;
        framesOut: number;
        framesIn: number;
        datagramsOut: number;
        keepalivesDropped: number;
        reconnects: number;
        dropsByReason: Record<string, number>;
      };
      assert.deepEqual(c.dropsByReason, {}, JSON.stringify(c));
      assert.equal(c.reconnects, 0);
      assert.equal(c.framesOut, c.datagramsIn - c.keepalivesDropped, JSON.stringify(c));
      assert.equal(c.datagramsOut, c.framesIn, JSON.stringify(c));
      assert.equal(shim.exitCode, 0);
    });
  },
);
