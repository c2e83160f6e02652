/**
 * Child SA negotiation shared by IKE_AUTH and CREATE_CHILD_SA (RFC 7296 §1.3, §2.9 traffic
 * selector narrowing, §2.17 KEYMAT), on top of negotiation/ (proposals.ts, traffic-selectors.ts,
 * keys.ts). The exchange's initiator proposes TSi (its own traffic) and TSr; the responder narrows
 * each to the intersection with its configuration and answers TS_UNACCEPTABLE when nothing is
 * left, NO_PROPOSAL_CHOSEN when no ESP proposal fits.
 */
import type { ChildSaKeys, SharedSecrets } from '@ikegate/crypto';
import {
  NotifyError,
  PayloadType,
  type Proposal,
  ProtocolId,
  type SaPayload,
  type TrafficSelector,
  type TsPayload,
  TsType,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import {
  checkChosenProposal,
  deriveChildSaKeysForSuite,
  type NegotiatedSuite,
  narrowTrafficSelectors,
  selectProposal,
} from '../negotiation/index.js';
import type { ChildSaState, IkeSaContext, IkeSaCore, InstallChildAction } from '../sa/types.js';
import { bytesEqual, copy } from '../sa/work.js';
import { prfOf } from './key-exchange.js';
import { describeProposals, offersWithoutKe, withoutKe } from './sa-payloads.js';

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

/**
 * `selectors` narrowed to `host`, with each one-address selector of exactly `host` holding `host`
 * itself for both ends: the SA keeps one array for its virtual address and its selector, not
 * three (read-only data; issue #14, memory per SA).
 */
function narrowToHost(selectors: readonly TrafficSelector[], host: Uint8Array): TrafficSelector[] {
  return narrowTrafficSelectors(selectors, [hostSelector(host)]).map((t) =>
    bytesEqual(t.startAddress, host) && bytesEqual(t.endAddress, host)
      ? { ...t, startAddress: host, endAddress: host }
      : t,
  );
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

/** Whether two selector lists are the same selectors in the same order. */
export function sameSelectors(a: readonly TrafficSelector[], b: readonly TrafficSelector[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((x, i) => {
    const y = b[i]!;
    return (
      x.tsType === y.tsType &&
      x.ipProtocol === y.ipProtocol &&
      x.startPort === y.startPort &&
      x.endPort === y.endPort &&
      bytesEqual(x.startAddress, y.startAddress) &&
      bytesEqual(x.endAddress, y.endAddress)
    );
  });
}

function tsUnacceptable(detail: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_TS_UNACCEPTABLE', detail, NotifyError.TS_UNACCEPTABLE);
}

function noProposal(detail: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_NO_PROPOSAL', detail, NotifyError.NO_PROPOSAL_CHOSEN);
}

export interface AcceptedChild {
  readonly suite: NegotiatedSuite;
  readonly peerSpi: Uint8Array;
  /** The proposal we answer with (one transform per type, the peer's number, no SPI yet). */
  readonly proposal: Proposal;
  /** Narrowed TSi (the exchange initiator's side) and TSr. */
  readonly tsI: readonly TrafficSelector[];
  readonly tsR: readonly TrafficSelector[];
  readonly lenient?: 'aead-with-integrity';
}

export interface AcceptOptions {
  /** IKE_AUTH: no key exchange for this child (RFC 7296 §1.2); KE transforms are ignored. */
  readonly ikeAuth: boolean;
  /** A virtual IP we assigned: TSi narrows to that host (RFC 7296 §2.23, §3.15). */
  readonly remoteHost?: Uint8Array;
  /** A virtual IP assigned to us: our only address for this child. */
  readonly localHost?: Uint8Array;
}

/**
 * Responder: picks an ESP proposal (strict RFC 7296 §3.3.6, with PFS only as our policy allows)
 * and narrows the selectors. @throws RemoteProtocolError NO_PROPOSAL_CHOSEN or TS_UNACCEPTABLE,
 * with a message fit for the rejection's log line
 */
export function acceptChild(
  ctx: IkeSaContext,
  sa: SaPayload,
  tsi: TsPayload,
  tsr: TsPayload,
  o: AcceptOptions,
): AcceptedChild {
  const esp = sa.proposals.filter((p) => p.protocolId === ProtocolId.ESP && p.spi.length === 4);
  const selected = o.ikeAuth
    ? selectProposal(offersWithoutKe(esp), withoutKe(ctx.policy.espProposals), ProtocolId.ESP)
    : selectProposal(esp, ctx.policy.espProposals, ProtocolId.ESP);
  if (selected.kind === 'none') throw noProposal(`offered ${describeProposals(sa.proposals)}`);
  let tsI = narrowTrafficSelectors(tsi.selectors, ctx.policy.remoteTs, true);
  if (o.remoteHost) tsI = narrowToHost(tsI, o.remoteHost);
  let tsR = narrowTrafficSelectors(tsr.selectors, ctx.policy.localTs, true);
  if (o.localHost) tsR = narrowToHost(tsR, o.localHost);
  if (tsI.length === 0 || tsR.length === 0)
    throw tsUnacceptable(
      `${tsi.selectors.length} TSi / ${tsr.selectors.length} TSr selectors outside our policy`,
    );
  return {
    suite: selected.suite,
    peerSpi: copy(selected.peerSpi),
    proposal: selected.proposal,
    // Not narrowed at all (a gateway's own side usually is not): the policy's own selectors, one
    // object shared by every child SA of the policy instead of a copy each (issue #14).
    tsI: sameSelectors(tsI, ctx.policy.remoteTs) ? ctx.policy.remoteTs : tsI,
    tsR: sameSelectors(tsR, ctx.policy.localTs) ? ctx.policy.localTs : tsR,
    ...(selected.lenient ? { lenient: selected.lenient } : {}),
  };
}

/**
 * Initiator: checks the responder's single choice against what we sent and that its selectors
 * lie within ours. @throws RemoteProtocolError when it does not (the child is not created)
 */
export function acceptedChild(
  ctx: IkeSaContext,
  sa: SaPayload,
  tsi: TsPayload,
  tsr: TsPayload,
  sent: readonly Proposal[],
): AcceptedChild {
  const check = checkChosenProposal(sa.proposals, sent, ProtocolId.ESP);
  if (check.kind !== 'ok') throw noProposal(`responder's choice: ${check.reason}`);
  if (check.peerSpi.length !== 4) throw noProposal('responder ESP SPI is not 4 octets');
  const tsI = narrowTrafficSelectors(tsi.selectors, ctx.policy.localTs, true);
  const tsR = narrowTrafficSelectors(tsr.selectors, ctx.policy.remoteTs, true);
  if (tsI.length === 0 || tsR.length === 0) throw tsUnacceptable('responder selectors outside ours');
  return {
    suite: check.suite,
    peerSpi: copy(check.peerSpi),
    proposal: sa.proposals[0]!,
    tsI: [...tsi.selectors],
    tsR: [...tsr.selectors],
  };
}

/** KEYMAT = prf+(SK_d, [g^ir] | Ni | Nr) with the exchange's nonces (RFC 7296 §2.17). */
export function childKeys(
  ctx: IkeSaContext,
  core: IkeSaCore,
  suite: NegotiatedSuite,
  ni: Uint8Array,
  nr: Uint8Array,
  sharedSecret?: SharedSecrets,
): ChildSaKeys {
  return deriveChildSaKeysForSuite(
    ctx.provider,
    suite,
    prfOf(ctx.provider, core.suite.prf),
    core.keys.skD,
    ni,
    nr,
    sharedSecret,
    true,
  ).keys;
}

export function installChild(
  child: ChildSaState,
  keys: ChildSaKeys,
  weInitiated: boolean,
  replaces?: Uint8Array,
): InstallChildAction {
  return {
    kind: 'install-child',
    inboundSpi: child.inboundSpi,
    outboundSpi: child.outboundSpi,
    encryption: child.suite.encryption,
    ...(child.suite.integrity !== undefined ? { integrity: child.suite.integrity } : {}),
    esn: child.suite.esn ?? false,
    keys: {
      encrI: copy(keys.encrI),
      integI: copy(keys.integI),
      encrR: copy(keys.encrR),
      integR: copy(keys.integR),
    },
    weInitiated,
    tsLocal: child.tsLocal,
    tsRemote: child.tsRemote,
    ...(child.virtualIp ? { virtualIp: child.virtualIp } : {}),
    ...(replaces ? { replaces } : {}),
  };
}
