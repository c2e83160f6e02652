import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EncryptionId, IntegrityId, KeyExchangeId, PrfId } from '@ikegate/crypto';
import { decodeMessage, ExchangeType, HeaderFlag, NotifyStatus, PayloadType } from '../codec/index.js';
import {
  ANY_V4,
  INITIATOR_ADDRESS,
  type LoggedAction,
  Pair,
  pathFor,
  RESPONDER_ADDRESS,
  v4Range,
} from '../testing/pair.js';
import type { IkeSaCore } from './types.js';

const kinds = (log: readonly LoggedAction[]) => log.map((a) => a.kind);
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

function assertChildPairMatches(p: Pair): void {
  const i = [...p.initiator.children.values()];
  const r = [...p.responder.children.values()];
  assert.equal(i.length, r.length);
  for (const c of i) {
    const peer = r.find((x) => hex(x.inboundSpi) === hex(c.outboundSpi));
    assert.ok(peer, 'peer has the matching child SA');
    assert.equal(hex(peer.outboundSpi), hex(c.inboundSpi));
    assert.deepEqual(peer.keys, c.keys);
  }
}

/**
 * What an established SA with no rekey in flight keeps (issue #14): its SPIs and the keys it still
 * uses as views of one buffer of their own (not a packet, a pool or the KEYMAT that held SK_pi and
 * SK_pr); no nonces; AES-GCM has no SK_a, and SK_p served AUTH only (RFC 7296 §2.15).
 */
function assertSettled(c: IkeSaCore): void {
  const k = c.keys;
  const kept = [c.spiI, c.spiR, k.skD, k.skEi, k.skEr];
  for (const v of kept) assert.equal(v.buffer, c.spiI.buffer);
  assert.equal(
    c.spiI.buffer.byteLength,
    kept.reduce((n, v) => n + v.length, 0),
  );
  assert.deepEqual(
    [c.ni.length, c.nr.length, k.skAi.length, k.skAr.length, k.skPi.length, k.skPr.length],
    [0, 0, 0, 0, 0, 0],
  );
}

describe('IKE SA pair', () => {
  it('establishes an IKE SA and a first child SA with PSK (RFC 7296 §1.2, §2.15)', () => {
    const p = new Pair();
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.status, 'established');
    const est = p.initiator.log.find((a) => a.kind === 'established');
    assert.ok(est && est.kind === 'established');
    assert.equal(est.peerId, 'responder.example');
    assert.equal(p.responder.state.peerId, 'initiator.example');
    assert.equal(p.initiator.children.size, 1);
    assertChildPairMatches(p);
    const child = [...p.responder.children.values()][0]!;
    assert.deepEqual(child.tsLocal, [v4Range('10.0.0.0', '10.255.255.255')]);
    assert.deepEqual(child.tsRemote, [ANY_V4]);
    assert.equal(child.weInitiated, false);
  });

  it('responder: the IKE SPIs and the IKE SA keys kept after AUTH share one buffer, and so do the child SPIs and the cached response with its request digest (issue #14, memory per held SA), with the values the initiator uses', () => {
    const p = new Pair();
    p.establish();
    const r = p.responder.state;
    const i = p.initiator.state;
    for (const s of [r, i]) assertSettled(s.current!);
    assert.deepEqual(
      [r.current!.keys.skD, r.current!.keys.skEi, r.current!.keys.skEr].map(hex),
      [i.current!.keys.skD, i.current!.keys.skEi, i.current!.keys.skEr].map(hex),
    );
    assert.deepEqual(
      [hex(r.current!.spiI), hex(r.current!.spiR)],
      [hex(i.current!.spiI), hex(i.current!.spiR)],
    );
    const rc = r.children[0]!;
    const ic = i.children[0]!;
    assert.equal(rc.inboundSpi.buffer, rc.outboundSpi.buffer);
    assert.equal(rc.inboundSpi.buffer.byteLength, 8);
    // The cached IKE_AUTH response (RFC 7296 §2.1) and its request's digest: one buffer too.
    const cached = r.current!.lastResponse!;
    assert.equal(cached.bytes.buffer, cached.requestDigest.buffer);
    assert.equal(cached.bytes.buffer.byteLength, cached.bytes.length + cached.requestDigest.length);
    assert.deepEqual([hex(rc.inboundSpi), hex(rc.outboundSpi)], [hex(ic.outboundSpi), hex(ic.inboundSpi)]);
  });

  it('keeps working with the state persisted as JSON between steps, across a child rekey crossing an IKE rekey (RFC 7296 §2.18)', () => {
    const p = new Pair({ roundTrip: true, initiatorPolicy: { requestVirtualIp: true } });
    p.establish();
    p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
    p.command('responder', { kind: 'rekey-ike' });
    p.run();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.initiator.children.size, 1);
    assertChildPairMatches(p);
  });

  it('drops a half-open responder SA that never receives IKE_AUTH (RFC 7296 §2.6)', () => {
    const p = new Pair({ initiatorPolicy: { retransmit: { initialMs: 1000, maxRetransmits: 0 } } });
    p.filter = (f) => (f.index === 2 ? 'drop' : 'deliver');
    p.initiate();
    p.run();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'half-open-expired'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'dead-peer'));
    assert.equal(p.responder.endpoint.stats.sas, 0);
    assert.equal(p.responder.endpoint.stats.halfOpen, 0);
  });

  for (const [name, proposal] of [
    [
      'ECP-256',
      {
        encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
        prf: [PrfId.HMAC_SHA2_256],
        keyExchange: [KeyExchangeId.ECP_256],
      },
    ],
    [
      'MODP-2048',
      {
        encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
        prf: [PrfId.HMAC_SHA2_256],
        keyExchange: [KeyExchangeId.MODP_2048],
      },
    ],
    [
      'AES-CBC-256 + HMAC-SHA2-256-128',
      {
        encryption: [{ id: EncryptionId.AES_CBC, keyBits: 256 }],
        prf: [PrfId.HMAC_SHA2_256],
        integrity: [IntegrityId.HMAC_SHA2_256_128],
        keyExchange: [KeyExchangeId.CURVE25519],
      },
    ],
  ] as const) {
    it(`negotiates ${name} for the IKE SA (RFC 7296 §2.7)`, () => {
      const p = new Pair({
        initiatorPolicy: { ikeProposals: [proposal] },
        responderPolicy: { ikeProposals: [proposal] },
      });
      p.establish();
      assert.equal(p.initiator.state.status, 'established');
      assert.equal(p.responder.state.status, 'established');
      assertChildPairMatches(p);
    });
  }

  it('retries with the group named in INVALID_KE_PAYLOAD, keeping no responder state for the first try (RFC 7296 §1.3)', () => {
    const p = new Pair({
      responderPolicy: {
        ikeProposals: [
          {
            encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
            prf: [PrfId.HMAC_SHA2_256],
            keyExchange: [KeyExchangeId.ECP_256],
          },
        ],
      },
    });
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.initiator.state.current?.suite.keyExchange, KeyExchangeId.ECP_256);
    assert.equal(p.initiator.log.filter((a) => a.kind === 'send').length, 3);
    assert.ok(p.responder.log.some((a) => a.kind === 'rejected' && a.reason === 'invalid_ke_payload'));
    assert.equal(p.responder.endpoint.stats.sas, 1);
  });

  it('gives up with no-proposal-chosen when the responder accepts nothing, after waiting a retransmission interval for a genuine answer over UDP (RFC 7296 §2.7, §2.21.1)', () => {
    const p = new Pair({
      responderPolicy: {
        ikeProposals: [
          {
            encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 128 }],
            prf: [PrfId.HMAC_SHA2_512],
            keyExchange: [KeyExchangeId.CURVE25519],
          },
        ],
      },
    });
    p.initiate();
    p.flush();
    assert.equal(
      p.initiator.state.status,
      'init-sent',
      'an unauthenticated error does not end the setup at once',
    );
    p.run();
    assert.equal(p.initiator.state.status, 'deleted');
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'no-proposal-chosen'));
    assert.equal(p.responder.sa, undefined, 'the responder kept nothing');
    assert.ok(p.responder.log.some((a) => a.kind === 'rejected' && a.reason === 'no_proposal_chosen'));
  });

  it('acts at once on NO_PROPOSAL_CHOSEN in IKE_SA_INIT over TCP (PROTOCOL.md, RFC 9329)', () => {
    const p = new Pair({
      transport: 'tcp',
      responderPolicy: {
        ikeProposals: [
          {
            encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 128 }],
            prf: [PrfId.HMAC_SHA2_512],
            keyExchange: [KeyExchangeId.CURVE25519],
          },
        ],
      },
    });
    p.initiate();
    p.flush();
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'no-proposal-chosen'));
  });

  it('answers with a COOKIE and keeps no state until the initiator returns it (RFC 7296 §2.6)', () => {
    const p = new Pair({ responderLimits: { cookieThreshold: 0 } });
    p.initiate();
    const request = p.wire.shift()!;
    p.deliver('responder', request.bytes);
    assert.equal(p.responder.endpoint.stats.sas, 0, 'no state for a request without a cookie');
    p.flush();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.status, 'established');
    const firstResponse = decodeMessage(
      (p.responder.log.find((a) => a.kind === 'send') as { bytes: Uint8Array }).bytes,
    );
    assert.equal(firstResponse.payloads.length, 1);
    assert.equal(p.responder.closed, 0);
  });

  it('closes the TCP connection after sending a COOKIE (RFC 9329 §6, RFC 7296 §2.6)', () => {
    const p = new Pair({ transport: 'tcp', responderLimits: { cookieThreshold: 0 } });
    p.establish();
    assert.equal(p.responder.closed, 1);
    const cookieSend = p.responder.log.find((a) => a.kind === 'send');
    assert.ok(cookieSend?.kind === 'send' && cookieSend.closeAfter === 'cookie');
    assert.equal(p.initiator.state.status, 'established');
  });

  it('fails with AUTHENTICATION_FAILED on a wrong PSK, both sides delete and the responder logs why (RFC 7296 §2.15, §2.21.2)', () => {
    const p = new Pair({
      initiatorCtx: {
        psk: (id) => new TextEncoder().encode(id === 'initiator.example' ? 'wrong' : 'responder secret'),
      },
    });
    p.establish();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.ok(
      p.responder.log.some(
        (a) => a.kind === 'rejected' && a.reason === 'authentication_failed' && a.by === 'us',
      ),
    );
    assert.equal(p.initiator.children.size, 0);
    assert.equal(p.responder.children.size, 0);
  });

  it('refuses a responder that authenticates as someone other than expected (RFC 7296 §2.15)', () => {
    const p = new Pair({ initiatorCtx: { expectedPeerId: 'other.example' } });
    p.establish();
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'wrong-peer-id'));
    p.run();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'peer-deleted'));
  });

  it('assigns a virtual IP through CP and narrows TSi to it (RFC 7296 §2.19, §3.15)', () => {
    const p = new Pair({ initiatorPolicy: { requestVirtualIp: true } });
    p.establish();
    const i = [...p.initiator.children.values()][0]!;
    const r = [...p.responder.children.values()][0]!;
    assert.deepEqual(i.virtualIp, Uint8Array.of(10, 9, 0, 7));
    assert.deepEqual(r.virtualIp, Uint8Array.of(10, 9, 0, 7));
    assert.deepEqual(i.tsLocal, [v4Range('10.9.0.7', '10.9.0.7')]);
    assert.deepEqual(r.tsRemote, [v4Range('10.9.0.7', '10.9.0.7')]);
    // Issue #14: the responder's selector holds the assigned address's own array at both ends.
    assert.equal(r.tsRemote[0]!.startAddress, r.virtualIp);
    assert.equal(r.tsRemote[0]!.endAddress, r.virtualIp);
  });

  it('answers INTERNAL_ADDRESS_FAILURE when no address is left, and the initiator reports the failed child at once (RFC 7296 §3.15.4)', () => {
    const p = new Pair({
      initiatorPolicy: { requestVirtualIp: true },
      responderCtx: { assignAddress: () => undefined },
    });
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.initiator.children.size, 0);
    const failed = p.initiator.log.find((a) => a.kind === 'child-failed');
    assert.ok(failed?.kind === 'child-failed' && failed.notify === 36);
    assert.ok(p.responder.log.some((a) => a.kind === 'rejected' && a.reason === 'internal_address_failure'));
  });

  it('establishes the IKE SA without a child on TS_UNACCEPTABLE and says so on both sides (RFC 7296 §1.2, §2.9)', () => {
    const p = new Pair({
      responderPolicy: { remoteTs: [v4Range('172.16.0.0', '172.16.255.255')] },
      initiatorPolicy: { localTs: [v4Range('192.168.0.0', '192.168.0.255')] },
    });
    p.establish();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.status, 'established');
    assert.equal(p.initiator.children.size, 0);
    assert.equal(p.responder.children.size, 0);
    assert.ok(p.responder.log.some((a) => a.kind === 'rejected' && a.reason === 'ts_unacceptable'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'child-failed'));
  });

  it('exchanges IKEV2_MESSAGE_ID_SYNC_SUPPORTED in IKE_AUTH when configured (RFC 6311 §3)', () => {
    const p = new Pair({
      initiatorPolicy: { messageIdSync: true },
      responderPolicy: { messageIdSync: true },
    });
    p.establish();
    assert.equal(p.initiator.state.peerMessageIdSync, true);
    assert.equal(p.responder.state.peerMessageIdSync, true);
    const q = new Pair();
    q.establish();
    assert.equal(q.initiator.state.peerMessageIdSync, false);
  });

  it('detects NAT from the NAT_DETECTION notifies (RFC 7296 §2.23)', () => {
    const p = new Pair();
    p.responder.path = pathFor(
      'udp',
      'udp:nat',
      RESPONDER_ADDRESS,
      500,
      Uint8Array.of(203, 0, 113, 9),
      61000,
    );
    p.establish();
    assert.equal(p.responder.state.natRemote, true);
    assert.equal(p.responder.state.natLocal, false);
    const q = new Pair();
    q.establish();
    assert.equal(q.responder.state.natRemote, false);
  });

  it('answers an empty INFORMATIONAL as a liveness check (RFC 7296 §2.4)', () => {
    const p = new Pair();
    p.establish();
    p.command('initiator', { kind: 'liveness' });
    p.run();
    assert.equal(p.initiator.state.current?.outstanding, undefined);
    assert.equal(p.initiator.state.current?.nextRequestId, 3);
    assert.equal(p.responder.state.current?.expectedRequestId, 3);
  });

  it('answers a retransmitted request from the cached response without processing it again (RFC 7296 §2.1)', () => {
    const p = new Pair();
    p.establish();
    p.filter = (f) => (f.to === 'responder' ? 'duplicate' : 'deliver');
    p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
    p.run();
    const sends = p.responder.log.filter((a) => a.kind === 'send');
    // INIT, AUTH, then rekey + delete each answered twice with identical bytes.
    const last = sends.slice(-4).map((a) => hex((a as { bytes: Uint8Array }).bytes));
    assert.equal(last[0], last[1]);
    assert.equal(last[2], last[3]);
    assert.equal(p.responder.log.filter((a) => a.kind === 'install-child').length, 2);
    assertChildPairMatches(p);
  });

  it('retransmits a lost request with exponential backoff (RFC 7296 §2.4)', () => {
    const p = new Pair();
    p.establish();
    let dropped = 0;
    const sentAt: number[] = [];
    p.filter = (f) => {
      if (f.to === 'responder') sentAt.push(p.now);
      return f.to === 'responder' && dropped++ < 2 ? 'drop' : 'deliver';
    };
    const t0 = p.now;
    p.command('initiator', { kind: 'liveness' });
    p.run();
    assert.deepEqual(
      sentAt.map((t) => t - t0),
      [0, 1000, 3000],
    );
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.initiator.state.current?.outstanding, undefined);
  });

  it('declares the peer dead after the bounded number of retransmissions (RFC 7296 §2.4)', () => {
    const p = new Pair({ initiatorPolicy: { retransmit: { initialMs: 500, maxRetransmits: 3 } } });
    p.establish();
    p.filter = (f) => (f.to === 'responder' ? 'drop' : 'deliver');
    const mark = p.initiator.log.length;
    p.command('initiator', { kind: 'liveness' });
    p.run();
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'dead-peer'));
    assert.equal(p.initiator.children.size, 0);
    // The request and its three retransmissions.
    assert.equal(p.initiator.log.slice(mark).filter((a) => a.kind === 'send').length, 4);
  });

  it('never retransmits on a live TCP stream and resends outstanding requests on the new stream (RFC 9329 §2, §6)', () => {
    const p = new Pair({ transport: 'tcp' });
    p.establish();
    let reconnected = false;
    p.filter = (f) => (f.to === 'responder' && !reconnected ? 'drop' : 'deliver');
    const mark = p.initiator.log.length;
    p.command('initiator', { kind: 'liveness' });
    p.tick();
    p.tick();
    assert.equal(
      p.initiator.log.slice(mark).filter((a) => a.kind === 'send').length,
      1,
      'sent once, not again',
    );
    assert.ok(p.initiator.state.current?.outstanding, 'still outstanding');
    reconnected = true;
    p.initiator.path = { ...p.initiator.path, id: 'tcp:i2' };
    p.responder.path = { ...p.responder.path, id: 'tcp:r2' };
    p.command('initiator', { kind: 'connection-restored', path: p.initiator.path });
    p.flush();
    assert.equal(p.initiator.state.current?.outstanding, undefined);
    assert.equal(p.responder.state.path?.id, 'tcp:r2', 'the responder follows the new stream');
    assert.ok(p.responder.log.some((a) => a.kind === 'path-validated'));
  });

  it('deletes a child SA in both directions (RFC 7296 §1.4.1)', () => {
    const p = new Pair();
    p.establish();
    p.command('responder', { kind: 'delete-child', spi: [...p.responder.children.values()][0]!.inboundSpi });
    p.run();
    assert.equal(p.initiator.children.size, 0);
    assert.equal(p.responder.children.size, 0);
    assert.equal(p.initiator.state.status, 'established');
  });

  it('deletes the IKE SA with its children on both sides (RFC 7296 §1.4.1)', () => {
    const p = new Pair();
    p.establish();
    p.command('initiator', { kind: 'delete-ike' });
    p.run();
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'deleted'));
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'peer-deleted'));
    assert.equal(p.initiator.children.size + p.responder.children.size, 0);
    assert.equal(p.responder.endpoint.stats.sas, 0);
  });

  for (const pfs of [undefined, KeyExchangeId.CURVE25519]) {
    it(`rekeys a child SA ${pfs ? 'with' : 'without'} PFS and deletes the old one (RFC 7296 §1.3.3, §2.8)`, () => {
      const esp = [
        {
          encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
          esn: [false],
          ...(pfs ? { keyExchange: [pfs] } : {}),
        },
      ];
      const p = new Pair({ initiatorPolicy: { espProposals: esp }, responderPolicy: { espProposals: esp } });
      p.establish();
      const old = [...p.initiator.children.values()][0]!;
      p.command('initiator', { kind: 'rekey-child', spi: old.inboundSpi });
      p.run();
      assert.equal(p.initiator.children.size, 1);
      const fresh = [...p.initiator.children.values()][0]!;
      assert.notEqual(hex(fresh.inboundSpi), hex(old.inboundSpi));
      assert.notDeepEqual(fresh.keys, old.keys);
      assert.equal(hex(fresh.replaces!), hex(old.inboundSpi));
      assertChildPairMatches(p);
    });
  }

  it('refuses a child rekey that requires PFS when our policy has none, and logs it (RFC 7296 §3.3.6)', () => {
    const withPfs = [
      {
        encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
        esn: [false],
        keyExchange: [KeyExchangeId.CURVE25519],
      },
    ];
    const p = new Pair({ initiatorPolicy: { espProposals: withPfs } });
    p.establish();
    const old = [...p.initiator.children.values()][0]!;
    p.command('initiator', { kind: 'rekey-child', spi: old.inboundSpi });
    p.flush();
    assert.ok(p.responder.log.some((a) => a.kind === 'rejected' && a.reason === 'no_proposal_chosen'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'rejected' && a.by === 'peer'));
    assert.equal(p.initiator.children.size, 1, 'the old child stays');
  });

  it('rekeys the IKE SA to new SPIs and keys, deletes the old SA and keeps working (RFC 7296 §1.3.2, §2.18)', () => {
    const p = new Pair();
    p.establish();
    const before = p.initiator.state.current!;
    p.command('responder', { kind: 'rekey-ike' });
    p.run();
    const i = p.initiator.state.current!;
    const r = p.responder.state.current!;
    assert.notEqual(hex(i.spiI), hex(before.spiI));
    assert.equal(hex(i.spiI), hex(r.spiI));
    assert.equal(hex(i.spiR), hex(r.spiR));
    assert.equal(r.role, 'initiator');
    assert.deepEqual(i.keys, r.keys);
    assert.equal(p.initiator.state.previous, undefined);
    assert.equal(p.responder.state.previous, undefined);
    // With the old SA gone, the new one keeps what a new SA keeps (issue #14).
    assertSettled(i);
    assertSettled(r);
    assert.ok(p.initiator.log.some((a) => a.kind === 'rekeyed-ike'));
    assert.equal(p.initiator.children.size, 1);
    p.command('initiator', { kind: 'liveness' });
    p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
    p.run();
    assert.equal(p.initiator.state.current?.nextRequestId, 3);
    assertChildPairMatches(p);
    assert.deepEqual(p.initiator.sa!.spis, [hex(i.spiR)]);
  });

  it('retries an IKE SA rekey with the group named in INVALID_KE_PAYLOAD (RFC 7296 §1.3, §2.18)', () => {
    const p = new Pair();
    p.establish();
    assert.equal(p.initiator.state.current?.suite.keyExchange, KeyExchangeId.CURVE25519);
    const ecpOnly = [{ ...p.responder.ctx.policy.ikeProposals[0]!, keyExchange: [KeyExchangeId.ECP_256] }];
    p.responder.ctx = { ...p.responder.ctx, policy: { ...p.responder.ctx.policy, ikeProposals: ecpOnly } };
    p.command('initiator', { kind: 'rekey-ike' });
    p.run();
    const i = p.initiator.state.current!;
    assert.equal(i.suite.keyExchange, KeyExchangeId.ECP_256);
    assert.deepEqual(i.keys, p.responder.state.current!.keys);
    assert.equal(p.initiator.log.filter((a) => a.kind === 'rekeyed-ike').length, 1);
  });

  for (const lowest of ['initiator', 'responder'] as const) {
    it(`resolves a simultaneous IKE SA rekey: the SA with the lowest nonce (${lowest}'s) is deleted (RFC 7296 §2.8.1)`, () => {
      const p = new Pair();
      p.establish();
      const low = new Uint8Array(32).fill(0x01);
      const high = new Uint8Array(32).fill(0xf0);
      const mid = new Uint8Array(32).fill(0x80);
      // The initiator's request nonce, then its response nonce; likewise the responder.
      p.initiator.nonces.push(lowest === 'initiator' ? low : high, mid);
      p.responder.nonces.push(lowest === 'responder' ? low : high, mid);
      p.command('initiator', { kind: 'rekey-ike' });
      p.command('responder', { kind: 'rekey-ike' });
      p.run();
      const i = p.initiator.state;
      const r = p.responder.state;
      assert.equal(hex(i.current!.spiI), hex(r.current!.spiI));
      assert.equal(hex(i.current!.spiR), hex(r.current!.spiR));
      assert.deepEqual(i.current!.keys, r.current!.keys);
      // The surviving SA is the one the other side initiated.
      const winner = lowest === 'initiator' ? r : i;
      assert.equal(winner.current!.role, 'initiator');
      for (const s of [i, r]) {
        assert.equal(s.previous, undefined);
        assert.equal(s.collision, undefined);
        assert.equal(s.status, 'established');
        assertSettled(s.current!);
      }
      p.command('initiator', { kind: 'liveness' });
      p.run();
      assert.equal(p.initiator.state.current?.outstanding, undefined);
    });
  }

  for (const first of ['initiator', 'responder'] as const) {
    it(`simultaneous IKE SA rekeys where the ${first}'s rekey completes before the other's request arrives: the other's request is refused on the old SA, and the SA it answered lives on; no side loses the IKE SA (RFC 7296 §2.8.1, §2.25)`, () => {
      const p = new Pair();
      p.establish();
      p.run();
      const second = first === 'initiator' ? 'responder' : 'initiator';
      p.command(first, { kind: 'rekey-ike' });
      p.command(second, { kind: 'rekey-ike' });
      const take = (to: 'initiator' | 'responder') => p.take(to);
      const firstsRekey = take(second);
      const secondsRekey = take(first);
      assert.equal(p.wire.length, 0);
      // The second side answers the first's rekey while its own is outstanding (a collision).
      p.deliver(second, firstsRekey);
      // The first side gets that answer before the second's request: its rekey is done, and it
      // starts deleting the old SA.
      p.deliver(first, take(first));
      const deleteOld = take(second);
      // The second's rekey arrives on the old SA, being deleted: refused (TEMPORARY_FAILURE).
      p.deliver(first, secondsRekey);
      p.deliver(second, take(second));
      // Then the DELETE of the old SA.
      p.deliver(second, deleteOld);
      p.run();
      const i = p.initiator.state;
      const r = p.responder.state;
      for (const s of [i, r]) {
        assert.equal(s.status, 'established');
        assert.equal(s.previous, undefined);
        assert.equal(s.collision, undefined);
      }
      assert.equal(hex(i.current!.spiI), hex(r.current!.spiI));
      assert.equal(hex(i.current!.spiR), hex(r.current!.spiR));
      assert.deepEqual(i.current!.keys, r.current!.keys);
      assert.equal(
        p.side(first).state.current!.role,
        'initiator',
        "the first side's rekey is the one that lives",
      );
      assert.equal(p.initiator.children.size, 1);
      assertChildPairMatches(p);
      p.command(second, { kind: 'liveness' });
      p.run();
      assert.equal(p.side(second).state.current?.outstanding, undefined);
      assert.equal(p.side(second).state.status, 'established');
    });
  }

  for (const first of ['initiator', 'responder'] as const) {
    it(`simultaneous child SA rekeys where the ${first}'s rekey completes before the other's request arrives: the other's request is refused (the child is being deleted), and one child SA is left on both sides (RFC 7296 §2.8.1, §2.25)`, () => {
      const p = new Pair();
      p.establish();
      p.run();
      const second = first === 'initiator' ? 'responder' : 'initiator';
      const rekey = (side: 'initiator' | 'responder') =>
        p.command(side, { kind: 'rekey-child', spi: p.side(side).state.children[0]!.inboundSpi });
      rekey(first);
      rekey(second);
      const take = (to: 'initiator' | 'responder') => p.take(to);
      const firstsRekey = take(second);
      const secondsRekey = take(first);
      p.deliver(second, firstsRekey);
      // The first side's rekey completes: it deletes the old child (its DELETE goes out).
      p.deliver(first, take(first));
      const deleteOld = take(second);
      const refused = p.deliver(first, secondsRekey);
      assert.ok(
        refused.some((a) => a.kind === 'rejected' && a.reason === 'temporary_failure' && a.by === 'us'),
        'the rekey of a child being deleted is refused',
      );
      p.deliver(second, take(second));
      p.deliver(second, deleteOld);
      p.run();
      for (const side of [p.initiator, p.responder]) {
        assert.equal(side.state.status, 'established');
        assert.equal(side.state.children.length, 1, 'no redundant child SA');
      }
      assertChildPairMatches(p);
    });
  }

  for (const asker of ['initiator', 'responder'] as const) {
    it(`an IKE SA rekey while the ${asker}'s child SA rekey is outstanding is refused (TEMPORARY_FAILURE) until it is answered: the child it made is not orphaned at the peer (RFC 7296 §2.25, §2.8.1)`, () => {
      const p = new Pair();
      p.establish();
      p.run();
      const other = asker === 'initiator' ? 'responder' : 'initiator';
      // Both rekey the child; the asker's new child has the lowest nonce, so it is the redundant one
      // and the other side's rekey wins (§2.8.1).
      p.side(asker).nonces.push(new Uint8Array(32).fill(0x01), new Uint8Array(32).fill(0x41));
      p.side(other).nonces.push(new Uint8Array(32).fill(0xf0), new Uint8Array(32).fill(0x91));
      const rekey = (side: 'initiator' | 'responder') =>
        p.command(side, { kind: 'rekey-child', spi: p.side(side).state.children[0]!.inboundSpi });
      rekey(asker);
      rekey(other);
      const askersRekey = p.take(other);
      const othersRekey = p.take(asker);
      p.deliver(other, askersRekey);
      // The other side's answer to the asker's rekey stays in flight (delayed, or lost once).
      const heldAnswer = p.take(asker);
      p.deliver(asker, othersRekey);
      // The other side's rekey completes; it deletes the old child, and the asker takes that DELETE.
      p.flush();
      assert.equal(p.side(asker).state.current!.outstanding?.task.kind, 'rekey-child');
      // Now the other side rekeys the IKE SA. Answering it would let the other side delete this IKE
      // SA before the held answer arrives: the child made for the asker would be known to the
      // other side alone, for life.
      p.command(other, { kind: 'rekey-ike' });
      const before = hex(p.side(other).state.current!.spiI);
      const refused = p.deliver(asker, p.take(asker));
      assert.ok(
        refused.some((a) => a.kind === 'rejected' && a.reason === 'temporary_failure' && a.by === 'us'),
        'the IKE SA rekey is refused while our child rekey is outstanding',
      );
      p.flush();
      assert.equal(hex(p.side(other).state.current!.spiI), before, 'the IKE SA was not rekeyed');
      p.deliver(asker, heldAnswer);
      p.run();
      for (const side of [p.initiator, p.responder]) {
        assert.equal(side.state.status, 'established');
        assert.equal(side.state.children.length, 1, `${side.name}: one child SA, none orphaned`);
      }
      assertChildPairMatches(p);
      // Once the child rekey is done, the IKE SA rekey goes through.
      p.command(other, { kind: 'rekey-ike' });
      p.run();
      assert.notEqual(hex(p.side(other).state.current!.spiI), before);
      assert.equal(hex(p.initiator.state.current!.spiI), hex(p.responder.state.current!.spiI));
      for (const side of [p.initiator, p.responder]) assert.equal(side.state.children.length, 1);
      assertChildPairMatches(p);
    });
  }

  for (const asker of ['initiator', 'responder'] as const) {
    it(`a child SA rekey of the ${asker}'s queued behind another request is not started once the peer has rekeyed that child: no second replacement, one child SA on both sides (RFC 7296 §2.8)`, () => {
      const p = new Pair();
      p.establish();
      p.run();
      const other = asker === 'initiator' ? 'responder' : 'initiator';
      // Were the asker's rekey started, its new child would have the lowest nonce of the two and
      // the other side, seeing a collision the asker never saw, would leave it to the asker to
      // delete (§2.8.1): both sides would keep two new child SAs.
      p.side(asker).nonces.push(new Uint8Array(32).fill(0x80), new Uint8Array(32).fill(0x01));
      p.side(other).nonces.push(new Uint8Array(32).fill(0x90), new Uint8Array(32).fill(0x91));
      const spi = (side: 'initiator' | 'responder') => p.side(side).state.children[0]!.inboundSpi;
      p.command(asker, { kind: 'liveness' });
      // The rekey (a lifetime timer or an operator) waits behind the liveness check.
      p.command(asker, { kind: 'rekey-child', spi: spi(asker) });
      assert.equal(p.side(asker).state.queue.length, 1);
      p.command(other, { kind: 'rekey-child', spi: spi(other) });
      const liveness = p.take(other);
      // The asker answers the other's rekey first, then gets its liveness answer: the queue drains.
      p.deliver(asker, p.take(asker));
      const othersAnswer = p.take(other);
      p.deliver(other, liveness);
      const drained = p.deliver(asker, p.take(asker));
      assert.ok(!drained.some((a) => a.kind === 'send'), 'no rekey of the replaced child goes out');
      assert.equal(p.side(asker).state.queue.length, 0);
      // Had a second rekey gone out, it would reach the other side before that side's own rekey is
      // answered (its answer was lost once): a collision there.
      if (p.wire.some((f) => f.to === other)) p.deliver(other, p.take(other));
      p.deliver(other, othersAnswer);
      p.run();
      for (const side of [p.initiator, p.responder]) {
        assert.equal(side.state.status, 'established');
        assert.equal(side.state.children.length, 1, `${side.name}: one child SA`);
      }
      assertChildPairMatches(p);
    });
  }

  it('a child SA whose replacement (made answering the peer’s rekey of it) is gone again is rekeyed by us as usual (RFC 7296 §2.8)', () => {
    const p = new Pair();
    p.establish();
    p.run();
    const old = p.initiator.state.children[0]!.inboundSpi;
    p.command('responder', { kind: 'rekey-child', spi: p.responder.state.children[0]!.inboundSpi });
    p.deliver('initiator', p.take('initiator'));
    // Our answer stays in flight, so the peer never deletes the old child; the replacement we
    // made goes again (here by our own DELETE, which the peer answers).
    p.take('responder');
    const replacement = p.initiator.state.children.find((c) => hex(c.inboundSpi) !== hex(old))!;
    assert.ok(replacement, 'the answer made a replacement');
    p.command('initiator', { kind: 'delete-child', spi: replacement.inboundSpi });
    p.deliver('responder', p.take('responder'));
    p.deliver('initiator', p.take('initiator'));
    assert.deepEqual(
      p.initiator.state.children.map((c) => hex(c.inboundSpi)),
      [hex(old)],
    );
    const sent = p.command('initiator', { kind: 'rekey-child', spi: old });
    assert.ok(
      sent.some((a) => a.kind === 'send'),
      'the old child is rekeyed: nothing else replaces it now',
    );
  });

  for (const closer of ['initiator', 'responder'] as const) {
    it(`a rekey of the IKE SA the ${closer} is deleting is refused (TEMPORARY_FAILURE): the DELETE ends the SA on both sides, nothing moves to a new SA (RFC 7296 §2.25.2)`, () => {
      const p = new Pair();
      p.establish();
      p.run();
      const other = closer === 'initiator' ? 'responder' : 'initiator';
      p.command(closer, { kind: 'delete-ike' });
      p.command(other, { kind: 'rekey-ike' });
      const deleteIke = p.take(other);
      // The rekey request reaches the closer before its DELETE reaches the other side.
      const refused = p.deliver(closer, p.take(closer));
      assert.ok(
        refused.some((a) => a.kind === 'rejected' && a.reason === 'temporary_failure' && a.by === 'us'),
        'the rekey of an IKE SA being deleted is refused',
      );
      assert.ok(!refused.some((a) => a.kind === 'rekeyed-ike'));
      p.deliver(other, deleteIke);
      p.run();
      for (const side of [p.initiator, p.responder]) {
        assert.equal(side.state.status, 'deleted', `${side.name}: the SA is gone`);
        assert.equal(side.children.size, 0);
      }
      assert.ok(p.side(closer).log.some((a) => a.kind === 'deleted' && a.reason === 'deleted'));
    });
  }

  for (const lowest of ['initiator', 'responder'] as const) {
    it(`resolves a simultaneous child SA rekey: the new SA with the lowest nonce (${lowest}'s) is deleted (RFC 7296 §2.8.1)`, () => {
      const p = new Pair();
      p.establish();
      const low = new Uint8Array(32).fill(0x01);
      const high = new Uint8Array(32).fill(0xf0);
      const mid = new Uint8Array(32).fill(0x80);
      p.initiator.nonces.push(lowest === 'initiator' ? low : high, mid);
      p.responder.nonces.push(lowest === 'responder' ? low : high, mid);
      p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
      p.command('responder', { kind: 'rekey-child', spi: [...p.responder.children.values()][0]!.inboundSpi });
      p.run();
      assert.equal(p.initiator.children.size, 1);
      assert.equal(p.responder.children.size, 1);
      assertChildPairMatches(p);
      // Both rekeys completed (first child + two new ones on each side) before one was deleted.
      assert.equal(p.initiator.log.filter((a) => a.kind === 'install-child').length, 3);
      assert.equal(p.responder.log.filter((a) => a.kind === 'install-child').length, 3);
      const survivor = [...p.initiator.children.values()][0]!;
      // The survivor was created by the side whose nonce was not the lowest.
      assert.equal(survivor.weInitiated, lowest === 'responder');
      assert.deepEqual(p.initiator.state.childCollisions ?? [], []);
      assert.deepEqual(p.responder.state.childCollisions ?? [], []);
    });
  }

  it('drops a message with a corrupted ICV without answering and without changing the SA (RFC 7296 §2.21.1)', () => {
    const p = new Pair();
    p.establish();
    p.command('initiator', { kind: 'liveness' });
    const f = p.wire.shift()!;
    const bad = f.bytes.slice();
    bad[bad.length - 1]! ^= 1;
    const before = p.responder.state;
    const actions = p.deliver('responder', bad);
    assert.deepEqual(kinds(actions), ['dropped']);
    assert.equal(p.responder.state, before);
    const h = decodeMessage(f.bytes).header;
    assert.equal(h.exchangeType, ExchangeType.INFORMATIONAL);
    assert.equal(h.flags & HeaderFlag.RESPONSE, 0);
  });

  it('announces fragmentation and certificates only as configured in IKE_SA_INIT (RFC 7383 §2.3)', () => {
    const p = new Pair({ initiatorPolicy: { fragmentation: false } });
    p.initiate();
    const init = decodeMessage(p.wire[0]!.bytes);
    assert.ok(
      !init.payloads.some(
        (x) =>
          x.type === PayloadType.NOTIFY &&
          'notifyType' in x &&
          x.notifyType === NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED,
      ),
    );
    void INITIATOR_ADDRESS;
  });
});
