import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_KEY } from '@ikegate/crypto';
import { Pair, stateFromJson, stateToJson } from '../testing/pair.js';
import { compactState } from './compact.js';

test('compactState: a state read back from a store gets the live layout (issue #14: 5.8 KB -> 3.1 KB per adopted SA), every value unchanged', () => {
  const p = new Pair({ initiatorPolicy: { requestVirtualIp: true } });
  p.establish();
  const live = p.responder.state;
  const read = stateFromJson(stateToJson(live));
  const policy = p.responder.sa!.ctx.policy;
  const s = compactState(read, policy);
  assert.equal(stateToJson(s), stateToJson(live), 'the same values');
  const c = s.current!;
  const k = c.keys;
  for (const v of [c.spiR, k.skD, k.skEi, k.skEr]) assert.equal(v.buffer, c.spiI.buffer);
  for (const v of [k.skAi, k.skAr, k.skPi, k.skPr, c.ni, c.nr]) assert.equal(v, NO_KEY);
  assert.equal(c.suite, live.current!.suite, 'the shared suite');
  const r = c.lastResponse!;
  assert.equal(r.bytes.buffer, r.requestDigest.buffer);
  assert.equal(r.source.address, s.path!.remote.address);
  assert.equal(s.path!.local.address.buffer, s.path!.remote.address.buffer);
  const child = s.children[0]!;
  assert.equal(child.inboundSpi.buffer, child.outboundSpi.buffer);
  assert.equal(child.suite, live.children[0]!.suite);
  assert.ok(child.virtualIp);
  assert.equal(child.tsRemote[0]!.startAddress, child.virtualIp);
  assert.equal(child.tsRemote[0]!.endAddress, child.virtualIp);
  // Our side, not narrowed: the policy's own selectors, as the live child holds them.
  assert.equal(live.children[0]!.tsLocal, policy.localTs);
  assert.equal(child.tsLocal, policy.localTs);
  // Without the policy: a selector's two addresses in one buffer.
  const any = compactState(read).children[0]!.tsLocal[0]!;
  assert.notEqual(any.startAddress, any.endAddress);
  assert.equal(any.startAddress.buffer, any.endAddress.buffer);
  assert.notEqual(c.spiI.buffer, read.current!.spiI.buffer, 'copies, not the decoded arrays');
});

test('compactState: the SA read back keeps working: liveness, a child rekey and an IKE rekey with every state read back and compacted after every step (RFC 7296 §1.4, §2.8)', () => {
  const p = new Pair({ roundTrip: true, initiatorPolicy: { requestVirtualIp: true } });
  p.establish();
  p.command('initiator', { kind: 'liveness' });
  p.command('responder', { kind: 'rekey-child', spi: p.responder.state.children[0]!.inboundSpi });
  p.run();
  p.command('initiator', { kind: 'rekey-ike' });
  p.run();
  p.command('responder', { kind: 'liveness' });
  p.run();
  for (const side of [p.initiator, p.responder]) {
    assert.equal(side.state.status, 'established');
    assert.equal(side.state.current!.outstanding, undefined);
    assert.equal(side.state.previous, undefined);
    assert.equal(side.state.children.length, 1);
  }
  assert.equal(
    Buffer.from(p.initiator.state.children[0]!.inboundSpi).toString('hex'),
    Buffer.from(p.responder.state.children[0]!.outboundSpi).toString('hex'),
  );
});

test('adopt: a state an older release wrote, still holding its nonces and SK_p, is held settled (no nonces, no SK_p, SPIs and keys in one buffer), so the first step after the takeover does not change it for that alone', () => {
  const p = new Pair();
  p.establish();
  const live = p.responder.state;
  const c = live.current!;
  const fill = (n: number, v: number) => new Uint8Array(n).fill(v);
  const older = {
    ...live,
    current: {
      ...c,
      ni: fill(32, 1),
      nr: fill(32, 2),
      keys: { ...c.keys, skPi: fill(32, 3), skPr: fill(32, 4) },
    },
  };
  const other = new Pair();
  const e = other.responder.endpoint.adopt(stateFromJson(stateToJson(older)), p.responder.sa!.ctx, 0);
  assert.ok(e);
  const held = e.state.current!;
  for (const v of [held.ni, held.nr, held.keys.skPi, held.keys.skPr]) assert.equal(v, NO_KEY);
  for (const v of [held.spiR, held.keys.skD, held.keys.skEi, held.keys.skEr])
    assert.equal(v.buffer, held.spiI.buffer);
  // A timer that finds nothing due leaves the very same state object.
  const before = e.state;
  other.responder.endpoint.timeout(0);
  assert.equal(e.state, before);
});
