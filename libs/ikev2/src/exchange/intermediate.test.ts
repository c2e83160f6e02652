import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { defaultProvider, KeyExchangeId } from '@ikegate/crypto';
import {
  decodeMessage,
  ExchangeType,
  NotifyStatus,
  type NotifyPayload,
  PayloadType,
} from '../codec/index.js';
import { DEFAULT_IKE_PROPOSALS, Pair, type PairOptions } from '../testing/pair.js';
import type { IkeSaPolicy } from '../sa/types.js';

const ML_KEM_768 = 36;
const HYBRID: IkeSaPolicy['ikeProposals'] = [
  {
    ...DEFAULT_IKE_PROPOSALS[0]!,
    keyExchange: [KeyExchangeId.CURVE25519],
    additionalKeyExchanges: [[ML_KEM_768]],
  },
];

function hybridPair(extra: PairOptions = {}): Pair {
  return new Pair({
    provider: defaultProvider,
    ...extra,
    initiatorPolicy: { ikeProposals: HYBRID, ...extra.initiatorPolicy },
    responderPolicy: { ikeProposals: HYBRID, ...extra.responderPolicy },
  });
}

function sent(p: Pair, side: 'initiator' | 'responder'): Uint8Array[] {
  return p.side(side).log.flatMap((a) => (a.kind === 'send' ? [a.bytes] : []));
}

function hasNotify(bytes: Uint8Array, type: number): boolean {
  return decodeMessage(bytes).payloads.some(
    (x) => x.type === PayloadType.NOTIFY && (x as NotifyPayload).notifyType === type,
  );
}

function assertEstablished(p: Pair): void {
  assert.equal(p.initiator.state.status, 'established');
  assert.equal(p.responder.state.status, 'established');
  assert.equal(p.initiator.children.size, 1);
  const i = [...p.initiator.children.values()][0]!;
  const r = [...p.responder.children.values()][0]!;
  assert.deepEqual(i.keys, r.keys);
}

describe('IKE_INTERMEDIATE with an RFC 9370 ML-KEM-768 additional key exchange (RFC 9242)', () => {
  it('negotiates ADDKE1 ML-KEM-768 after X25519, runs one IKE_INTERMEDIATE and authenticates it in AUTH (RFC 9370 §2.2, RFC 9242 §3.3)', () => {
    const p = hybridPair({ roundTrip: true });
    p.establish();
    assertEstablished(p);
    const [initReq, intReq] = sent(p, 'initiator');
    const [initResp, intResp] = sent(p, 'responder');
    assert.ok(hasNotify(initReq!, NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED));
    assert.ok(hasNotify(initResp!, NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED));
    assert.equal(decodeMessage(intReq!).header.exchangeType, ExchangeType.IKE_INTERMEDIATE);
    assert.equal(decodeMessage(intReq!).header.messageId, 1);
    assert.equal(decodeMessage(intResp!).header.exchangeType, ExchangeType.IKE_INTERMEDIATE);
    assert.equal(p.initiator.state.current?.suite.additionalKeyExchanges[0], ML_KEM_768);
    // IKE_AUTH is Message ID 2 after the IKE_INTERMEDIATE.
    assert.equal(p.initiator.state.current?.nextRequestId, 3);
    assert.equal(p.responder.state.current?.expectedRequestId, 3);
  });

  it('derives different IKE SA keys than X25519 alone (RFC 9370 §2.2.4)', () => {
    const hybrid = hybridPair();
    hybrid.establish();
    const classic = new Pair({
      provider: defaultProvider,
      initiatorPolicy: { ikeProposals: [{ ...HYBRID[0]!, additionalKeyExchanges: [] }] },
      responderPolicy: { ikeProposals: HYBRID },
    });
    classic.establish();
    assertEstablished(classic);
    assert.equal(classic.initiator.state.current?.suite.additionalKeyExchanges.length, 0);
    assert.notDeepEqual(hybrid.initiator.state.current?.keys.skD, classic.initiator.state.current?.keys.skD);
    assert.ok(!sent(classic, 'initiator').some((b) => decodeMessage(b).header.exchangeType === 43));
  });

  it('retransmits a lost IKE_INTERMEDIATE response from the cache and fragments the large KE (RFC 7383, RFC 9242 §3.4)', () => {
    const p = hybridPair({
      initiatorPolicy: { fragmentSize: 600 },
      responderPolicy: { fragmentSize: 600 },
    });
    let dropped = false;
    p.filter = (f) => {
      const h = decodeMessage(f.bytes).header;
      if (!dropped && f.to === 'initiator' && h.exchangeType === ExchangeType.IKE_INTERMEDIATE) {
        dropped = true;
        return 'drop';
      }
      return 'deliver';
    };
    p.establish();
    assert.ok(dropped);
    assertEstablished(p);
    assert.ok(sent(p, 'initiator').some((b) => decodeMessage(b).payloads.at(-1)?.type === PayloadType.SKF));
  });

  it('rekeys the IKE SA afterwards without an additional key exchange (RFC 7296 §2.18)', () => {
    const p = hybridPair();
    p.establish();
    p.command('initiator', { kind: 'rekey-ike' });
    p.run();
    assertEstablished(p);
    p.command('responder', { kind: 'liveness' });
    p.run();
    assert.equal(p.responder.state.current?.outstanding, undefined);
  });

  it('fails IKE_AUTH when the IntAuth of the IKE_INTERMEDIATE differs (RFC 9242 §3.3.2)', () => {
    const p = hybridPair();
    p.initiate();
    for (let i = 0; i < 3; i++) {
      const f = p.wire.shift()!;
      p.deliver(f.to, f.bytes);
    }
    const init = p.responder.state.init!;
    assert.ok(init.intAuth);
    const forged = init.intAuth.slice();
    forged[0]! ^= 1;
    p.responder.state = { ...p.responder.state, init: { ...init, intAuth: forged } };
    p.run();
    assert.ok(p.responder.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
    assert.ok(p.initiator.log.some((a) => a.kind === 'deleted' && a.reason === 'authentication-failed'));
  });
});
