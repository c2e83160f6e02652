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
