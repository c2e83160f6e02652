import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Pair, stateToJson } from '../testing/pair.js';
import { coldCandidate, freezeState, peekState, thawState } from './cold.js';

/** Both sides' states as plain data, comparable across pairs and layouts. */
const plain = (p: Pair) => [stateToJson(p.initiator.state), stateToJson(p.responder.state)];

describe('cold SAs: idle SAs held serialised (issue #14, memory per held SA)', () => {
  it('an idle established SA beyond maxHotSas is held serialised, and the state rebuilt for its next event is the one a hot SA holds (RFC 7296 §2.4 liveness, §2.8 rekeys)', () => {
    const cold = new Pair({ cold: true, initiatorPolicy: { requestVirtualIp: true } });
    const hot = new Pair({ initiatorPolicy: { requestVirtualIp: true } });
    for (const p of [cold, hot]) p.establish();
    assert.equal(cold.responder.endpoint.stats.cold, 1);
    assert.equal(hot.responder.endpoint.stats.cold, 0);
    // Reading the state rebuilds it (and counts it); the same values as the hot pair's.
    assert.deepEqual(plain(cold), plain(hot));
    assert.equal(cold.responder.endpoint.stats.thaws, 1);
    // The same exchanges on both pairs end in the same states (seeded randomness).
    for (const p of [cold, hot]) {
      p.command('initiator', { kind: 'liveness' });
      p.flush();
      p.command('responder', { kind: 'rekey-child', spi: p.responder.state.children[0]!.inboundSpi });
      p.flush();
      p.command('initiator', { kind: 'rekey-ike' });
      p.flush();
    }
    assert.deepEqual(plain(cold), plain(hot));
    assert.equal(cold.responder.state.status, 'established');
    assert.equal(cold.responder.state.children.length, 1);
    assert.equal(cold.responder.endpoint.stats.cold, 0, 'read just now: hot until the next step');
  });

  it('an SA with an exchange in flight stays an object; it goes cold once the exchange is done', () => {
    const p = new Pair({ cold: true });
    p.establish();
    p.command('initiator', { kind: 'liveness' });
    assert.equal(p.initiator.endpoint.stats.cold, 0, 'its request is outstanding');
    assert.equal(coldCandidate(p.initiator.state), false);
    p.flush();
    assert.equal(p.initiator.endpoint.stats.cold, 1);
    assert.equal(p.responder.endpoint.stats.cold, 1);
  });

  it('a forged message for a cold SA changes nothing, and the SA is cold again after it: nothing unauthenticated leaves state behind (RFC 7296 §2.21.1)', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const before = stateToJson(p.responder.state);
    // The read made it hot; a timer call makes what is beyond maxHotSas cold again.
    p.responder.endpoint.timeout(0);
    assert.equal(p.responder.endpoint.stats.cold, 1);
    const thaws = p.responder.endpoint.stats.thaws;
    p.command('initiator', { kind: 'liveness' });
    const f = p.wire.shift()!;
    const bad = f.bytes.slice();
    bad[bad.length - 1]! ^= 1;
    const actions = p.deliver('responder', bad);
    assert.deepEqual(
      actions.map((a) => a.kind),
      ['dropped'],
    );
    assert.equal(p.responder.endpoint.stats.cold, 1, 'cold again');
    assert.equal(p.responder.endpoint.stats.thaws, thaws + 1, 'rebuilt for it, and counted');
    assert.equal(stateToJson(p.responder.state), before);
  });

  it('the cold bytes are zeroed when the SA is rebuilt (they hold its keys), and the rebuilt state shares no buffer with them', () => {
    const p = new Pair();
    p.establish();
    const s = p.responder.state;
    assert.equal(coldCandidate(s), true);
    const blob = freezeState(s);
    assert.equal(stateToJson(peekState(blob)), stateToJson(s), 'peeking leaves the bytes as they are');
    assert.ok(blob.some((b) => b !== 0));
    const rebuilt = thawState(blob, p.responder.ctx.policy);
    assert.ok(
      blob.every((b) => b === 0),
      'wiped',
    );
    assert.equal(stateToJson(rebuilt), stateToJson(s), 'intact after the wipe: nothing is a view of it');
    assert.equal(rebuilt.current!.keys.skD.buffer, rebuilt.current!.spiI.buffer, 'the live layout');
  });

  it('an SA forgotten while cold (its shard moved) leaves the counts, and whoever holds its entry still reads its last state', () => {
    const p = new Pair({ cold: true });
    p.establish();
    const ep = p.responder.endpoint;
    const e = p.responder.sa!;
    const before = stateToJson(e.peekState());
    ep.timeout(0);
    assert.equal(ep.stats.cold, 1);
    ep.forget(e);
    assert.deepEqual([ep.stats.sas, ep.stats.cold], [0, 0]);
    assert.equal(stateToJson(e.state), before);
    assert.equal(e.status, 'deleted', 'the entry says it is gone');
    assert.deepEqual([ep.stats.sas, ep.stats.cold], [0, 0], 'reading it touched no count');
  });

  it('an SA deleted while cold is gone from the counts (RFC 7296 §1.4.1)', () => {
    const p = new Pair({ cold: true });
    p.establish();
    p.command('initiator', { kind: 'delete-ike' });
    p.flush();
    for (const side of [p.initiator, p.responder]) {
      assert.equal(side.endpoint.stats.sas, 0);
      assert.equal(side.endpoint.stats.cold, 0);
    }
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted'));
  });
});
