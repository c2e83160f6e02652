/**
 * CREATE_CHILD_SA rekeying the IKE SA (RFC 7296 §1.3.2, §2.18), with simultaneous IKE SA rekey
 * resolution (§2.8.1).
 *
 * New SPIs, SKEYSEED = prf(SK_d(old), g^ir(new) | Ni | Nr) (with the old SA's PRF, as strongSwan
 * does; prf+ with the new suite's); children move to the new SA and the rekey initiator deletes
 * the old one on the old SA. No additional key exchanges (IKE_FOLLOWUP_KE is not implemented), so
 * rekeys are selected from our policies without ADDKE transforms.
 *
 * Collision: when both ends start an IKE rekey at once, each answers the other's request and ends
 * up with two new SAs. The one holding the lowest of the four nonces is redundant: the side that
 * created it deletes it, and the other side (the winner's initiator) deletes the old SA.
 */
import { deriveRekeySkeyseed } from '@ikegate/crypto';
import {
  decodeInvalidKe,
  encodeInvalidKe,
  ExchangeType,
  NotifyError,
  type Payload,
  PayloadType,
  ProtocolId,
} from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import {
  checkChosenProposal,
  deriveIkeSaKeysForSuite,
  type NegotiatedSuite,
  selectProposal,
} from '../negotiation/index.js';
import { holdPrevious, scheduleIkeSa, taskFailed } from '../sa/lifetimes.js';
import { enqueue, sendRequest } from '../sa/task-manager.js';
import type { IkeSaContext, IkeSaCore, IkeTask } from '../sa/types.js';
import {
  compareBytes,
  copy,
  copyPair,
  errorNotify,
  findNotify,
  notify,
  reject,
  requirePayload,
  type Work,
} from '../sa/work.js';
import { nonceOf } from './child-rekey.js';
import { NONCE_LENGTH } from './ike-init.js';
import { sendDeleteOn } from './informational.js';
import { keComplete, keInitiation, keRespond, prfOf } from './key-exchange.js';
import { chosenSaPayload, describeProposals, ourSaPayload, withoutAdditionalKe } from './sa-payloads.js';

function sentProposals(ctx: IkeSaContext, spi: Uint8Array, group: number) {
  return ourSaPayload(withoutAdditionalKe(ctx.policy.ikeProposals), ProtocolId.IKE, spi, group).proposals;
}

// --- initiator -----------------------------------------------------------------------------------

export function startRekeyIke(w: Work, keGroup?: number): void {
  const { ctx } = w;
  const core = w.s.current!;
  const newSpi = copy(ctx.allocateIkeSpi());
  const nonce = copy(ctx.random(NONCE_LENGTH));
  const keSeed = copy(ctx.random(64));
  const group = keGroup ?? core.suite.keyExchange!;
  const inner: Payload[] = [
    { type: PayloadType.SA, critical: false, proposals: sentProposals(ctx, newSpi, group) },
    { type: PayloadType.NONCE, critical: false, data: nonce },
    {
      type: PayloadType.KE,
      critical: false,
      group,
      data: keInitiation(ctx.provider, group, keSeed).publicData,
    },
  ];
  w.s.current = sendRequest(w, core, ExchangeType.CREATE_CHILD_SA, inner, {
    kind: 'rekey-ike',
    newSpi,
    nonce,
    keSeed,
    keGroup: group,
  });
}

function rekeyedCore(
  w: Work,
  old: IkeSaCore,
  role: 'initiator' | 'responder',
  suite: NegotiatedSuite,
  spiI: Uint8Array,
  spiR: Uint8Array,
  ni: Uint8Array,
  nr: Uint8Array,
  secret: Uint8Array,
): IkeSaCore {
  const { provider } = w.ctx;
  // §2.18 with the old SA's PRF for SKEYSEED (as strongSwan does), the new one for prf+.
  const seed = deriveRekeySkeyseed(prfOf(provider, old.suite.prf), old.keys.skD, secret, ni, nr);
  return {
    role,
    spiI,
    spiR,
    suite,
    keys: deriveIkeSaKeysForSuite(provider, suite, seed, ni, nr, spiI, spiR),
    ni,
    nr,
    nextRequestId: 0,
    expectedRequestId: 0,
    ...(old.fragmentation ? { fragmentation: true } : {}),
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
  const error = errorNotify(inner);
  if (error) {
    const theirs = w.s.collision;
    w.s.collision = undefined;
    reject(w, ExchangeType.CREATE_CHILD_SA, error.notifyType, 'peer');
    if (theirs) {
      // We answered the peer's rekey of this SA while ours was outstanding, and the peer refused
      // ours: its rekey completed on its side first, and ours reached the SA it is deleting
      // (RFC 7296 §2.25: TEMPORARY_FAILURE). The SA we answered is the one both sides hold: switch
      // to it; the peer deletes the old one, which we keep to answer that DELETE (§2.8.1, §2.18).
      // Dropping it instead left us on the old SA, and the peer's DELETE of that ended the IKE SA.
      w.s.current = theirs;
      holdPrevious(w, old);
      scheduleIkeSa(w);
      w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: theirs.spiI, newResponderSpi: theirs.spiR });
      return;
    }
    // §1.3 / §2.18: retry once with the group the responder asked for, if we accept it.
    const invalidKe = findNotify(inner, NotifyError.INVALID_KE_PAYLOAD);
    if (invalidKe) {
      const group = decodeInvalidKe(invalidKe.data);
      if (group !== task.keGroup && ctx.policy.ikeProposals.some((x) => x.keyExchange?.includes(group))) {
        enqueue(w, { kind: 'rekey-ike', keGroup: group }, true);
        return;
      }
    }
    return taskFailed(w, task);
  }
  const sa = requirePayload(inner, PayloadType.SA);
  const check = checkChosenProposal(
    sa.proposals,
    sentProposals(ctx, task.newSpi, task.keGroup),
    ProtocolId.IKE,
  );
  if (check.kind !== 'ok')
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_NO_PROPOSAL',
      check.reason,
      NotifyError.NO_PROPOSAL_CHOSEN,
    );
  if (check.peerSpi.length !== 8)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'IKE rekey SPI size');
  const ke = requirePayload(inner, PayloadType.KE);
  if (ke.group !== task.keGroup || check.suite.keyExchange !== task.keGroup)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'rekey KE group');
  const nr = nonceOf(inner);
  const secret = keComplete(keInitiation(ctx.provider, task.keGroup, task.keSeed), ke.data);
  const ours = rekeyedCore(
    w,
    old,
    'initiator',
    check.suite,
    task.newSpi,
    copy(check.peerSpi),
    task.nonce,
    nr,
    secret,
  );
  // A collision SA we answered stays in `collision` while ours wins: the peer deletes it there.
  const theirs = w.s.collision;
  if (theirs && compareBytes(lowestNonce(ours), lowestNonce(theirs)) < 0) {
    // Ours is redundant: we delete it; the peer, whose SA won, deletes the old one.
    w.s.current = theirs;
    holdPrevious(w, old);
    w.s.collision = sendDeleteOn(w, ours);
  } else {
    // Ours won (or there was no collision): we delete the old SA; the peer deletes its redundant one.
    w.s.current = ours;
    holdPrevious(w, sendDeleteOn(w, old));
  }
  const now = w.s.current!;
  scheduleIkeSa(w);
  w.actions.push({ kind: 'rekeyed-ike', newInitiatorSpi: now.spiI, newResponderSpi: now.spiR });
}

// --- responder -----------------------------------------------------------------------------------

export interface IkeRekeyAnswer {
  readonly out: Payload[];
  /** The new SA when we accepted: the caller switches to it after answering on the old one. */
  readonly fresh?: IkeSaCore;
  readonly rejected?: { readonly notify: number; readonly detail: string };
}

/**
 * A CREATE_CHILD_SA request that rekeys the IKE SA (its SA payload proposes protocol IKE), or
 * undefined when it is something else. @throws RemoteProtocolError for a malformed request
 */
export function respondRekeyIke(w: Work, inner: readonly Payload[]): IkeRekeyAnswer | undefined {
  const sa = inner.find((p) => p.type === PayloadType.SA && !('unknown' in p)) as
    Extract<Payload, { type: typeof PayloadType.SA }> | undefined;
  if (sa?.proposals[0]?.protocolId !== ProtocolId.IKE) return undefined;
  const { ctx } = w;
  const old = w.s.current!;
  // The SA an earlier rekey replaced is still being deleted: a third generation would push it out
  // with whatever request of ours is outstanding on it. Try again later (RFC 7296 §2.25).
  if (w.s.previous)
    return {
      out: [notify(NotifyError.TEMPORARY_FAILURE)],
      rejected: {
        notify: NotifyError.TEMPORARY_FAILURE,
        detail: 'the previous IKE SA is still being deleted',
      },
    };
  // Our rekey or delete of a child is outstanding on this SA: were we to answer, the peer would
  // delete this SA before that request's answer reached us. A child the peer made for our rekey
  // would then be known to it alone, and kept for life when its old child was gone meanwhile (the
  // peer won a child rekey collision). A rekeying operation is a temporary condition (RFC 7296
  // §2.25): the peer tries again once ours is done, as strongSwan does for a half-open child.
  // And an IKE SA we are closing is not rekeyed (§2.25.2): answering moved us to a new SA that our
  // DELETE, sent on the old one, does not close, and that the peer drops once it takes the DELETE.
  const mine = old.outstanding?.task.kind;
  if (mine === 'rekey-child' || mine === 'delete-child' || mine === 'delete-ike')
    return {
      out: [notify(NotifyError.TEMPORARY_FAILURE)],
      rejected: {
        notify: NotifyError.TEMPORARY_FAILURE,
        detail: `our ${mine} request is outstanding on the IKE SA`,
      },
    };
  const ke = requirePayload(inner, PayloadType.KE);
  const ni = nonceOf(inner);
  const selected = selectProposal(
    sa.proposals,
    withoutAdditionalKe(ctx.policy.ikeProposals),
    ProtocolId.IKE,
    'ours',
    {
      preferKeyExchange: ke.group,
    },
  );
  if (selected.kind === 'none')
    return {
      out: [notify(NotifyError.NO_PROPOSAL_CHOSEN)],
      rejected: {
        notify: NotifyError.NO_PROPOSAL_CHOSEN,
        detail: `offered ${describeProposals(sa.proposals)}`,
      },
    };
  if (selected.peerSpi.length !== 8)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'IKE rekey SPI size');
  const group = selected.suite.keyExchange!;
  if (ke.group !== group)
    return {
      out: [notify(NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(group))],
      rejected: {
        notify: NotifyError.INVALID_KE_PAYLOAD,
        detail: `KE payload group ${ke.group}, chosen ${group}`,
      },
    };
  if (selected.lenient)
    w.actions.push({ kind: 'lenient', what: selected.lenient, exchange: 'CREATE_CHILD_SA' });
  const r = keRespond(ctx.provider, group, ke.data, ctx.random);
  const nr = copy(ctx.random(NONCE_LENGTH));
  const [spiI, spiR] = copyPair(selected.peerSpi, ctx.allocateIkeSpi());
  const fresh = rekeyedCore(w, old, 'responder', selected.suite, spiI, spiR, ni, nr, r.sharedSecret);
  scheduleIkeSa(w);
  return {
    out: [
      chosenSaPayload(selected.proposal, spiR),
      { type: PayloadType.NONCE, critical: false, data: nr },
      { type: PayloadType.KE, critical: false, group, data: r.publicData },
    ],
    fresh,
  };
}
