/**
 * One IKE SA setup in memory (no IO), as scripts/bench/ikev2-setup.ts does it: IKE_SA_INIT +
 * IKE_AUTH with PSK, X25519, AES-256-GCM-16, PRF-HMAC-SHA2-256 and one child SA, initiator and
 * responder both driven by the sans-IO state machine. Shared by bench modules that need the cost
 * of one setup as a same-run reference.
 */
import { EncryptionId, KeyExchangeId, nodeProvider, PrfId, RandomPool } from '@ikegate/crypto';
import {
  type EndpointOutput,
  IkeEndpoint,
  type IkePath,
  type IkeSaContext,
  type IkeSaPolicy,
  type IkeSaState,
} from '@ikegate/ikev2';

/** Randomness as a worker draws it (services/worker/src/ike-driver.ts: one RandomPool). */
const random = new RandomPool().random;
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
        keyExchange: [KeyExchangeId.CURVE25519],
      },
    ],
    espProposals: [{ encryption: [{ id: EncryptionId.AES_GCM_16, keyBits: 256 }], esn: [false] }],
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
  };
}

const ctxI = context('initiator@example.org');
/** The responder's context (its policy: what an adopting endpoint compacts with). */
export const ctxR = context('gw.example.org');
const toR: IkePath = {
  id: 'i',
  transport: 'udp',
  local: { address: Uint8Array.of(192, 0, 2, 1), port: 500 },
  remote: { address: Uint8Array.of(198, 51, 100, 1), port: 500 },
};
const toI: IkePath = { id: 'r', transport: 'udp', local: toR.remote, remote: toR.local };

function endpointFor(ctx: IkeSaContext): IkeEndpoint<undefined> {
  return new IkeEndpoint<undefined>({
    provider: nodeProvider,
    random,
    policy: ctx.policy,
    ikeSpi: () => random(8),
    responderContext: () => ctx,
  });
}

function sends(out: readonly EndpointOutput<undefined>[]): Uint8Array[] {
  const bytes: Uint8Array[] = [];
  for (const o of out) if (o.kind === 'transmit') bytes.push(o.bytes);
  return bytes;
}

/**
 * Accumulates the CPU time (user + system, microseconds) spent inside the responder's receive(),
 * less `overheadUs` per call (the cost of the two cpuUsage() calls themselves: harness.ts
 * cpuRegionOverheadUs()).
 */
export interface ResponderTiming {
  responderCpuUs: number;
  readonly overheadUs: number;
}

/**
 * One complete IKE_SA_INIT + IKE_AUTH setup on fresh endpoints; returns both states (throws
 * otherwise). With `timing`, the responder's share is measured by process.cpuUsage() around each
 * of its receive() calls (CPU time: robust to other processes on the machine).
 */
export function establishPair(timing?: ResponderTiming): { i: IkeSaState; r: IkeSaState } {
  const ei = endpointFor(ctxI);
  const er = endpointFor(ctxR);
  const started = ei.initiate(ctxI, toR, 0, 0);
  let toResponder = sends(started.out);
  // Two exchanges; the bound only guards against a state machine that never settles.
  for (let round = 0; toResponder.length > 0 && round < 8; round++) {
    const toInitiator: Uint8Array[] = [];
    for (const bytes of toResponder) {
      const c0 = timing ? process.cpuUsage() : undefined;
      const out = er.receive(bytes, toI, 0, 0);
      if (timing && c0) {
        const c = process.cpuUsage(c0);
        timing.responderCpuUs += c.user + c.system - timing.overheadUs;
      }
      toInitiator.push(...sends(out));
    }
    toResponder = [];
    for (const bytes of toInitiator) toResponder.push(...sends(ei.receive(bytes, toR, 0, 0)));
  }
  const r = [...er.entries()][0];
  const i = started.sa;
  if (i.state.status !== 'established' || r?.state.status !== 'established') throw new Error('setup failed');
  return { i: i.state, r: r.state };
}
