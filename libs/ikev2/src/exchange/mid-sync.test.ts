import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeMessage, ExchangeType } from '../codec/index.js';
import { LocalUsageError } from '../errors.js';
import { Pair, type SideName, stateFromJson, stateToJson } from '../testing/pair.js';
import type { IkeSaCore, IkeSaState } from '../sa/types.js';

function syncPair(): Pair {
  const p = new Pair({ initiatorPolicy: { messageIdSync: true }, responderPolicy: { messageIdSync: true } });
  p.establish();
  return p;
}

/** A cluster takeover: the state is persisted, its counters pushed ahead, and resumed elsewhere. */
function takeOver(p: Pair, side: SideName, sendAhead: number, recvAhead: number): void {
  const s = p.side(side);
  const resumed = stateFromJson(stateToJson(s.state)) as IkeSaState & { current: IkeSaCore };
  s.state = {
    ...resumed,
    current: {
      ...resumed.current,
      nextRequestId: resumed.current.nextRequestId + sendAhead,
      expectedRequestId: resumed.current.expectedRequestId + recvAhead,
    },
  };
}

const other = (s: SideName): SideName => (s === 'initiator' ? 'responder' : 'initiator');

describe('RFC 6311 Message ID synchronization', () => {
  for (const cluster of ['initiator', 'responder'] as const) {
    it(`${cluster} as the cluster side syncs pushed-ahead counters with Message ID 0, then INFORMATIONAL works both ways (RFC 6311 §4, §5)`, () => {
      const p = syncPair();
      const peer = other(cluster);
      takeOver(p, cluster, 10, 7);
      const c0 = p.side(cluster).state.current!;
      const mark = p.side(cluster).log.length;
      p.command(cluster, { kind: 'mid-sync' });
      const req = p.wire[0]!;
      assert.equal(decodeMessage(req.bytes).header.messageId, 0);
      assert.equal(decodeMessage(req.bytes).header.exchangeType, ExchangeType.INFORMATIONAL);
      p.run();
      const c = p.side(cluster).state.current!;
      const q = p.side(peer).state.current!;
      assert.equal(c.outstanding, undefined);
      assert.equal(c.nextRequestId, c0.nextRequestId, 'the cluster keeps its higher send counter');
      assert.equal(q.expectedRequestId, c0.nextRequestId, 'the peer accepts the higher value');
      assert.equal(q.nextRequestId, c0.expectedRequestId);
      assert.equal(c.expectedRequestId, q.nextRequestId);
      assert.ok(
        !p
          .side(cluster)
          .log.slice(mark)
          .some((a) => a.kind === 'dropped'),
      );
      for (const side of [cluster, peer]) {
        p.command(side, { kind: 'liveness' });
        p.run();
      }
      for (const side of [cluster, peer]) {
        assert.equal(p.side(side).state.status, 'established');
        assert.equal(p.side(side).state.current?.outstanding, undefined);
      }
      assert.equal(p.side(cluster).state.current!.nextRequestId, c0.nextRequestId + 1);
    });
  }

  it('a responder that never sent a request syncs and then requests with Message ID 1, never a second 0 (RFC 6311 §4.2; strongSwan interop)', () => {
    const p = syncPair();
    takeOver(p, 'responder', 0, 0);
    assert.equal(p.responder.state.current!.nextRequestId, 0, 'nothing sent yet in this direction');
    p.command('responder', { kind: 'mid-sync' });
    const sync = decodeMessage(p.wire[0]!.bytes);
    assert.equal(sync.header.messageId, 0);
    p.run();
    assert.equal(p.initiator.state.current!.expectedRequestId, 1, 'the peer was told to expect 1 next');
    const mark = p.wire.length;
    p.command('responder', { kind: 'liveness' });
    assert.equal(decodeMessage(p.wire[mark]!.bytes).header.messageId, 1);
    p.run();
    assert.equal(p.responder.state.current!.outstanding, undefined, 'answered');
    assert.equal(p.initiator.state.status, 'established');
  });

  it('without the sync a pushed-ahead request is out of the peer window (RFC 6311 §1)', () => {
    const p = syncPair();
    takeOver(p, 'initiator', 10, 0);
    p.command('initiator', { kind: 'liveness' });
    p.run();
    assert.ok(p.responder.log.some((a) => a.kind === 'dropped' && a.reason === 'message-id-out-of-window'));
  });

  it('keeps the peer counters when the sync carries lower values (RFC 6311 §5)', () => {
    const p = syncPair();
    takeOver(p, 'responder', 3, 3);
    const r0 = p.responder.state.current!;
    p.command('initiator', { kind: 'mid-sync' });
    p.run();
    assert.equal(p.responder.state.current!.nextRequestId, r0.nextRequestId);
    assert.equal(p.responder.state.current!.expectedRequestId, r0.expectedRequestId);
    assert.equal(p.initiator.state.current!.expectedRequestId, r0.nextRequestId);
    assert.equal(p.initiator.state.current!.nextRequestId, r0.expectedRequestId);
    p.command('initiator', { kind: 'liveness' });
    p.command('responder', { kind: 'liveness' });
    p.run();
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.initiator.state.current?.outstanding, undefined);
    assert.equal(p.responder.state.current?.outstanding, undefined);
  });

  it('refuses the mid-sync command unless the peer announced support (RFC 6311 §3)', () => {
    const p = new Pair({ initiatorPolicy: { messageIdSync: true } });
    p.establish();
    assert.throws(() => p.command('initiator', { kind: 'mid-sync' }), LocalUsageError);
  });

  it('drops a Message ID 0 sync request when sync was not negotiated (RFC 6311 §3)', () => {
    const p = new Pair({ initiatorPolicy: { messageIdSync: true } });
    p.establish();
    p.initiator.state = { ...p.initiator.state, peerMessageIdSync: true };
    p.command('initiator', { kind: 'mid-sync' });
    p.deliver('responder', p.wire.shift()!.bytes);
    assert.ok(p.responder.log.some((a) => a.kind === 'dropped' && a.reason === 'unexpected-message-id-sync'));
  });

  it('processes a sync request once: its retransmission from where it came gets the same answer, a replayed copy from elsewhere nothing (issue #9 defect 5, RFC 6311 §4)', () => {
    const p = syncPair();
    takeOver(p, 'initiator', 4, 0);
    p.command('initiator', { kind: 'mid-sync' });
    const request = p.wire[0]!.bytes;
    p.run();
    const counters = p.responder.state.current!;
    const mark = p.responder.log.length;
    p.deliver('responder', request);
    const again = p.responder.log.slice(mark).filter((a) => a.kind === 'send');
    assert.equal(again.length, 1, 'a retransmission is answered');
    const first = p.responder.log
      .slice(0, mark)
      .filter((a) => a.kind === 'send')
      .at(-1)!;
    assert.deepEqual(
      again[0]!.kind === 'send' && again[0]!.bytes,
      first.kind === 'send' && first.bytes,
      'with the same octets',
    );
    const elsewhere = {
      ...p.responder.path,
      id: 'udp:elsewhere',
      remote: { address: Uint8Array.of(203, 0, 113, 7), port: 500 },
    };
    const mark2 = p.responder.log.length;
    p.deliver('responder', request, elsewhere);
    assert.deepEqual(
      p.responder.log.slice(mark2).map((a) => a.kind),
      ['dropped'],
    );
    const last = p.responder.log.at(-1)!;
    assert.equal(last.kind === 'dropped' && last.reason, 'replayed-message-id-sync');
    assert.equal(p.responder.state.current!.expectedRequestId, counters.expectedRequestId);
    assert.equal(p.responder.state.path?.id, p.responder.path.id, 'a replay moves nothing');
  });

  it('a request the peer had outstanding when the SA moved (lost with the old member, over TCP) goes out again after the sync and is answered (RFC 6311 §2, RFC 9329 §2)', () => {
    const p = new Pair({
      transport: 'tcp',
      initiatorPolicy: { messageIdSync: true },
      responderPolicy: { messageIdSync: true },
    });
    p.establish();
    p.command('initiator', { kind: 'liveness' });
    p.wire.length = 0; // lost in the relay with the member that died
    assert.ok(p.initiator.state.current!.outstanding, 'the peer waits for an answer');
    p.flush();
    assert.equal(p.wire.length, 0, 'over TCP nothing resends it on the live stream by itself');
    p.command('responder', { kind: 'mid-sync' });
    p.flush();
    assert.equal(p.initiator.state.current!.outstanding, undefined, 'answered after the sync');
    assert.equal(p.initiator.state.status, 'established');
    assert.equal(p.responder.state.current!.outstanding, undefined);
  });

  describe('IPSEC_REPLAY_COUNTER_SYNC (RFC 6311 §4.3)', () => {
    const both = { messageIdSync: true, replayCounterSync: true };
    const counters = (p: Pair, side: SideName) =>
      p.side(side).log.flatMap((a) => (a.kind === 'replay-counter-sync' ? [a.counter] : []));

    for (const cluster of ['initiator', 'responder'] as const) {
      it(`both announce support in IKE_AUTH; the ${cluster} as the cluster side sends the counter in its sync request and the peer reports it once`, () => {
        const p = new Pair({ initiatorPolicy: both, responderPolicy: both });
        p.establish();
        const peer = other(cluster);
        assert.equal(p.side(cluster).state.peerReplayCounterSync, true);
        assert.equal(p.side(peer).state.peerReplayCounterSync, true);
        takeOver(p, cluster, 2, 0);
        p.command(cluster, { kind: 'mid-sync', replayCounter: { value: 1_049_600n, esn: false } });
        const request = p.wire[0]!.bytes;
        p.run();
        assert.deepEqual(counters(p, peer), [1_049_600n]);
        assert.deepEqual(counters(p, cluster), [], 'the response carries no counter');
        assert.equal(p.side(cluster).state.current!.outstanding, undefined, 'the sync completed');
        // A retransmission of the same request is answered from the cache, not applied again.
        p.deliver(peer, request);
        assert.deepEqual(counters(p, peer), [1_049_600n]);
      });
    }

    it('carries a 64-bit counter in the 8-octet form when the Child SAs use ESN', () => {
      const p = new Pair({ initiatorPolicy: both, responderPolicy: both });
      p.establish();
      takeOver(p, 'responder', 0, 0);
      p.command('responder', { kind: 'mid-sync', replayCounter: { value: (1n << 40n) + 5n, esn: true } });
      p.run();
      assert.deepEqual(counters(p, 'initiator'), [(1n << 40n) + 5n]);
    });

    it('is not sent to a peer that did not announce support, and a peer without the policy ignores one', () => {
      const p = new Pair({ initiatorPolicy: both, responderPolicy: { messageIdSync: true } });
      p.establish();
      assert.equal(p.initiator.state.peerReplayCounterSync, undefined, 'the responder did not announce it');
      assert.equal(p.responder.state.peerReplayCounterSync, undefined, 'nor takes it up');
      p.command('initiator', { kind: 'mid-sync', replayCounter: { value: 99n, esn: false } });
      p.run();
      assert.deepEqual(counters(p, 'responder'), []);
      // Forced on the sending side (a peer announcing nothing still gets a counter): ignored.
      p.initiator.state = { ...p.initiator.state, peerReplayCounterSync: true };
      p.command('initiator', { kind: 'mid-sync', replayCounter: { value: 99n, esn: false } });
      p.run();
      assert.deepEqual(counters(p, 'responder'), []);
      assert.equal(p.initiator.state.current!.outstanding, undefined, 'the Message ID sync still completes');
    });
  });
});
