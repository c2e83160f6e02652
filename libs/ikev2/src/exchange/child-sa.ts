/**
 * Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA (RFC 7296 §1.3, §2.9 traffic
 * selector narrowing, §2.17 KEYMAT). The exchange's initiator proposes TSi (its own traffic) and
 * TSr; the responder narrows each to the intersection with its configuration and answers
 * TS_UNACCEPTABLE when nothing is left.
 */
import { type ChildSaKeys, deriveChildSaKeys } from '@ikegate/crypto';
import {
  NotifyError,
  PayloadType,
  type SaPayload,
  type TrafficSelector,
  type TsPayload,
  TsType,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import { compareBytes, espKeyLengths, prfOf, selectEspSuite } from './suite.js';
import type { ChildSaState, EspSuite, IkeSaContext, IkeSaCore, InstallChildAction } from './types.js';
import { copy } from './work.js';

function maxBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) >= 0 ? a : b;
}
function minBytes(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) <= 0 ? a : b;
}

/** The intersection of two selectors, or undefined if disjoint (RFC 7296 §2.9). */
export function intersectSelector(a: TrafficSelector, b: TrafficSelector): TrafficSelector | undefined {
  if (a.tsType !== b.tsType || a.startAddress.length !== b.startAddress.length) return undefined;
  if (a.ipProtocol !== 0 && b.ipProtocol !== 0 && a.ipProtocol !== b.ipProtocol) return undefined;
  const startPort = Math.max(a.startPort, b.startPort);
  const endPort = Math.min(a.endPort, b.endPort);
  if (startPort > endPort) return undefined;
  const startAddress = maxBytes(a.startAddress, b.startAddress);
  const endAddress = minBytes(a.endAddress, b.endAddress);
  if (compareBytes(startAddress, endAddress) > 0) return undefined;
  return {
    tsType: a.tsType,
    ipProtocol: a.ipProtocol === 0 ? b.ipProtocol : a.ipProtocol,
    startPort,
    endPort,
    startAddress: copy(startAddress),
    endAddress: copy(endAddress),
  };
}

/** Every non-empty pairwise intersection, in the order of `proposed`. */
export function narrowSelectors(
  proposed: readonly TrafficSelector[],
  configured: readonly TrafficSelector[],
): TrafficSelector[] {
  const out: TrafficSelector[] = [];
  for (const p of proposed)
    for (const c of configured) {
      const x = intersectSelector(p, c);
      if (x) out.push(x);
    }
  return out;
}

export function hostSelector(address: Uint8Array): TrafficSelector {
  return {
    tsType: address.length === 4 ? TsType.TS_IPV4_ADDR_RANGE : TsType.TS_IPV6_ADDR_RANGE,
    ipProtocol: 0,
    startPort: 0,
    endPort: 65535,
    startAddress: copy(address),
    endAddress: copy(address),
  };
}

export function tsPayloads(
  tsI: readonly TrafficSelector[],
  tsR: readonly TrafficSelector[],
): [TsPayload, TsPayload] {
  return [
    { type: PayloadType.TSi, critical: false, selectors: tsI },
    { type: PayloadType.TSr, critical: false, selectors: tsR },
  ];
}

function tsUnacceptable(): RemoteProtocolError {
  return new RemoteProtocolError(
    'IKEGATE_ERR_IKEV2_TS_UNACCEPTABLE',
    'no traffic selector left',
    NotifyError.TS_UNACCEPTABLE,
  );
}

export interface AcceptedChild {
  readonly suite: EspSuite;
  readonly peerSpi: Uint8Array;
  readonly proposalNumber: number;
  readonly keGroup?: number;
  /** Narrowed TSi (the exchange initiator's side) and TSr. */
  readonly tsI: TrafficSelector[];
  readonly tsR: TrafficSelector[];
}

/**
 * Responder: picks an ESP proposal and narrows the selectors. `remoteHost`, if given (a virtual
 * IP we assigned), narrows TSi to that /32; `localHost` (a virtual IP assigned to us) narrows TSr.
 * Throws NO_PROPOSAL_CHOSEN or TS_UNACCEPTABLE.
 */
export function acceptChild(
  ctx: IkeSaContext,
  sa: SaPayload,
  tsi: TsPayload,
  tsr: TsPayload,
  pfsGroup: number | undefined,
  remoteHost?: Uint8Array,
  localHost?: Uint8Array,
): AcceptedChild {
  const selected = selectEspSuite(sa, ctx.policy.espProposals, pfsGroup);
  let tsI = narrowSelectors(tsi.selectors, ctx.policy.remoteTs);
  if (remoteHost) tsI = narrowSelectors(tsI, [hostSelector(remoteHost)]);
  let tsR = narrowSelectors(tsr.selectors, ctx.policy.localTs);
  // A virtual IP assigned to us (RFC 7296 §3.15) is our only address for this child.
  if (localHost) tsR = narrowSelectors(tsR, [hostSelector(localHost)]);
  if (tsI.length === 0 || tsR.length === 0) throw tsUnacceptable();
  const base = {
    suite: selected.suite,
    peerSpi: copy(selected.proposal.spi),
    proposalNumber: selected.proposal.number,
    tsI,
    tsR,
  };
  return selected.keGroup === undefined ? base : { ...base, keGroup: selected.keGroup };
}

/** Initiator: checks the responder's single choice and that its selectors are within ours. */
export function acceptedChild(
  ctx: IkeSaContext,
  sa: SaPayload,
  tsi: TsPayload,
  tsr: TsPayload,
  pfsGroup: number | undefined,
): AcceptedChild {
  if (sa.proposals.length !== 1)
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_NO_PROPOSAL',
      'responder must choose one',
      NotifyError.NO_PROPOSAL_CHOSEN,
    );
  const selected = selectEspSuite(sa, ctx.policy.espProposals, pfsGroup);
  const tsI = narrowSelectors(tsi.selectors, ctx.policy.localTs);
  const tsR = narrowSelectors(tsr.selectors, ctx.policy.remoteTs);
  if (tsI.length === 0 || tsR.length === 0) throw tsUnacceptable();
  const base = {
    suite: selected.suite,
    peerSpi: copy(selected.proposal.spi),
    proposalNumber: selected.proposal.number,
    tsI: [...tsi.selectors],
    tsR: [...tsr.selectors],
  };
  return selected.keGroup === undefined ? base : { ...base, keGroup: selected.keGroup };
}

/** KEYMAT = prf+(SK_d, [g^ir] | Ni | Nr) with the exchange's nonces (RFC 7296 §2.17). */
export function childKeys(
  ctx: IkeSaContext,
  core: IkeSaCore,
  suite: EspSuite,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecret?: Uint8Array,
): ChildSaKeys {
  return deriveChildSaKeys(
    prfOf(ctx.provider, core.suite.prf),
    core.keys.skD,
    ni,
    nr,
    sharedSecret,
    espKeyLengths(ctx.provider, suite),
  );
}

export function installChild(
  child: ChildSaState,
  keys: ChildSaKeys,
  weInitiated: boolean,
): InstallChildAction {
  const base: InstallChildAction = {
    kind: 'install-child',
    inboundSpi: child.inboundSpi,
    outboundSpi: child.outboundSpi,
    encryption: child.suite.encryption,
    keys: {
      encrI: copy(keys.encrI),
      integI: copy(keys.integI),
      encrR: copy(keys.encrR),
      integR: copy(keys.integR),
    },
    weInitiated,
    tsLocal: child.tsLocal,
    tsRemote: child.tsRemote,
  };
  const withInteg = child.suite.integrity !== 0 ? { ...base, integrity: child.suite.integrity } : base;
  return child.virtualIp ? { ...withInteg, virtualIp: child.virtualIp } : withInteg;
}
