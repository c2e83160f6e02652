/**
 * One IKE SA setup in memory (no IO), as scripts/bench/ikev2-setup.ts does it: IKE_SA_INIT +
 * IKE_AUTH with PSK, X25519, AES-256-GCM-16, PRF-HMAC-SHA2-256 and one child SA, initiator and
 * responder both driven by the sans-IO state machine. Shared by bench modules that need the cost
 * of one setup as a same-run reference.
 */
import { randomBytes } from 'node:crypto';
import { EncryptionId, KeyExchangeId, nodeProvider, PrfId } from '@ikegate/crypto';
import {
  createIkeSa,
  type IkeSaAction,
  type IkeSaContext,
  type IkeSaPolicy,
  type IkeSaState,
  step,
} from '@ikegate/ikev2';

const random = (n: number) => new Uint8Array(randomBytes(n));
const any = {
  tsType: 7,
  ipProtocol: 0,
  startPort: 0,
  endPort: 65535,
  startAddress: Uint8Array.of(0, 0, 0, 0),
  endAddress: Uint8Array.of(255, 255, 255, 255),
};

function context(localId: string): IkeSaContext {
  const policy: IkeSaPolicy = {
    localId,
    ikeProposals: [
      {
        encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }],
        prf: [PrfId.HMAC_SHA2_256],
        integrity: [],
        keyExchange: [KeyExchangeId.CURVE25519],
      },
    ],
    espProposals: [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], integrity: [] }],
    localTs: [any],
    remoteTs: [any],
  };
  const psk = new TextEncoder().encode('bench pre-shared key');
  return {
    provider: nodeProvider,
    random,
    allocateIkeSpi: () => random(8),
    allocateChildSpi: () => random(4),
    policy,
    psk: () => psk,
    local: { address: Uint8Array.of(192, 0, 2, 1), port: 500 },
    remote: { address: Uint8Array.of(198, 51, 100, 1), port: 500 },
  };
}

const ctxI = context('initiator@example.org');
const ctxR = context('gw.example.org');

function sends(actions: readonly IkeSaAction[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const a of actions) if (a.kind === 'send') out.push(a.bytes);
  return out;
}

/** One complete IKE_SA_INIT + IKE_AUTH setup; returns both established states (throws otherwise). */
export function establishPair(): { i: IkeSaState; r: IkeSaState } {
  let i: IkeSaState = createIkeSa();
  let r: IkeSaState = createIkeSa();
  let res = step(i, { kind: 'command', command: { kind: 'initiate' }, now: 0 }, ctxI);
  i = res.state;
  let toR = sends(res.actions);
  // Two exchanges; the bound only guards against a state machine that never settles.
  for (let round = 0; toR.length > 0 && round < 8; round++) {
    const toI: Uint8Array[] = [];
    for (const bytes of toR) {
      res = step(r, { kind: 'message', bytes, transport: 'udp', now: 0 }, ctxR);
      r = res.state;
      toI.push(...sends(res.actions));
    }
    toR = [];
    for (const bytes of toI) {
      res = step(i, { kind: 'message', bytes, transport: 'udp', now: 0 }, ctxI);
      i = res.state;
      toR.push(...sends(res.actions));
    }
  }
  if (i.status !== 'established' || r.status !== 'established') throw new Error('setup failed');
  return { i, r };
}
