/**
 * CREATE_CHILD_SA (RFC 7296 §1.3): rekeying a child SA (§1.3.3, REKEY_SA notify, optional PFS KE)
 * and rekeying the IKE SA (§1.3.2, §2.18), with simultaneous IKE SA rekey resolution (§2.8.1).
 *
 * Child rekey: the new child SA is installed by both sides; the rekey initiator then deletes the
 * old one with an INFORMATIONAL DELETE. IKE rekey: new SPIs, SKEYSEED = prf(SK_d(old), g^ir(new) |
 * Ni | Nr); children move to the new SA and the rekey initiator deletes the old one on the old SA.
 *
 * Collision: when both ends start an IKE rekey at once, each answers the other's request and ends
 * up with two new SAs. The one holding the lowest of the four nonces is redundant: the side that
 * created it deletes it, and the other side (the winner's initiator) deletes the old SA.
 */
import { deriveIkeSaKeys, deriveRekeySkeyseed } from '@ikegate/crypto';
import {
  decodeInvalidKe,
  encodeInvalidKe,
  ExchangeType,
  NotifyError,
  NotifyStatus,
  type Payload,
  PayloadType,
  ProtocolId,
  verifyNonce,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import { acceptChild, acceptedChild, childKeys, installChild, tsPayloads } from './child-sa.js';
import { NONCE_LENGTH } from './ike-init.js';
import { sendDeleteOn } from './informational.js';
import { sendRequest } from './message-window.js';
import {
  acceptedIkeSuite,
  bytesEqual,
  compareBytes,
  espSaPayload,
  espSuiteSaPayload,
  ikeKeyLengths,
  ikeSaPayload,
  ikeSuiteSaPayload,
  keComplete,
  keInitiation,
  keRespond,
  prfOf,
  selectIkeSuite,
} from './suite.js';
import type { ChildSaState, IkeSaCore, IkeSuite, IkeTask } from './types.js';
import { copy, findNotify, findPayload, notify, requirePayload, type Work } from './work.js';

function nonceOf(payloads: readonly Payload[]): Uint8Array {
  const n = requirePayload(payloads, PayloadType.NONCE);
  if (verifyNonce(n) !== undefined)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'nonce length');
  return copy(n.data);
}

// --- child SA rekey ------------------------------------------------------------------------------

export function startRekeyChild(w: Work, spi: Uint8Array): void {
  const { ctx } = w;
  const child = w.s.children.find((c) => bytesEqual(c.inboundSpi, spi));
  if (!child) return;
  const newSpi = copy(ctx.allocateChildSpi());
  const nonce = copy(ctx.random(NONCE_LENGTH));
  const group = ctx.policy.childPfsGroup;
  const inner: Payload[] = [
    notify(NotifyStatus.REKEY_SA, new Uint8Array(0), ProtocolId.ESP, child.inboundSpi),
    espSaPayload(ctx.policy.espProposals, newSpi, group),
    { type: PayloadType.NONCE, critical: false, data: nonce },
  ];
  let task: IkeTask = { kind: 'rekey-child', oldSpi: child.inboundSpi, newSpi, nonce };
  if (group !== undefined) {
    const keSeed = copy(ctx.random(64));
    inner.push({
      type: PayloadType.KE,
      critical: false,
      group,
      data: keInitiation(ctx.provider, group, keSeed).publicData,
    });
    task = { ...task, keSeed, keGroup: group };
  }
  inner.push(...tsPayloads(child.tsLocal, child.tsRemote));
  w.s.current = sendRequest(
    ctx,
    w.s.current!,
    w.s.transport,
    w.now,
    ExchangeType.CREATE_CHILD_SA,
    inner,
    task,
    w.actions,
  );
}

export function processRekeyChildResponse(
  w: Work,
  inner: readonly Payload[],
  task: Extract<IkeTask, { kind: 'rekey-child' }>,
  core: IkeSaCore,
): void {
  const { ctx } = w;
  if (inner.some((p) => p.type === PayloadType.NOTIFY && 'notifyType' in p && p.notifyType < 16384)) return;
  const a = acceptedChild(
    ctx,
    requirePayload(inner, PayloadType.SA),
    requirePayload(inner, PayloadType.TSi),
    requirePayload(inner, PayloadType.TSr),
    task.keGroup,
  );
  const nr = nonceOf(inner);
  let secret: Uint8Array | undefined;
  if (task.keGroup !== undefined && task.keSeed) {
    const ke = requirePayload(inner, PayloadType.KE);
    if (ke.group !== task.keGroup) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'PFS group');
    secret = keComplete(keInitiation(ctx.provider, task.keGroup, task.keSeed), ke.data);
  }
  const old = w.s.children.find((c) => bytesEqual(c.inboundSpi, task.oldSpi));
  const child: ChildSaState = {
    inboundSpi: task.newSpi,
    outboundSpi: a.peerSpi,
    suite: a.suite,
    tsLocal: a.tsI,
    tsRemote: a.tsR,
    ...(old?.virtualIp ? { virtualIp: old.virtualIp } : {}),
  };
  w.s.children = [...w.s.children, child];
  w.actions.push(installChild(child, childKeys(ctx, core, a.suite, task.nonce, nr, secret), true));
  const collision = w.s.childCollisions?.find((c) => bytesEqual(c.oldSpi, task.oldSpi));
  if (collision) {
    w.s.childCollisions = w.s.childCollisions!.filter((c) => c !== collision);
    // §2.8.1: the new SA with the lowest of the four nonces is redundant; its creator deletes it,
    // and the creator of the surviving one deletes the old SA.
    const ours = lowest(task.nonce, nr);
    if (compareBytes(ours, lowest(collision.ni, collision.nr)) < 0) {
      w.s.queue = [{ kind: 'delete-child', spi: task.newSpi }, ...w.s.queue];
      return;
    }
  }
  // §2.8: the initiator of the rekey deletes the old child SA once the new one is in place.
  if (old) w.s.queue = [{ kind: 'delete-child', spi: old.inboundSpi }, ...w.s.queue];
}

function lowest(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) <= 0 ? a : b;
}

function respondRekeyChild(w: Work, inner: readonly Payload[], rekeySpi: Uint8Array): Payload[] {
  const { ctx } = w;
  const core = w.s.current!;
  const old = w.s.children.find((c) => bytesEqual(c.outboundSpi, rekeySpi));
  if (!old) return [notify(NotifyError.CHILD_SA_NOT_FOUND, new Uint8Array(0), ProtocolId.ESP, rekeySpi)];
  const ni = nonceOf(inner);
  const a = acceptChild(
    ctx,
    requirePayload(inner, PayloadType.SA),
    requirePayload(inner, PayloadType.TSi),
    requirePayload(inner, PayloadType.TSr),
    ctx.policy.childPfsGroup,
    // If we asked for a virtual IP (CFG_REQUEST) it is ours; otherwise we assigned it to the peer.
    ctx.policy.requestVirtualIp ? undefined : old.virtualIp,
    ctx.policy.requestVirtualIp ? old.virtualIp : undefined,
  );
  const nr = copy(ctx.random(NONCE_LENGTH));
  const inboundSpi = copy(ctx.allocateChildSpi());
  const out: Payload[] = [
    espSuiteSaPayload(a.suite, inboundSpi, a.keGroup, a.proposalNumber),
    { type: PayloadType.NONCE, critical: false, data: nr },
  ];
  let secret: Uint8Array | undefined;
  if (a.keGroup !== undefined) {
    const ke = findPayload(inner, PayloadType.KE);
    if (!ke || ke.group !== a.keGroup) {
      return [notify(NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(a.keGroup))];
    }
    const r = keRespond(ctx.provider, a.keGroup, ke.data, ctx.random);
    secret = r.sharedSecret;
    out.push({ type: PayloadType.KE, critical: false, group: a.keGroup, data: r.publicData });
  }
  out.push(...tsPayloads(a.tsI, a.tsR));
  const child: ChildSaState = {
    inboundSpi,
    outboundSpi: a.peerSpi,
    suite: a.suite,
    tsLocal: a.tsR,
    tsRemote: a.tsI,
    ...(old.virtualIp ? { virtualIp: old.virtualIp } : {}),
  };
  w.s.children = [...w.s.children, child];
  w.actions.push(installChild(child, childKeys(ctx, core, a.suite, ni, nr, secret), false));
  const ownTask = core.outstanding?.task;
  if (ownTask?.kind === 'rekey-child' && bytesEqual(ownTask.oldSpi, old.inboundSpi))
    w.s.childCollisions = [...(w.s.childCollisions ?? []), { oldSpi: old.inboundSpi, ni, nr }];
  return out;
}

// --- IKE SA rekey --------------------------------------------------------------------------------

export function startRekeyIke(w: Work, keGroup?: number): void {
  const { ctx } = w;
  const core = w.s.current!;
  const newSpi = copy(ctx.allocateIkeSpi());
  const nonce = copy(ctx.random(NONCE_LENGTH));
  const keSeed = copy(ctx.random(64));
  const group = keGroup ?? core.suite.keyExchange;
  const inner: Payload[] = [
    ikeSaPayload(ctx.policy.ikeProposals, newSpi, group),
    { type: PayloadType.NONCE, critical: false, data: nonce },
    {
      type: PayloadType.KE,
      critical: false,
      group,
      data: keInitiation(ctx.provider, group, keSeed).publicData,
    },
  ];
  w.s.current = sendRequest(
    ctx,
    core,
    w.s.transport,
    w.now,
    ExchangeType.CREATE_CHILD_SA,
    inner,
    { kind: 'rekey-ike', newSpi, nonce, keSeed, keGroup: group },
    w.actions,
  );
}

function rekeyedCore(
  w: Work,
  old: IkeSaCore,
  role: 'initiator' | 'responder',
  suite: IkeSuite,
  spiI: Uint8Array,
  spiR: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  secret: Uint8Array,
): IkeSaCore {
  const { provider } = w.ctx;
  // §2.18 with the old SA's PRF for SKEYSEED (as strongSwan does), the new one for prf+.
  const seed = deriveRekeySkeyseed(prfOf(provider, old.suite.prf), old.keys.skD, secret, ni, nr);
  const keys = deriveIkeSaKeys(
    prfOf(provider, suite.prf),
    seed,
    ni,
    nr,
    spiI,
    spiR,
    ikeKeyLengths(provider, suite),
  );
  return {
    role,
    spiI,
    spiR,
    suite,
    keys,
    ni,
    nr,
    nextRequestId: 0,
    expectedRequestId: 0,
    ...(old.fragmentation ? { fragmentation: true } : {}),
  };
}

/** Responder half; `old` is the SA the request came on. Returns the response and the new SA. */
function respondRekeyIke(w: Work, inner: readonly Payload[]): { out: Payload[]; fresh?: IkeSaCore } {
  const { ctx } = w;
  const old = w.s.current!;
  const sa = requirePayload(inner, PayloadType.SA);
  const ke = requirePayload(inner, PayloadType.KE);
  const ni = nonceOf(inner);
  const { suite, proposal } = selectIkeSuite(sa, ctx.policy.ikeProposals, ke.group);
  if (proposal.spi.length !== 8)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'IKE rekey SPI size');
  if (ke.group !== suite.keyExchange) {
    return { out: [notify(NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(suite.keyExchange))] };
  }
  const r = keRespond(ctx.provider, suite.keyExchange, ke.data, ctx.random);
  const nr = copy(ctx.random(NONCE_LENGTH));
  const spiR = copy(ctx.allocateIkeSpi());
  const fresh = rekeyedCore(w, old, 'responder', suite, copy(proposal.spi), spiR, ni, nr, r.sharedSecret);
  return {
    out: [
      ikeSuiteSaPayload(suite, spiR, proposal.number),
      { type: PayloadType.NONCE, critical: false, data: nr },
      { type: PayloadType.KE, critical: false, group: suite.keyExchange, data: r.publicData },
    ],
    fresh,
  };
}

/** Lowest nonce of an SA created by a rekey (RFC 7296 §2.8.1). */
function lowestNonce(c: IkeSaCore): Uint8Array {
  return compareBytes(c.ni, c.nr) <= 0 ? c.ni : c.nr;
}

export function processRekeyIkeResponse(
  w: Work,
  inner: readonly Payload[],
  task: Extract<IkeTask, { kind: 'rekey-ike' }>,
): void {
  const { ctx } = w;
  const old = w.s.current!;
  if (inner.some((p) => p.type === PayloadType.NOTIFY && 'notifyType' in p && p.notifyType < 16384)) {
    w.s.collision = undefined;
    // §1.3 / §2.18: retry once with the group the responder asked for, if we accept it.
    const invalidKe = findNotify(inner, NotifyError.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const group = decodeInvalidKe(invalidKe.data);
      if (group !== task.keGroup && ctx.policy.ikeProposals.some((x) => x.keyExchange.includes(group)))
        w.s.queue = [{ kind: 'rekey-ike', keGroup: group }, ...w.s.queue];
    }
    return;
  }
  const sa = requirePayload(inner, PayloadType.SA);
  const suite = acceptedIkeSuite(sa, ctx.policy.ikeProposals);
  const spiR = sa.proposals[0]!.spi;
  if (spiR.length !== 8) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'IKE rekey SPI size');
  const ke = requirePayload(inner, PayloadType.KE);
  if (ke.group !== task.keGroup)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'rekey KE group');
  const nr = nonceOf(inner);
  const secret = keComplete(keInitiation(ctx.provider, task.keGroup, task.keSeed), ke.data);
  const ours = rekeyedCore(w, old, 'initiator', suite, task.newSpi, copy(spiR), task.nonce, nr, secret);
  const theirs = w.s.collision;
  if (theirs && compareBytes(lowestNonce(ours), lowestNonce(theirs)) < 0) {
    // Ours is redundant: we delete it; the peer, whose SA won, deletes the old one.
    w.s.current = theirs;
    w.s.previous = old;
    w.s.collision = sendDeleteOn(w, ours);
  } else {
    // Ours won (or there was no collision): we delete the old SA; the peer deletes its redundant one.
    w.s.current = ours;
    w.s.previous = sendDeleteOn(w, old);
  }
  const now = w.s.current!;
  w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: now.spiI, newResponderSpi: now.spiR });
}

// --- responder dispatch --------------------------------------------------------------------------

/**
 * A CREATE_CHILD_SA request on the current SA. Returns the response payloads; for an IKE rekey
 * also the new SA, which the caller switches to after sending the response on the old one.
 */
export function respondCreateChildSa(
  w: Work,
  inner: readonly Payload[],
): { out: Payload[]; freshIke?: IkeSaCore } {
  const rekey = findNotify(inner, NotifyStatus.REKEY_SA);
  if (rekey && rekey.protocolId === ProtocolId.ESP)
    return { out: respondRekeyChild(w, inner, copy(rekey.spi)) };
  const sa = findPayload(inner, PayloadType.SA);
  if (sa?.proposals[0]?.protocolId === ProtocolId.IKE) {
    const r = respondRekeyIke(w, inner);
    return r.fresh ? { out: r.out, freshIke: r.fresh } : { out: r.out };
  }
  // New child SAs beyond the first are not offered by this implementation.
  return { out: [notify(NotifyError.NO_ADDITIONAL_SAS)] };
}
