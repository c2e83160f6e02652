/**
 * IKE_SA_INIT (RFC 7296 §1.2, §2.6 cookies, §1.3 / §2.7 INVALID_KE_PAYLOAD and
 * NO_PROPOSAL_CHOSEN, §2.23 NAT detection, §2.14 key derivation). Initiator and responder halves
 * side by side. The exchange is unprotected; once it completes both sides hold an IkeSaCore with
 * the seven SK_* keys, and the initiator goes on to IKE_INTERMEDIATE or IKE_AUTH.
 *
 * The responder half is split in two for the endpoint (../endpoint): `screenInitRequest` decides,
 * without keeping anything, whether a request is answered statelessly (NO_PROPOSAL_CHOSEN,
 * INVALID_KE_PAYLOAD) or accepted; only an accepted one becomes state, in `respondInit`.
 *
 * Everything an IKE_SA_INIT response says is unauthenticated. The initiator acts at once only on
 * what RFC 7296 §2.21.1 defines a corrective action for (COOKIE, INVALID_KE_PAYLOAD); another error
 * notify over UDP is remembered and acted on at the next retransmission deadline if no real
 * response came meanwhile, so one forged datagram cannot end a setup. Over TCP it is acted on at
 * once (PROTOCOL.md: errors in IKE_SA_INIT over TCP).
 */
import {
  decodeCookie,
  decodeInvalidKe,
  decodeNatDetection,
  encodeInvalidKe,
  encodeMessage,
  ExchangeType,
  HeaderFlag,
  type IkeMessage,
  type KePayload,
  NotifyError,
  NotifyStatus,
  type NoncePayload,
  type Payload,
  PayloadType,
  type Proposal,
  ProtocolId,
  verifyNonce,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { deriveSkeyseed } from '@ikegate/crypto';
import {
  buildNatDetection,
  checkChosenProposal,
  deriveIkeSaKeysForSuite,
  evaluateNatDetection,
  type NegotiatedSuite,
  selectProposal,
} from '../negotiation/index.js';
import {
  backoffAt,
  digest,
  retransmissionAnswerable,
  retransmitPolicy,
  sourceOf,
} from '../sa/task-manager.js';
import type { IkeInitData, IkePath, IkeSaContext, IkeSaState, StepResult } from '../sa/types.js';
import {
  copy,
  copyPair,
  errorNotify,
  findNotify,
  findPayload,
  notifies,
  notify,
  notifyReason,
  reject,
  requirePayload,
  type Work,
} from '../sa/work.js';
import { certInitPayloads, peerSignatureHashes } from './certificates.js';
import { startAuth } from './ike-auth.js';
import { startIntermediate } from './intermediate.js';
import { keComplete, keInitiation, keRespond, prfOf } from './key-exchange.js';
import { chosenSaPayload, describeProposals, ourSaPayload, withoutAdditionalKe } from './sa-payloads.js';
import { terminate } from './informational.js';
import { createIkeSa } from '../sa/state.js';

export const NONCE_LENGTH = 32;
export const DEFAULT_HALF_OPEN_MS = 30_000;
const MAX_INIT_RETRIES = 3;
const ZERO_SPI = new Uint8Array(8);

function natPayloads(ctx: IkeSaContext, spiI: Uint8Array, spiR: Uint8Array, path: IkePath): Payload[] {
  const d = buildNatDetection(ctx.provider, spiI, spiR, path.local, path.remote);
  return [
    notify(NotifyStatus.NAT_DETECTION_SOURCE_IP, d.source),
    notify(NotifyStatus.NAT_DETECTION_DESTINATION_IP, d.destination),
  ];
}

/** RFC 7296 §2.23: NAT between us if the peer's hashes of the addresses and ports differ from ours. */
function detectNat(
  w: Work,
  payloads: readonly Payload[],
  spiI: Uint8Array,
  spiR: Uint8Array,
  path: IkePath,
): void {
  const sources: Uint8Array[] = [];
  let destination: Uint8Array | undefined;
  for (const n of notifies(payloads)) {
    try {
      if (n.notifyType === NotifyStatus.NAT_DETECTION_SOURCE_IP) sources.push(decodeNatDetection(n.data));
      if (n.notifyType === NotifyStatus.NAT_DETECTION_DESTINATION_IP)
        destination = decodeNatDetection(n.data);
    } catch (e) {
      if (!(e instanceof RemoteProtocolError)) throw e;
    }
  }
  const r = evaluateNatDetection(w.ctx.provider, spiI, spiR, path.local, path.remote, sources, destination);
  w.s.natRemote = r.remoteBehindNat;
  w.s.natLocal = r.localBehindNat;
}

/** SKEYSEED and the seven SK_* keys (RFC 7296 §2.14). */
export function deriveInitKeys(
  ctx: IkeSaContext,
  suite: NegotiatedSuite,
  ni: Uint8Array,
  nr: Uint8Array,
  secret: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
) {
  const seed = deriveSkeyseed(prfOf(ctx.provider, suite.prf), ni, nr, secret);
  return deriveIkeSaKeysForSuite(ctx.provider, suite, seed, ni, nr, spiI, spiR);
}

/** RFC 9370: some proposal of ours has an additional key exchange (so we need RFC 9242). */
function offersAdditionalKe(ctx: IkeSaContext): boolean {
  return ctx.policy.ikeProposals.some((p) =>
    (p.additionalKeyExchanges ?? []).some((l) => l.some((g) => g !== 0)),
  );
}

// --- initiator -----------------------------------------------------------------------------------

function initRequest(w: Work, init: IkeInitData, path: IkePath): Uint8Array {
  const { ctx } = w;
  if (init.keSeed === undefined) throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'no KE seed');
  const ke = keInitiation(ctx.provider, init.keGroup, init.keSeed);
  const payloads: Payload[] = [];
  if (init.cookie) payloads.push(notify(NotifyStatus.COOKIE, init.cookie));
  const policies = offersAdditionalKe(ctx)
    ? ctx.policy.ikeProposals
    : withoutAdditionalKe(ctx.policy.ikeProposals);
  payloads.push(
    ourSaPayload(policies, ProtocolId.IKE, new Uint8Array(0), init.keGroup),
    { type: PayloadType.KE, critical: false, group: init.keGroup, data: ke.publicData },
    { type: PayloadType.NONCE, critical: false, data: init.ni },
    ...natPayloads(ctx, init.spiI, ZERO_SPI, path),
  );
  if (ctx.policy.fragmentation ?? true) payloads.push(notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED));
  payloads.push(...certInitPayloads(ctx, false));
  if (offersAdditionalKe(ctx)) payloads.push(notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED));
  return encodeMessage(
    {
      initiatorSpi: init.spiI,
      responderSpi: ZERO_SPI,
      exchangeType: ExchangeType.IKE_SA_INIT,
      flags: HeaderFlag.INITIATOR,
      messageId: 0,
    },
    payloads,
  );
}

function sendInit(w: Work, init: IkeInitData): void {
  const path = w.s.path!;
  const request = initRequest(w, init, path);
  w.s.init = { ...init, request, retransmits: 0, retransmitAt: backoffAt(w.ctx, w.now, 0) };
  w.s.status = 'init-sent';
  w.actions.push({ kind: 'send', bytes: request, path });
}

/** The sent proposals, as checkChosenProposal needs them (deterministic from the policy). */
function sentProposals(w: Work, keGroup: number): readonly Proposal[] {
  const policies = offersAdditionalKe(w.ctx)
    ? w.ctx.policy.ikeProposals
    : withoutAdditionalKe(w.ctx.policy.ikeProposals);
  return ourSaPayload(policies, ProtocolId.IKE, new Uint8Array(0), keGroup).proposals;
}

export function startInit(w: Work): void {
  const first = w.ctx.policy.ikeProposals[0]?.keyExchange?.[0];
  if (first === undefined) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'no IKE proposal');
  sendInit(w, {
    spiI: copy(w.ctx.allocateIkeSpi()),
    spiR: ZERO_SPI,
    ni: copy(w.ctx.random(NONCE_LENGTH)),
    keGroup: first,
    keSeed: copy(w.ctx.random(64)),
    retries: 0,
  });
}

/** The IKE_SA_INIT request's retransmission schedule (silent checks over TCP, RFC 9329 §2). */
export function onInitTimer(w: Work): void {
  const init = w.s.init;
  if (!init?.request || init.retransmitAt === undefined || w.now < init.retransmitAt) return;
  if (init.peerError !== undefined) return terminate(w, initFailure(init.peerError));
  const n = (init.retransmits ?? 0) + 1;
  if (n > retransmitPolicy(w.ctx).maxRetransmits) return terminate(w, 'dead-peer');
  w.s.init = { ...init, retransmits: n, retransmitAt: backoffAt(w.ctx, w.now, n) };
  const path = w.s.path;
  if (path && path.transport === 'udp' && w.s.disconnectedAt === undefined)
    w.actions.push({ kind: 'send', bytes: init.request, path });
}

function initFailure(notifyType: number) {
  return notifyType === NotifyError.NO_PROPOSAL_CHOSEN
    ? ('no-proposal-chosen' as const)
    : ('error-notify' as const);
}

export function processInitResponse(w: Work, raw: Uint8Array, msg: IkeMessage): void {
  const init = w.s.init;
  const h = msg.header;
  if (
    w.s.status !== 'init-sent' ||
    !init ||
    w.s.current !== undefined ||
    h.messageId !== 0 ||
    (h.flags & HeaderFlag.INITIATOR) !== 0 ||
    !bytesOf(h.initiatorSpi, init.spiI)
  ) {
    w.actions.push({ kind: 'dropped', reason: 'unexpected-init-response' });
    return;
  }
  const p = msg.payloads;
  const cookie = findNotify(p, NotifyStatus.COOKIE);
  if (cookie && init.retries < MAX_INIT_RETRIES) {
    // RFC 7296 §2.6: retry with the cookie first and everything else unchanged.
    sendInit(w, { ...init, cookie: copy(decodeCookie(cookie.data)), retries: init.retries + 1 });
    return;
  }
  const invalidKe = findNotify(p, NotifyError.INVALID_KE_PAYLOAD);
  if (invalidKe && init.retries < MAX_INIT_RETRIES) {
    const group = decodeInvalidKe(invalidKe.data);
    const acceptable = w.ctx.policy.ikeProposals.some((x) => x.keyExchange?.includes(group));
    if (acceptable && group !== init.keGroup) {
      sendInit(w, { ...init, keGroup: group, keSeed: copy(w.ctx.random(64)), retries: init.retries + 1 });
      return;
    }
  }
  const error = errorNotify(p);
  if (error) {
    reject(w, ExchangeType.IKE_SA_INIT, error.notifyType, 'peer');
    // RFC 7296 §2.21.1: unauthenticated; over UDP wait for a real answer until the next deadline.
    if (w.from?.transport === 'tcp') return terminate(w, initFailure(error.notifyType));
    w.s.init = { ...init, peerError: error.notifyType };
    return;
  }
  const check = checkChosenProposal(
    requirePayload(p, PayloadType.SA).proposals,
    sentProposals(w, init.keGroup),
    ProtocolId.IKE,
  );
  if (check.kind !== 'ok') {
    w.actions.push({ kind: 'dropped', reason: 'bad-init-proposal' });
    return;
  }
  const suite = check.suite;
  const ke = requirePayload(p, PayloadType.KE);
  const nonce = requirePayload(p, PayloadType.NONCE);
  if (verifyNonce(nonce) !== undefined) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'nonce');
  if (ke.group !== suite.keyExchange || suite.keyExchange !== init.keGroup)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'KE group mismatch');
  const spiR = copy(h.responderSpi);
  const secret = keComplete(keInitiation(w.ctx.provider, init.keGroup, init.keSeed!), ke.data);
  const nr = copy(nonce.data);
  detectNat(w, p, init.spiI, spiR, w.from ?? w.s.path!);
  // RFC 7383 §2.3: fragmentation is used only when both sides announced it.
  const fragmentation =
    (w.ctx.policy.fragmentation ?? true) &&
    findNotify(p, NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
  const hashes = peerSignatureHashes(p);
  w.s.init = {
    ...(hashes ? { peerSignatureHashes: hashes } : {}),
    spiI: init.spiI,
    spiR,
    ni: init.ni,
    nr,
    keGroup: init.keGroup,
    request: init.request!,
    response: copy(raw),
    retries: 0,
  };
  w.s.current = {
    role: 'initiator',
    spiI: init.spiI,
    spiR,
    suite,
    keys: deriveInitKeys(w.ctx, suite, init.ni, nr, secret, init.spiI, spiR),
    ni: init.ni,
    nr,
    nextRequestId: 1,
    expectedRequestId: 0,
    ...(fragmentation ? { fragmentation } : {}),
  };
  // RFC 9370 §2.2.2: an additional key exchange runs in IKE_INTERMEDIATE before IKE_AUTH.
  if (suite.additionalKeyExchanges.length > 0) startIntermediate(w);
  else startAuth(w);
}

function bytesOf(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

// --- responder -----------------------------------------------------------------------------------

function unprotectedResponse(spiI: Uint8Array, spiR: Uint8Array, payloads: Payload[]): Uint8Array {
  return encodeMessage(
    {
      initiatorSpi: spiI,
      responderSpi: spiR,
      exchangeType: ExchangeType.IKE_SA_INIT,
      flags: HeaderFlag.RESPONSE,
      messageId: 0,
    },
    payloads,
  );
}

/** A stateless IKE_SA_INIT response carrying one notify (COOKIE, INVALID_KE_PAYLOAD, ...). */
export function notifyInitResponse(spiI: Uint8Array, notifyType: number, data?: Uint8Array): Uint8Array {
  return unprotectedResponse(spiI, ZERO_SPI, [notify(notifyType, data)]);
}

export interface AcceptedInit {
  readonly proposal: Proposal;
  readonly suite: NegotiatedSuite;
  readonly ke: KePayload;
  readonly nonce: NoncePayload;
  readonly peerIntermediate: boolean;
  readonly lenient?: 'aead-with-integrity';
}

export type InitScreen =
  | { readonly kind: 'accept'; readonly accepted: AcceptedInit }
  /** Answer statelessly with `bytes`; `reason` is the rejection label, `detail` for the log. */
  | { readonly kind: 'reply'; readonly bytes: Uint8Array; readonly reason: string; readonly detail: string }
  | { readonly kind: 'drop'; readonly reason: string };

/**
 * Responder, before any state: checks the header and payloads of an IKE_SA_INIT request, selects
 * a proposal (negotiation/proposals.ts, RFC 7296 §3.3.6, RFC 9370) and checks the KE group.
 * Keeps and allocates nothing; the COOKIE check (RFC 7296 §2.6) is the endpoint's, before this.
 */
export function screenInitRequest(ctx: IkeSaContext, msg: IkeMessage): InitScreen {
  const h = msg.header;
  const p = msg.payloads;
  if (h.messageId !== 0 || !bytesOf(h.responderSpi, ZERO_SPI) || (h.flags & HeaderFlag.INITIATOR) === 0)
    return { kind: 'drop', reason: 'bad-init-request' };
  const sa = findPayload(p, PayloadType.SA);
  const ke = findPayload(p, PayloadType.KE);
  const nonce = findPayload(p, PayloadType.NONCE);
  if (!sa || !ke || !nonce) return { kind: 'drop', reason: 'init-missing-payload' };
  if (verifyNonce(nonce) !== undefined) return { kind: 'drop', reason: 'init-bad-nonce' };
  // RFC 9242 §3: IKE_INTERMEDIATE only when both announced it.
  const peerIntermediate =
    findNotify(p, NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED) !== undefined && offersAdditionalKe(ctx);
  const policies = peerIntermediate ? ctx.policy.ikeProposals : withoutAdditionalKe(ctx.policy.ikeProposals);
  const selected = selectProposal(sa.proposals, policies, ProtocolId.IKE, 'ours', {
    preferKeyExchange: ke.group,
  });
  if (selected.kind === 'none')
    return {
      kind: 'reply',
      bytes: notifyInitResponse(h.initiatorSpi, NotifyError.NO_PROPOSAL_CHOSEN),
      reason: notifyReason(NotifyError.NO_PROPOSAL_CHOSEN),
      detail: `offered ${describeProposals(sa.proposals)}`,
    };
  const group = selected.suite.keyExchange!;
  if (ke.group !== group)
    return {
      kind: 'reply',
      bytes: notifyInitResponse(h.initiatorSpi, NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(group)),
      reason: notifyReason(NotifyError.INVALID_KE_PAYLOAD),
      detail: `KE payload group ${ke.group}, chosen ${group}`,
    };
  return {
    kind: 'accept',
    accepted: {
      proposal: selected.proposal,
      suite: selected.suite,
      ke,
      nonce,
      peerIntermediate,
      ...(selected.lenient ? { lenient: selected.lenient } : {}),
    },
  };
}

/**
 * Responder: a new half-open IKE SA answering an accepted IKE_SA_INIT request on `path`.
 * @throws RemoteProtocolError when the peer's KE data is unusable (the endpoint drops it)
 */
export function respondInit(
  ctx: IkeSaContext,
  raw: Uint8Array,
  msg: IkeMessage,
  a: AcceptedInit,
  path: IkePath,
  now: number,
  halfOpenMs: number,
): StepResult {
  const p = msg.payloads;
  const { publicData, sharedSecret } = keRespond(ctx.provider, a.suite.keyExchange!, a.ke.data, ctx.random);
  // One buffer for both SPIs: a held SA keeps one ArrayBuffer for them, not two (issue #14).
  const [spiI, spiR] = copyPair(msg.header.initiatorSpi, ctx.allocateIkeSpi());
  const ni = copy(a.nonce.data);
  const nr = copy(ctx.random(NONCE_LENGTH));
  // RFC 7383 §2.3: answer the announcement only if we support fragmentation too.
  const fragmentation =
    (ctx.policy.fragmentation ?? true) &&
    findNotify(p, NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
  const response = unprotectedResponse(spiI, spiR, [
    chosenSaPayload(a.proposal, new Uint8Array(0)),
    { type: PayloadType.KE, critical: false, group: a.suite.keyExchange!, data: publicData },
    { type: PayloadType.NONCE, critical: false, data: nr },
    ...natPayloads(ctx, spiI, spiR, path),
    ...(fragmentation ? [notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
    ...certInitPayloads(ctx, true),
    ...(a.peerIntermediate ? [notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)] : []),
  ]);
  const hashes = peerSignatureHashes(p);
  const state: IkeSaState = {
    ...createIkeSa(now),
    status: 'init-answered',
    path,
    halfOpenExpiresAt: now + halfOpenMs,
    init: {
      spiI,
      spiR,
      ni,
      nr,
      keGroup: a.suite.keyExchange!,
      request: copy(raw),
      response,
      requestDigest: digest(ctx, raw),
      retries: 0,
      ...(hashes ? { peerSignatureHashes: hashes } : {}),
    },
    current: {
      role: 'responder',
      spiI,
      spiR,
      suite: a.suite,
      keys: deriveInitKeys(ctx, a.suite, ni, nr, sharedSecret, spiI, spiR),
      ni,
      nr,
      nextRequestId: 0,
      expectedRequestId: 1,
      ...(fragmentation ? { fragmentation } : {}),
    },
  };
  const w: Work = { s: { ...state }, actions: [], ctx, now, from: path };
  detectNat(w, p, spiI, new Uint8Array(8), path);
  w.actions.push({ kind: 'send', bytes: response, path }, { kind: 'persist' });
  return { state: w.s, actions: w.actions };
}

/**
 * Responder: an IKE_SA_INIT request for a half-open SA we hold (same SPIi, same peer address).
 * Its retransmission (identical octets, from where the original came) gets the same response
 * (RFC 7296 §2.1); anything else is dropped.
 */
export function onInitRequestAgain(w: Work, raw: Uint8Array, msg: IkeMessage): void {
  const init = w.s.init;
  const from = w.from;
  if (
    w.s.status !== 'init-answered' ||
    !init?.response ||
    !init.requestDigest ||
    !from ||
    !w.s.path ||
    !bytesOf(msg.header.initiatorSpi, init.spiI)
  )
    return void w.actions.push({ kind: 'dropped', reason: 'unexpected-init-request' });
  if (!bytesOf(digest(w.ctx, raw), init.requestDigest))
    return void w.actions.push({ kind: 'dropped', reason: 'unexpected-init-request' });
  const origin = sourceOf(w.s.path);
  // The original's own path counts too: a UDP retransmission comes on the same tuple.
  if (origin.pathId !== from.id && !retransmissionAnswerable(origin, from))
    return void w.actions.push({ kind: 'dropped', reason: 'retransmission-from-elsewhere' });
  if (from.transport === 'tcp' && origin.pathId === from.id)
    return void w.actions.push({ kind: 'dropped', reason: 'retransmission-on-stream' });
  w.actions.push({ kind: 'send', bytes: init.response, path: from });
}
