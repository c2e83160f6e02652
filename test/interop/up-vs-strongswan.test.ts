/**
 * Issue #4, the first "must show": a real strongSwan road warrior (charon with kernel-libipsec) in
 * its own namespace initiates to `ikegate up` (the real command, its TUN data plane and nftables
 * masquerade) over UDP 500/4500; a host in a third namespace is reached through the tunnel.
 * IKE SA + CHILD SA with PSK, a virtual IP from the pool (RFC 7296 §3.15), ping and a 10 MB TCP
 * transfer with an end-to-end SHA-256, child and IKE rekeys from both sides while traffic flows
 * (RFC 7296 §1.3, §2.8), DELETE from either side (§1.4.1), counters on /metrics.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { requirement } from '@ikegate/testkit';
import { jemallocPaths } from '../../services/cli/src/allocator.js';
import { canUseNetns } from './lib/netns.js';
import { gatewayConfig, IkegateProcess } from './lib/ikegate-process.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough, roadWarriorConf } from './lib/swanctl.js';
import { Chain3 } from './lib/topology.js';
import { Sink, transfer } from './lib/transfer.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveStrongswan() ? 'strongSwan (charon, swanctl) not installed' : false,
);

const PSK = 'road-warrior-psk-8d1c7f03a2';
const MB = 1024 * 1024;

describe(
  'strongSwan road warrior -> `ikegate up` over UDP: VIP, ping, 10 MB TCP, rekeys, DELETE (issue #4)',
  { skip },
  () => {
    const net = new Chain3('up', '10.88');
    const gw = new IkegateProcess(net.gateway);
    const sink = new Sink();
    let charon: Charon;
    let vip = '';

    const saSpi = () => gw.sas().find((s) => s.status === 'established')?.spi ?? '';

    before(async () => {
      net.create();
      await sink.start(net.host, net.hostAddr, 5001);
      gw.start(
        ['up'],
        gatewayConfig({
          listen: net.gatewayOuter,
          pool: '10.88.100.0/24',
          psk: PSK,
          hostNet: '10.88.2.0/24',
          outInterface: net.gatewayToHost,
          tun: 'ikg0',
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
          hostNet: '10.88.2.0/24',
        }),
      });
      await charon.start();
    });

    after(async () => {
      if (process.env.IKEGATE_INTEROP_DEBUG)
        console.error(JSON.stringify(gw.lines.slice(3)), gw.stderr.join(''));
      sink.stop();
      await charon?.stop();
      await gw.stop();
      net.destroy();
    });

    test('`ikegate up` re-executed for its TUN device runs on jemalloc, installed with it (libjemalloc2), and says so (issue #14)', (t) => {
      const missing = requirement(
        jemallocPaths().some((p) => existsSync(p))
          ? false
          : 'jemalloc not installed (apt-get install libjemalloc2)',
        t,
      );
      if (missing) return t.skip(missing);
      const up = gw.lines.find((l) => l.msg === 'ikegate-up');
      assert.equal(up?.['allocator'], 'jemalloc');
    });

    test('IKE SA and CHILD SA come up with PSK and a virtual IP from the pool (RFC 7296 §1.2, §3.15)', async () => {
      const out = charon.swanctl('--initiate', '--child', 't', '--ike', 'rw', '--timeout', '20');
      assert.match(out, /initiate completed successfully/, charon.log().slice(-3000));
      const est = await gw.waitFor('ike-sa-established');
      assert.equal(est.peerId, 'carol@example.org');
      assert.equal(est.peer, 'road-warriors');
      const child = await gw.waitFor('child-sa-installed');
      vip = String(child.virtualIp);
      assert.match(vip, /^10\.88\.100\.\d+$/);
      assert.notEqual(vip, '10.88.100.1', 'the gateway address is never handed out');
      assert.match(charon.swanctl('--list-sas'), new RegExp(`\\[${vip.replace(/\./g, '\\.')}\\]`));
    });

    test('ping from the virtual IP reaches the host through the tunnel, TUN and masquerade', () => {
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 3), 3, charon.log().slice(-2000));
    });

    test('a 10 MB TCP transfer through the tunnel arrives intact (SHA-256 end to end)', async () => {
      const r = await transfer(net.client, vip, net.hostAddr, 5001, 10 * MB);
      assert.equal(r.error, undefined, JSON.stringify(r));
      assert.equal(r.reply.bytes, 10 * MB);
      assert.equal(r.reply.sha256, r.sha256);
    });

    test('child and IKE rekeys from both sides while a transfer flows; nothing is lost (RFC 7296 §1.3.2, §1.3.3, §2.8)', async () => {
      const installed = gw.count('child-sa-installed');
      const running = transfer(net.client, vip, net.hostAddr, 5001, 24 * MB, 90_000);
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
      assert.equal(r.reply.sha256, r.sha256);
      assert.equal(pingThrough(net.client, vip, net.hostAddr, 2), 2);
      // Old child SAs are gone: one child left on each side.
      const sas = gw.sas();
      assert.equal(sas.length, 1);
      assert.equal(sas[0]!.children.length, 1);
    });

    test('/metrics counts exchanges, SAs, frames and ESP packets (prom-client); the transfers went into the TUN as merged GSO writes, none with a bad checksum (issue #14)', () => {
      const m = String(gw.api('GET', '/metrics').body);
      assert.match(m, /ikegate_ike_messages_total\{direction="in",exchange="IKE_SA_INIT"\} 1/);
      assert.match(m, /ikegate_ike_sas\{status="established"\} 1/);
      assert.match(m, /ikegate_child_sas 1/);
      assert.match(m, /ikegate_esp_packets_total\{direction="in"\} [1-9]\d{3,}/);
      assert.match(m, /ikegate_frames_total\{transport="udp",kind="esp",direction="out"\} [1-9]/);
      assert.match(m, /ikegate_tun_coalesced_segments_total\{result="merged"\} [1-9]\d{2,}/);
      assert.match(m, /ikegate_tun_coalesced_segments_total\{result="bad_checksum"\} 0\n/);
    });

    test('DELETE from strongSwan removes the SAs and frees the virtual IP (RFC 7296 §1.4.1)', async () => {
      assert.match(charon.swanctl('--terminate', '--ike', 'rw'), /terminate completed successfully/);
      const del = await gw.waitFor('ike-sa-deleted');
      assert.equal(del.reason, 'peer-deleted');
      assert.equal(gw.poolInUse(), 0);
    });

    test('DELETE from ikegate (control API) closes the SA on strongSwan too (RFC 7296 §1.4.1)', async () => {
      assert.match(
        charon.swanctl('--initiate', '--child', 't', '--ike', 'rw', '--timeout', '20'),
        /successfully/,
      );
      await gw.waitFor('ike-sa-established', { n: 2 });
      const spi = saSpi();
      assert.equal(gw.api('DELETE', `/v1/sas/${spi}`, undefined, 'operator').status, 202);
      const del = await gw.waitFor('ike-sa-deleted', { n: 2 });
      assert.equal(del.reason, 'deleted');
      const until = Date.now() + 10_000;
      while (/ESTABLISHED/.test(charon.swanctl('--list-sas')) && Date.now() < until)
        await new Promise((r) => setTimeout(r, 100));
      assert.doesNotMatch(charon.swanctl('--list-sas'), /ESTABLISHED/);
      const unknown = gw.api('GET', '/v1/sas/0000000000000000', undefined, 'viewer');
      assert.equal(unknown.status, 404);
      assert.equal((unknown.body as { type: string }).type, 'urn:ikegate:problem:not-found');
      const bad = gw.api('GET', '/v1/sas/nothex', undefined, 'viewer');
      assert.equal(bad.status, 400);
      assert.equal((bad.body as { type: string }).type, 'urn:ikegate:problem:validation');
    });
  },
);
