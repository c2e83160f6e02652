import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  decodeMessage,
  ExchangeType,
  NotifyStatus,
  type NotifyPayload,
  PayloadType,
} from '../codec/index.js';
import { type Flight, Pair, type PairOptions } from '../testing/pair.js';

const SMALL = 200;

function fragmentPair(extra: PairOptions = {}): Pair {
  return new Pair({
    ...extra,
    initiatorPolicy: { fragmentSize: SMALL, ...extra.initiatorPolicy },
    responderPolicy: { fragmentSize: SMALL, ...extra.responderPolicy },
  });
}

function decoded(f: { bytes: Uint8Array }) {
  return decodeMessage(f.bytes);
}

function isSkf(bytes: Uint8Array): boolean {
  const m = decodeMessage(bytes);
  return m.payloads[m.payloads.length - 1]?.type === PayloadType.SKF;
}

function sends(log: Pair['initiator']['log']): Uint8Array[] {
  return log.flatMap((a) => (a.kind === 'send' ? [a.bytes] : []));
}

function announcesFragmentation(bytes: Uint8Array): boolean {
  return decodeMessage(bytes).payloads.some(
    (p) =>
      p.type === PayloadType.NOTIFY &&
      (p as NotifyPayload).notifyType === NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED,
  );
}

function assertEstablishedWithMatchingChildren(p: Pair): void {
  assert.equal(p.initiator.state.status, 'established');
  assert.equal(p.responder.state.status, 'established');
  assert.equal(p.initiator.children.size, 1);
  assert.equal(p.responder.children.size, 1);
  const i = [...p.initiator.children.values()][0]!;
  const r = [...p.responder.children.values()][0]!;
  assert.deepEqual(i.keys, r.keys);
}

describe('RFC 7383 IKE fragmentation', () => {
  it('announces IKEV2_FRAGMENTATION_SUPPORTED in IKE_SA_INIT from both roles (RFC 7383 §2.3)', () => {
    const p = new Pair();
    p.establish();
    const [initReq] = sends(p.initiator.log);
    const [initResp] = sends(p.responder.log);
    assert.ok(announcesFragmentation(initReq!));
    assert.ok(announcesFragmentation(initResp!));
    assert.equal(p.initiator.state.current?.fragmentation, true);
    assert.equal(p.responder.state.current?.fragmentation, true);
  });

  it('sends IKE_AUTH as SKF fragments no longer than fragmentSize and reassembles them (RFC 7383 §2.5, §2.6)', () => {
    const p = fragmentPair();
    p.establish();
    assertEstablishedWithMatchingChildren(p);
    const authReq = sends(p.initiator.log).slice(1);
    const authResp = sends(p.responder.log).slice(1);
    assert.ok(authReq.length > 1, 'request split');
    assert.ok(authResp.length > 1, 'response split');
    for (const b of [...authReq, ...authResp]) {
      assert.ok(b.length <= SMALL, `${b.length} octets`);
      assert.ok(isSkf(b));
      assert.equal(decodeMessage(b).header.exchangeType, ExchangeType.IKE_AUTH);
    }
    assert.equal(p.responder.state.current?.reassembly, undefined, 'nothing left buffered');
  });

  it('fragments later exchanges too, also on a rekeyed IKE SA (RFC 7383 §2.5)', () => {
    const p = fragmentPair({
      initiatorPolicy: { fragmentSize: 150 },
      responderPolicy: { fragmentSize: 150 },
    });
    p.establish();
    p.command('initiator', { kind: 'rekey-ike' });
    p.run();
    const mark = p.responder.log.length;
    p.command('initiator', { kind: 'rekey-child', spi: [...p.initiator.children.values()][0]!.inboundSpi });
    p.run();
    assertEstablishedWithMatchingChildren(p);
    assert.equal(p.initiator.state.current?.fragmentation, true);
    assert.ok(sends(p.responder.log.slice(mark)).some(isSkf));
  });

  it('does not fragment when the peer did not announce support (RFC 7383 §2.3)', () => {
    const p = fragmentPair({ responderPolicy: { fragmentation: false } });
    p.establish();
    assertEstablishedWithMatchingChildren(p);
    assert.ok(!announcesFragmentation(sends(p.responder.log)[0]!));
    for (const b of [...sends(p.initiator.log), ...sends(p.responder.log)]) assert.ok(!isSkf(b));
  });

  it('never fragments over TCP (RFC 9329 §2, RFC 7383 §2.5)', () => {
    const p = fragmentPair({ transport: 'tcp' });
    p.establish();
    assertEstablishedWithMatchingChildren(p);
    for (const b of [...sends(p.initiator.log), ...sends(p.responder.log)]) assert.ok(!isSkf(b));
  });

  it('reassembles fragments that arrive in reverse order (RFC 7383 §2.6)', () => {
    const p = fragmentPair({ roundTrip: true });
    p.initiate();
    p.deliver('responder', p.wire.shift()!.bytes);
    p.deliver('initiator', p.wire.shift()!.bytes);
    assert.ok(p.wire.length > 1);
    p.wire.reverse();
    p.run();
    assertEstablishedWithMatchingChildren(p);
    // One IKE_SA_INIT plus the fragments, nothing retransmitted.
    const n = sends(p.initiator.log).length;
    assert.equal(n, 1 + p.initiator.log.filter((a) => a.kind === 'send' && isSkf(a.bytes)).length);
  });

  it('recovers a lost request fragment by retransmitting all fragments, with state persisted as JSON (RFC 7383 §2.6.1)', () => {
    const p = fragmentPair({ roundTrip: true });
    let lost = false;
    p.filter = (f: Flight) => {
      if (!lost && f.to === 'responder' && isSkf(f.bytes) && decoded(f).header.messageId === 1) {
        const skf = decoded(f).payloads.at(-1) as { fragmentNumber: number };
        if (skf.fragmentNumber === 2) {
          lost = true;
          return 'drop';
        }
      }
      return 'deliver';
    };
    p.establish();
    assert.ok(lost);
    assertEstablishedWithMatchingChildren(p);
  });

  it('answers a retransmitted fragmented request once, on its fragment 1, when a response fragment was lost (RFC 7383 §2.6.1)', () => {
    const p = fragmentPair();
    let lost = false;
    p.filter = (f: Flight) => {
      if (!lost && f.to === 'initiator' && isSkf(f.bytes)) {
        lost = true;
        return 'drop';
      }
      return 'deliver';
    };
    p.establish();
    assert.ok(lost);
    assertEstablishedWithMatchingChildren(p);
    const respFragments = sends(p.responder.log).filter(isSkf).length;
    const firstAnswer = sends(p.responder.log).slice(1).length / 2;
    assert.equal(respFragments, firstAnswer * 2, 'the response sent exactly twice');
    assert.ok(p.responder.log.some((a) => a.kind === 'dropped' && a.reason === 'retransmitted-fragment'));
  });

  it('drops a fragment that fails integrity and completes after retransmission (RFC 7383 §2.6)', () => {
    const p = fragmentPair();
    p.initiate();
    p.deliver('responder', p.wire.shift()!.bytes);
    p.deliver('initiator', p.wire.shift()!.bytes);
    const first = p.wire[0]!;
    const tampered = first.bytes.slice();
    tampered[tampered.length - 1]! ^= 1;
    p.wire[0] = { ...first, bytes: tampered };
    p.run();
    assert.ok(p.responder.log.some((a) => a.kind === 'dropped' && a.reason === 'fragment-integrity'));
    assertEstablishedWithMatchingChildren(p);
  });
});
