/**
 * RFC 6311 against a real peer: after strongSwan 5.9.8 set up an IKE SA with the protocol-core
 * responder (both announced IKEV2_MESSAGE_ID_SYNC_SUPPORTED in IKE_AUTH), our side starts the
 * Message ID sync exchange as a cluster does after a takeover: an INFORMATIONAL with Message ID 0
 * carrying IKEV2_MESSAGE_ID_SYNC (RFC 6311 §4.2). strongSwan must accept and answer it, and the IKE
 * SA must keep working afterwards (a child rekey and traffic).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { requirement } from '@ikegate/testkit';
import { canUseNetns, NetnsPair } from './lib/netns.js';
import { Responder } from './lib/responder-process.js';
import { Charon, haveStrongswan } from './lib/strongswan.js';
import { pingThrough, pskSwanctlConf } from './lib/swanctl.js';

const netns = canUseNetns();
const skip = requirement(
  !netns.ok ? netns.why : !haveStrongswan() ? 'strongSwan (charon, swanctl) not installed' : false,
);
const PSK = 'interop-psk-mid-sync-6311';

describe('RFC 6311 Message ID sync started by the protocol core, answered by strongSwan', { skip }, () => {
  const pair = new NetnsPair('msync', '10.91.0');
  const responder = new Responder();
  let charon: Charon;
  before(async () => {
    pair.create({ loA: ['10.1.0.1/32'] });
    await responder.start(
      pair.nsB,
      {
        local: pair.link.addrB,
        psk: PSK,
        localId: 'b.example',
        localTs: '10.2.0.1/32',
        remoteTs: '10.1.0.1/32',
      },
      { IKEGATE_INTEROP_MID_SYNC_AFTER_MS: '300' },
    );
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
      }),
      log: { ike: 2, enc: 2 },
    });
    await charon.start();
  });
  after(async () => {
    responder.stop();
    await charon?.stop();
    pair.destroy();
  });

  test('strongSwan answers our IKEV2_MESSAGE_ID_SYNC INFORMATIONAL (Message ID 0); the SA keeps working', async () => {
    assert.match(
      charon.swanctl('--initiate', '--child', 't', '--ike', 'c'),
      /initiate completed successfully/,
    );
    const start = await responder.waitFor('mid-sync-start', 5000);
    assert.equal(start.peerSupports, true);
    const until = Date.now() + 5000;
    while (!/parsed INFORMATIONAL request 0 \[ N\(MSG_ID_SYN\) \]/.test(charon.log()) && Date.now() < until)
      await sleep(50);
    const log = charon.log();
    assert.match(log, /parsed INFORMATIONAL request 0 \[ N\(MSG_ID_SYN\) \]/, log.slice(-3000));
    assert.match(log, /generating INFORMATIONAL response 0 \[ N\(MSG_ID_SYN\) \]/);
    assert.match(log, /responder requested MID sync/);
    assert.equal(responder.count('error'), 0);
    // Our first request after the sync is Message ID 1, never a second 0: strongSwan derives its
    // AES-GCM IV from the Message ID and would refuse to encrypt a second response 0 (and drop
    // the SA without a word).
    const live = await responder.waitFor('liveness-start', 5000);
    assert.equal(live.messageId, 1);
    const until2 = Date.now() + 5000;
    while (!/generating INFORMATIONAL response 1 \[ \]/.test(charon.log()) && Date.now() < until2)
      await sleep(50);
    assert.match(charon.log(), /parsed INFORMATIONAL request 1 \[ \]/);
    assert.match(charon.log(), /generating INFORMATIONAL response 1 \[ \]/);
    assert.doesNotMatch(charon.log(), /no IV or padding/);
    // the IKE SA still works: a child rekey and traffic
    assert.match(charon.swanctl('--rekey', '--child', 't'), /rekey completed successfully/);
    await responder.waitFor('install-child', 10_000, 2);
    assert.equal(pingThrough(pair.nsA, '10.1.0.1', '10.2.0.1', 2), 2);
  });
});
