/**
 * CREATE_CHILD_SA rekeying a child SA (RFC 7296 §1.3.3: REKEY_SA notify, optional PFS key
 * exchange), with simultaneous child rekey resolution (§2.8.1).
 *
 * The new child SA is installed by both sides; the rekey initiator then deletes the old one with
 * an INFORMATIONAL DELETE. When both ends rekey the same child at once, each installs the other's
 * new SA too; the one holding the lowest of the four nonces is redundant and its creator deletes
 * it, while the creator of the surviving one deletes the old SA.
 */
import {
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
import { scheduleChild, taskFailed } from '../sa/lifetimes.js';
import { sendRequest } from '../sa/task-manager.js';
import type { ChildSaState, IkeSaContext, IkeSaCore, IkeTask } from '../sa/types.js';
import {
  bytesEqual,
  compareBytes,
  copy,
  appended,
  copyPair,
  errorNotify,
  findNotify,
  findPayload,
  notify,
  reject,
  requirePayload,
  type Work,
} from '../sa/work.js';
import { acceptChild, acceptedChild, childKeys, installChild, tsPayloads } from './child-sa.js';
import { removeChild } from './informational.js';
import { NONCE_LENGTH } from './ike-init.js';
import { keComplete, keInitiation, keRespond } from './key-exchange.js';
import { ourSaPayload } from './sa-payloads.js';

export function nonceOf(payloads: readonly Payload[]): Uint8Array {
  const n = requirePayload(payloads, PayloadType.NONCE);
  if (verifyNonce(n) !== undefined)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'nonce length');
  return copy(n.data);
}

/** Our PFS group for child SAs: the first non-NONE key exchange of our first ESP proposal. */
function pfsGroup(ctx: IkeSaContext): number | undefined {
  return ctx.policy.espProposals[0]?.keyExchange?.find((g) => g !== 0);
}

function sentProposals(ctx: IkeSaContext, spi: Uint8Array, group: number | undefined) {
  return ourSaPayload(ctx.policy.espProposals, ProtocolId.ESP, spi, group).proposals;
}

// --- initiator -----------------------------------------------------------------------------------

export function startRekeyChild(w: Work, spi: Uint8Array): void {
  const { ctx } = w;
  const child = w.s.children.find((c) => bytesEqual(c.inboundSpi, spi));
  // The peer rekeyed it after our rekey was queued (behind another request of ours): its DELETE is
  // coming. A rekey of ours now would be a second replacement the peer never sees as a collision,
  // and both sides would keep both new child SAs for life (RFC 7296 §2.8: one rekey per child).
  // Unless the replacement is gone again (deleted): then this one is rekeyed as usual.
  const replacement = child?.replacedBy;
  if (!child || (replacement && w.s.children.some((c) => bytesEqual(c.inboundSpi, replacement)))) return;
  const newSpi = copy(ctx.allocateChildSpi());
  const nonce = copy(ctx.random(NONCE_LENGTH));
  const group = pfsGroup(ctx);
  const inner: Payload[] = [
    notify(NotifyStatus.REKEY_SA, new Uint8Array(0), ProtocolId.ESP, child.inboundSpi),
    { type: PayloadType.SA, critical: false, proposals: sentProposals(ctx, newSpi, group) },
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
  w.s.current = sendRequest(w, w.s.current!, ExchangeType.CREATE_CHILD_SA, inner, task);
}

export function processRekeyChildResponse(
  w: Work,
  inner: readonly Payload[],
  task: Extract<IkeTask, { kind: 'rekey-child' }>,
  core: IkeSaCore,
): void {
  const { ctx } = w;
  const error = errorNotify(inner);
  if (error) {
    reject(w, ExchangeType.CREATE_CHILD_SA, error.notifyType, 'peer');
    return taskFailed(w, task);
  }
  const a = acceptedChild(
    ctx,
    requirePayload(inner, PayloadType.SA),
    requirePayload(inner, PayloadType.TSi),
    requirePayload(inner, PayloadType.TSr),
    sentProposals(ctx, task.newSpi, task.keGroup),
  );
  const nr = nonceOf(inner);
  let secret: Uint8Array | undefined;
  if (a.suite.keyExchange !== undefined) {
    const ke = requirePayload(inner, PayloadType.KE);
    if (task.keSeed === undefined || ke.group !== task.keGroup || a.suite.keyExchange !== task.keGroup)
      throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'PFS group');
    secret = keComplete(keInitiation(ctx.provider, task.keGroup, task.keSeed), ke.data);
  }
  const old = w.s.children.find((c) => bytesEqual(c.inboundSpi, task.oldSpi));
  const child = scheduleChild(w, {
    inboundSpi: task.newSpi,
    outboundSpi: a.peerSpi,
    suite: a.suite,
    tsLocal: a.tsI,
    tsRemote: a.tsR,
    ...(old?.virtualIp ? { virtualIp: old.virtualIp } : {}),
  });
  w.s.children = appended(w.s.children, child);
  w.actions.push(
    installChild(child, childKeys(ctx, core, a.suite, task.nonce, nr, secret), true, task.oldSpi),
  );
  const collision = w.s.childCollisions?.find((c) => bytesEqual(c.oldSpi, task.oldSpi));
  if (collision) {
    w.s.childCollisions = w.s.childCollisions!.filter((c) => c !== collision);
    // §2.8.1: the new SA with the lowest of the four nonces is redundant; its creator deletes it,
    // and the creator of the surviving one deletes the old SA.
    if (compareBytes(lowest(task.nonce, nr), lowest(collision.ni, collision.nr)) < 0) {
      w.s.queue = [{ kind: 'delete-child', spi: task.newSpi }, ...w.s.queue];
      return;
    }
  }
  // §2.8: the initiator of the rekey deletes the old child SA once the new one is in place.
  if (old) w.s.queue = [{ kind: 'delete-child', spi: old.inboundSpi }, ...w.s.queue];
}

/** Whether a DELETE of our child `spi` is queued or outstanding on any core of the SA. */
function closing(w: Work, spi: Uint8Array): boolean {
  const deletes = (t: { kind: string; spi?: Uint8Array } | undefined) =>
    t?.kind === 'delete-child' && t.spi !== undefined && bytesEqual(t.spi, spi);
  return (
    w.s.queue.some(deletes) ||
    [w.s.current, w.s.previous, w.s.collision].some((c) => deletes(c?.outstanding?.task))
  );
}

function lowest(a: Uint8Array, b: Uint8Array): Uint8Array {
  return compareBytes(a, b) <= 0 ? a : b;
}

// --- responder -----------------------------------------------------------------------------------

export interface ChildRekeyAnswer {
  readonly out: Payload[];
  /** Set when we refused: the notify we answered with and a detail for the log line. */
  readonly rejected?: { readonly notify: number; readonly detail: string };
}

function refuse(notifyType: number, detail: string, spi?: Uint8Array): ChildRekeyAnswer {
  const n = spi ? notify(notifyType, new Uint8Array(0), ProtocolId.ESP, spi) : notify(notifyType);
  return { out: [n], rejected: { notify: notifyType, detail } };
}

/**
 * A CREATE_CHILD_SA request that rekeys a child SA (REKEY_SA for ESP), or undefined when the
 * request is something else. Returns the response payloads.
 * @throws RemoteProtocolError for a malformed request (missing nonce, SA or TS)
 */
export function respondRekeyChild(w: Work, inner: readonly Payload[]): ChildRekeyAnswer | undefined {
  const rekey = findNotify(inner, NotifyStatus.REKEY_SA);
  if (!rekey || rekey.protocolId !== ProtocolId.ESP) return undefined;
  const { ctx } = w;
  const core = w.s.current!;
  const old = w.s.children.find((c) => bytesEqual(c.outboundSpi, rekey.spi));
  if (!old)
    return refuse(NotifyError.CHILD_SA_NOT_FOUND, 'REKEY_SA names no child SA of ours', copy(rekey.spi));
  // RFC 7296 §2.25: a rekey of a child we are closing (our own rekey of it completed first, and
  // its DELETE is queued or on its way) is refused: accepting made a second, redundant child.
  if (closing(w, old.inboundSpi))
    return refuse(NotifyError.TEMPORARY_FAILURE, 'the child SA is being deleted', copy(rekey.spi));
  // The peer rekeys a child we already answered a rekey of: our answer never reached it (its IKE SA
  // went away under it), so the child we made then is unknown to the peer. It goes.
  if (old.replacedBy) removeChild(w, old.replacedBy, 'superseded');
  const ni = nonceOf(inner);
  const sa = requirePayload(inner, PayloadType.SA);
  const tsi = requirePayload(inner, PayloadType.TSi);
  const tsr = requirePayload(inner, PayloadType.TSr);
  let a;
  try {
    // If we asked for a virtual IP (CFG_REQUEST) it is ours; otherwise we assigned it to the peer.
    const host = ctx.policy.requestVirtualIp
      ? old.virtualIp
        ? { localHost: old.virtualIp }
        : {}
      : old.virtualIp
        ? { remoteHost: old.virtualIp }
        : {};
    a = acceptChild(ctx, sa, tsi, tsr, { ikeAuth: false, ...host });
  } catch (e) {
    if (
      !(e instanceof RemoteProtocolError) ||
      e.notify === undefined ||
      e.notify === NotifyError.INVALID_SYNTAX
    )
      throw e;
    return refuse(e.notify, e.message);
  }
  if (a.lenient) w.actions.push({ kind: 'lenient', what: a.lenient, exchange: 'CREATE_CHILD_SA' });
  const nr = copy(ctx.random(NONCE_LENGTH));
  const [inboundSpi, outboundSpi] = copyPair(ctx.allocateChildSpi(), a.peerSpi);
  const out: Payload[] = [
    { type: PayloadType.SA, critical: false, proposals: [{ ...a.proposal, spi: inboundSpi }] },
    { type: PayloadType.NONCE, critical: false, data: nr },
  ];
  let secret: Uint8Array | undefined;
  const group = a.suite.keyExchange;
  if (group !== undefined) {
    const ke = findPayload(inner, PayloadType.KE);
    if (!ke || ke.group !== group)
      return {
        out: [notify(NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(group))],
        rejected: {
          notify: NotifyError.INVALID_KE_PAYLOAD,
          detail: `PFS group ${ke?.group ?? 'none'}, chosen ${group}`,
        },
      };
    const r = keRespond(ctx.provider, group, ke.data, ctx.random);
    secret = r.sharedSecret;
    out.push({ type: PayloadType.KE, critical: false, group, data: r.publicData });
  }
  out.push(...tsPayloads(a.tsI, a.tsR));
  const child: ChildSaState = scheduleChild(w, {
    inboundSpi,
    outboundSpi,
    suite: a.suite,
    tsLocal: a.tsR,
    tsRemote: a.tsI,
    ...(old.virtualIp ? { virtualIp: old.virtualIp } : {}),
  });
  // The peer rekeyed it: we do not rekey the old one too; it expires if the peer never deletes it.
  w.s.children = appended(
    w.s.children.map((c) =>
      // Object.assign: a spread adding `replacedBy` would give the object its own hidden class
      // (see scheduleChild).
      bytesEqual(c.inboundSpi, old.inboundSpi)
        ? Object.assign({}, c, { rekeyAt: undefined, replacedBy: inboundSpi })
        : c,
    ),
    child,
  );
  w.actions.push(installChild(child, childKeys(ctx, core, a.suite, ni, nr, secret), false, old.inboundSpi));
  const ownTask = core.outstanding?.task;
  if (ownTask?.kind === 'rekey-child' && bytesEqual(ownTask.oldSpi, old.inboundSpi))
    w.s.childCollisions = [...(w.s.childCollisions ?? []), { oldSpi: old.inboundSpi, ni, nr }];
  return { out };
}
