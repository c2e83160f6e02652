/**
 * Interop is the truth: a real strongSwan 5.9.8 (userspace ESP, kernel-libipsec) initiates to a
 * responder built only from ikegate's protocol core (libs/ikev2 state machine and codec,
 * libs/crypto, libs/esp; see core-responder.ts) across two network namespaces over UDP 500/4500.
 * IKE_SA_INIT + IKE_AUTH with PSK, a CHILD SA, pings through the tunnel answered by our ESP, a
 * child rekey and an IKE rekey (RFC 7296 §1.3, §2.8) with traffic after each, and DELETE.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requirement } from '@ikegate/testkit';
import { Capture, haveCaptureTools, tsharkFields } from './lib/capture.js';
import { canUseNetns, NetnsPair } from './lib/netns.js';
import { Responder } from './lib/responder-process.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough, pskSwanctlConf } from './lib/swanctl.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveStrongswan() ? 'strongSwan (charon, swanctl) not installed' : false,
);

const PSK = 'interop-psk-4f2b9c1e7d';

describe(
  'strongSwan initiator <-> ikegate protocol core responder over UDP (RFC 7296, RFC 4303, RFC 3948)',
  { skip },
  () => {
    const pair = new NetnsPair('core', '10.96.0');
    const responder = new Responder();
    const pcap = join(mkdtempSync(join(tmpdir(), 'ikegate-core-')), 'udp.pcap');
    let capture: Capture | undefined;
    let charon: Charon;

    const ping = (count: number) => pingThrough(pair.nsA, '10.1.0.1', '10.2.0.1', count);

    before(async () => {
      pair.create({ loA: ['10.1.0.1/32'] });
      if (haveCaptureTools()) {
        capture = new Capture(pair.nsA, pair.link.a, pcap, 'udp');
        await capture.start();
      }
      await responder.start(pair.nsB, {
        local: pair.link.addrB,
        psk: PSK,
        localId: 'b.example',
        localTs: '10.2.0.1/32',
        remoteTs: '10.1.0.1/32',
      });
      charon = new Charon({
        netns: pair.nsA,
        swanctlConf: pskSwanctlConf({
          local: pair.link.addrA,
          remote: pair.link.addrB,
          localId: 'a.example',
          remoteId: 'b.example',
          localTs: '10.1.0.1/32',
          remoteTs: '10.2.0.1/32',
          psk: PSK,
          autoRekey: false,
        }),
        log: { ike: 2, cfg: 1 },
      });
      await charon.start();
    });

    after(async () => {
      responder.stop();
      await charon?.stop();
      pair.destroy();
    });

    test('IKE SA and CHILD SA come up with PSK; pings through the tunnel are answered by our ESP', async () => {
      const out = charon.swanctl('--initiate', '--child', 't', '--ike', 'c', '--timeout', '15');
      assert.match(out, /initiate completed successfully/);
      const est = await responder.waitFor('established');
      assert.equal(est.peerId, 'a.example');
      await responder.waitFor('install-child');
      assert.equal(ping(3), 3, charon.log().slice(-3000));
      await responder.waitFor('ping', 5000, 3);
    });

    test('child SA rekey initiated by strongSwan: new SPIs, old child removed, traffic continues (RFC 7296 §1.3.3)', async () => {
      const before = responder.count('install-child');
      assert.match(charon.swanctl('--rekey', '--child', 't'), /rekey completed successfully/);
      await responder.waitFor('install-child', 10_000, before + 1);
      await responder.waitFor('remove-child');
      const pingsBefore = responder.count('ping');
      assert.equal(ping(2), 2);
      await responder.waitFor('ping', 5000, pingsBefore + 2);
      const last = responder.events.filter((e) => e.event === 'ping').at(-1);
      const newest = responder.events.filter((e) => e.event === 'install-child').at(-1);
      assert.equal(last?.spi, String(newest?.inboundSpi).replace(/^0+/, ''));
    });

    test('IKE SA rekey initiated by strongSwan: the child SA moves to the new IKE SA and traffic continues (RFC 7296 §2.18)', async () => {
      assert.match(charon.swanctl('--rekey', '--ike', 'c'), /rekey completed successfully/);
      await responder.waitFor('rekeyed-ike');
      const pingsBefore = responder.count('ping');
      assert.equal(ping(2), 2);
      await responder.waitFor('ping', 5000, pingsBefore + 2);
      assert.match(charon.swanctl('--list-sas'), /ESTABLISHED/);
    });

    test('DELETE from strongSwan removes the child and the IKE SA on our side (RFC 7296 §1.4.1)', async () => {
      assert.match(charon.swanctl('--terminate', '--ike', 'c'), /terminate completed successfully/);
      const del = await responder.waitFor('deleted');
      assert.equal(del.reason, 'peer-deleted');
      assert.equal(
        responder.count('error'),
        0,
        JSON.stringify(responder.events.filter((e) => e.event === 'error')),
      );
    });

    test('tshark decodes every IKE and ESP packet of the session, nothing malformed, in the RFC 7296 exchange order', async (t) => {
      if (!capture) return t.skip(requirement('tcpdump/tshark not installed', t));
      await capture.stop();
      const rows = tsharkFields(pcap, ['isakmp.exchangetype', 'isakmp.flags', 'esp.spi', '_ws.malformed']);
      assert.ok(
        rows.every((r) => !r[3]),
        'no malformed packet',
      );
      const exchanges = rows.filter((r) => r[0]).map((r) => Number(r[0]));
      // INIT, AUTH, child rekey (CREATE_CHILD_SA + DELETE of the old child), IKE rekey, DELETE
      assert.deepEqual(exchanges.slice(0, 4), [34, 34, 35, 35]);
      assert.ok(exchanges.filter((x) => x === 36).length >= 4, JSON.stringify(exchanges));
      assert.ok(exchanges.filter((x) => x === 37).length >= 4, JSON.stringify(exchanges));
      assert.ok(rows.filter((r) => r[2]).length >= 14, 'ESP packets both ways');
    });
  },
);
