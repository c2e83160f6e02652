import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { nobleProvider, nodeProvider } from '@ikegate/crypto';
import { fromHex, toHex } from '@ikegate/testkit';
import { NotifyStatus, PayloadType } from '../codec/constants.js';
import { decodeMessage } from '../codec/message.js';
import type { NotifyPayload } from '../codec/types.js';
import { buildNatDetection, evaluateNatDetection, natDetectionHash } from './nat-detection.js';

const v = JSON.parse(
  readFileSync(
    new URL('../../../../test/vectors/strongswan-5.9.8-psk-x25519-aes256gcm.json', import.meta.url),
    'utf8',
  ),
) as Record<string, string>;

function natd(raw: Uint8Array) {
  const msg = decodeMessage(raw);
  const n = msg.payloads.filter((p): p is NotifyPayload => p.type === PayloadType.NOTIFY);
  return {
    header: msg.header,
    sources: n.filter((x) => x.notifyType === NotifyStatus.NAT_DETECTION_SOURCE_IP).map((x) => x.data),
    destination: n.find((x) => x.notifyType === NotifyStatus.NAT_DETECTION_DESTINATION_IP)?.data,
  };
}

describe('NAT detection (RFC 7296 §2.23)', () => {
  for (const provider of [nodeProvider, nobleProvider]) {
    test(`${provider.name}: strongSwan's IKE_SA_INIT request (10.99.0.1:500 -> 10.99.0.2:500) has our DESTINATION_IP hash; its faked SOURCE_IP reads as a NAT`, () => {
      // strongSwan fakes NAT_DETECTION_SOURCE_IP (a random hash) to force UDP encapsulation
      // (`encap = yes`, needed with kernel-libipsec); no address or port reproduces it.
      const { header, sources, destination } = natd(fromHex(v.ikeSaInitRequest ?? ''));
      assert.equal(sources.length, 1);
      const initiator = { address: '10.99.0.1', port: 500 };
      const responder = { address: '10.99.0.2', port: 500 };
      const ours = buildNatDetection(
        provider,
        header.initiatorSpi,
        header.responderSpi,
        initiator,
        responder,
      );
      assert.notEqual(toHex(ours.source), toHex(sources[0]!));
      assert.equal(toHex(ours.destination), toHex(destination!));
      const r = evaluateNatDetection(
        provider,
        header.initiatorSpi,
        header.responderSpi,
        responder,
        initiator,
        sources,
        destination,
      );
      assert.deepEqual(r, { peerSupportsNatDetection: true, localBehindNat: false, remoteBehindNat: true });
      const honest = evaluateNatDetection(
        provider,
        header.initiatorSpi,
        header.responderSpi,
        responder,
        initiator,
        [ours.source],
        destination,
      );
      assert.equal(honest.remoteBehindNat, false);
    });
  }

  test('hash is SHA-1(SPIi | SPIr | IP | Port), checked through node:crypto directly; IPv6 too', () => {
    const spii = fromHex('0102030405060708');
    const spir = new Uint8Array(8);
    const want = createHash('sha1')
      .update(spii)
      .update(spir)
      .update(fromHex('20010db8000000000000000000000001'))
      .update(fromHex('1194'))
      .digest('hex');
    assert.equal(
      toHex(natDetectionHash(nodeProvider, spii, spir, { address: '2001:db8::1', port: 4500 })),
      want,
    );
  });

  test('a translated source port means the peer is behind NAT; a translated destination means we are', () => {
    const spii = fromHex('1111111111111111');
    const spir = fromHex('2222222222222222');
    const peerSide = buildNatDetection(
      nodeProvider,
      spii,
      spir,
      { address: '192.168.1.10', port: 4500 },
      { address: '198.51.100.1', port: 4500 },
    );
    // what we see: the peer's NAT rewrote its source to 203.0.113.5:61000; we are not translated
    const r = evaluateNatDetection(
      nodeProvider,
      spii,
      spir,
      { address: '198.51.100.1', port: 4500 },
      { address: '203.0.113.5', port: 61000 },
      [peerSide.source],
      peerSide.destination,
    );
    assert.deepEqual(r, { peerSupportsNatDetection: true, localBehindNat: false, remoteBehindNat: true });
    const behind = evaluateNatDetection(
      nodeProvider,
      spii,
      spir,
      { address: '10.0.0.2', port: 4500 },
      { address: '192.168.1.10', port: 4500 },
      [peerSide.source],
      peerSide.destination,
    );
    assert.equal(behind.localBehindNat, true);
    assert.equal(
      evaluateNatDetection(
        nodeProvider,
        spii,
        spir,
        { address: '10.0.0.2', port: 1 },
        { address: '10.0.0.3', port: 1 },
        [],
        undefined,
      ).peerSupportsNatDetection,
      false,
    );
  });
});
