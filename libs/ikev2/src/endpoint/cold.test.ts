import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HeaderFlag } from '../codec/index.js';
import type { IkeSaContext, IkeSaState } from '../sa/types.js';
import { Pair, stateToJson } from '../testing/pair.js';
import { coldCandidate, freezeState, peekState, thawState } from './cold.js';
import type { IkeEndpoint } from './endpoint.js';

/** Both sides' states as plain data, comparable across pairs and layouts. */
const plain = (p: Pair) => [stateToJson(p.initiator.state), stateToJson(p.responder.state)];
/** A timer call with nothing due: it makes what is beyond maxHotSas cold (the SA a step just
 * used stays hot until then, for the service's reads of that step's output). */
const cool = (ep: IkeEndpoint<undefined>) => ep.timeout(Number.NEGATIVE_INFINITY);
const coolBoth = (p: Pair) => [p.initiator, p.responder].forEach((s) => cool(s.endpoint));

describe('cold SAs: idle SAs held encoded (issue #14, memory per held SA)', () => {
  it('an idle established SA beyond maxHotSas is held encoded, and the state rebuilt for its next event is the one a hot SA holds (RFC 7296 §2.4 liveness, §2.8 rekeys)', () => {
    const cold = new Pair({ cold: true, initiatorPolicy: { requestVirtualIp: true } });
    const hot = new Pair({ initiatorPolicy: { requestVirtualIp: true } });
    for (const p of [cold, hot]) p.establish();
    coolBoth(cold);
    assert.equal(cold.responder.endpoint.stats.cold, 1);
    assert.equal(cold.initiator.endpoint.stats.cold, 1);
    assert.equal(hot.responder.endpoint.stats.cold, 0);
    // Status and last inbound time are read without a rebuild.
    const e = cold.responder.sa!;
    assert.equal(e.status, 'established');
    assert.equal(e.lastInboundAt, hot.responder.sa!.lastInboundAt);
    assert.equal(cold.responder.endpoint.stats.thaws, 0);
    // Reading the state rebuilds it (and counts it); the same values as the hot pair's.
    assert.deepEqual(plain(cold), plain(hot));
    assert.equal(cold.responder.endpoint.stats.thaws, 1);
    // The same exchanges on both pairs end in the same states (seeded randomness), the cold pair
    // cold between them.
    for (const p of [cold, hot]) {
      p.command('initiator', { kind: 'liveness' });
      p.flush();
      coolBoth(p);
      p.command('responder', { kind: 'rekey-child', spi: p.responder.state.children[0]!.inboundSpi });
      p.flush();
      coolBoth(p);
      p.command('initiator', { kind: 'rekey-ike' });
      p.flush();
      coolBoth(p);
    }
    assert.ok(cold.responder.endpoint.stats.thaws >= 3, 'rebuilt for the exchanges');
    assert.deepEqual(plain(cold), plain(hot));
    assert.equal(cold.responder.state.status, 'established');
    assert.equal(cold.responder.state.children.length, 1);
  });

  it('an SA with an exchange in flight, rekey leftovers, queued work or a stream it waits for stays an object (coldCandidate)', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const s = p.responder.state;
    assert.equal(coldCandidate(s), true);
    const busy: [string, IkeSaState][] = [
      ['outstanding', { ...s, current: { ...s.current!, outstanding: {} as never } }],
      ['previous', { ...s, previous: s.current }],
      ['collision', { ...s, collision: s.current }],
      ['childCollisions', { ...s, childCollisions: [{} as never] }],
      ['queue', { ...s, queue: [{} as never] }],
      ['disconnectedAt', { ...s, disconnectedAt: 1 }],
      ['reassembly', { ...s, current: { ...s.current!, reassembly: [{} as never] } }],
      ['not established', { ...s, status: 'rekeying' as never }],
    ];
    for (const [why, b] of busy) assert.equal(coldCandidate(b), false, why);
    // In the endpoint: the initiator's liveness check is outstanding, so it stays hot.
    p.command('initiator', { kind: 'liveness' });
    cool(p.initiator.endpoint);
    assert.equal(p.initiator.endpoint.stats.cold, 0, 'its request is outstanding');
    p.flush();
    coolBoth(p);
    assert.equal(p.initiator.endpoint.stats.cold, 1);
    assert.equal(p.responder.endpoint.stats.cold, 1);
  });

  it('a forged request for a cold SA changes nothing, and the SA is cold again after it; a response is dropped without a rebuild (RFC 7296 §2.21.1)', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const ep = p.responder.endpoint;
    const before = stateToJson(p.responder.sa!.peekState());
    cool(ep);
    assert.equal(ep.stats.cold, 1);
    p.command('initiator', { kind: 'liveness' });
    const f = p.wire.shift()!;
    const bad = f.bytes.slice();
    bad[bad.length - 1]! ^= 1;
    assert.deepEqual(
      p.deliver('responder', bad).map((a) => a.kind),
      ['dropped'],
    );
    cool(ep);
    assert.equal(ep.stats.cold, 1, 'cold again');
    assert.equal(ep.stats.thaws, 1, 'rebuilt for it, and counted');
    // The same forgery flagged as a response: a cold SA has no request outstanding.
    const response = bad.slice();
    response[19] = response[19]! | HeaderFlag.RESPONSE;
    assert.deepEqual(p.deliver('responder', response), [{ kind: 'dropped', reason: 'unexpected-response' }]);
    assert.equal(ep.stats.thaws, 1, 'not rebuilt');
    assert.equal(stateToJson(p.responder.state), before);
  });

  it('the cold bytes are zeroed when the SA is rebuilt (they hold its keys), and the rebuilt state shares no buffer with them', () => {
    const p = new Pair();
    p.establish();
    const s = p.responder.state;
    assert.equal(coldCandidate(s), true);
    const blob = freezeState(s);
    const peeked = peekState(blob);
    assert.equal(stateToJson(peeked), stateToJson(s), 'peeking leaves the bytes as they are');
    assert.ok(blob.some((b) => b !== 0));
    const rebuilt = thawState(blob, p.responder.ctx.policy);
    assert.ok(
      blob.every((b) => b === 0),
      'wiped',
    );
    assert.equal(stateToJson(rebuilt), stateToJson(s), 'intact after the wipe: nothing is a view of it');
    assert.equal(stateToJson(peeked), stateToJson(s), 'a peeked state is a copy too');
    assert.equal(rebuilt.current!.keys.skD.buffer, rebuilt.current!.spiI.buffer, 'the live layout');
  });

  it('a cold SA whose state does not rebuild is given up as deleted, with a rejection naming why; the endpoint holds nothing of it', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const ep = p.responder.endpoint;
    const e = p.responder.sa!;
    cool(ep);
    assert.equal(ep.stats.cold, 1);
    // A context whose policy cannot be read makes the rebuild (compactState) throw.
    const ctx = e.ctx;
    e.ctx = new Proxy(ctx, {
      get: (t, k) => {
        if (k === 'policy') throw new Error('policy gone');
        return Reflect.get(t, k) as unknown;
      },
    }) as IkeSaContext;
    p.command('initiator', { kind: 'liveness' });
    const logged = p.deliver('responder', p.wire.shift()!.bytes);
    assert.deepEqual(
      logged.map((a) => a.kind),
      ['rejected', 'deleted'],
    );
    assert.deepEqual([ep.stats.sas, ep.stats.cold, ep.stats.hot, ep.stats.established], [0, 0, 0, 0]);
    assert.equal(ep.nextTimeout(), undefined);
    assert.equal(e.state.status, 'deleted', 'reads give a deleted state, not a throw');
  });

  it('an SA forgotten while cold (its shard moved) leaves the counts, and whoever holds its entry still reads its last state', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const ep = p.responder.endpoint;
    const e = p.responder.sa!;
    const before = stateToJson(e.peekState());
    cool(ep);
    assert.equal(ep.stats.cold, 1);
    ep.forget(e);
    assert.deepEqual([ep.stats.sas, ep.stats.cold, ep.stats.hot], [0, 0, 0]);
    assert.equal(stateToJson(e.state), before);
    assert.equal(e.status, 'deleted', 'the entry says it is gone');
    assert.deepEqual(
      [ep.stats.sas, ep.stats.cold, ep.stats.hot, ep.stats.thaws],
      [0, 0, 0, 0],
      'reading it touched no count',
    );
  });

  it('a state written over a cold one (a service replacing it) makes it hot and counted so', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const ep = p.responder.endpoint;
    const s = p.responder.sa!.peekState();
    cool(ep);
    assert.equal(ep.stats.cold, 1);
    p.responder.sa!.state = s;
    assert.deepEqual([ep.stats.cold, ep.stats.hot], [0, 1]);
  });

  it('an SA deleted while cold is gone from the counts and from the order of use (RFC 7296 §1.4.1)', () => {
    const p = new Pair({ cold: true });
    p.establish();
    coolBoth(p);
    p.command('initiator', { kind: 'delete-ike' });
    p.flush();
    for (const side of [p.initiator, p.responder]) {
      const st = side.endpoint.stats;
      assert.deepEqual([st.sas, st.cold, st.hot], [0, 0, 0]);
    }
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted'));
  });
});
