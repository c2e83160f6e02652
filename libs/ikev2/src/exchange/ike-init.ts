/**
 * IKE_SA_INIT (RFC 7296 §1.2, §2.6 cookies, §1.3 / §2.7 INVALID_KE_PAYLOAD and
 * NO_PROPOSAL_CHOSEN, §2.23 NAT detection, §2.14 key derivation). Initiator and responder halves
 * side by side. The exchange is unprotected; once it completes both sides hold an IkeSaCore with
 * the seven SK_* keys, and the initiator goes straight on to IKE_AUTH.
 */
import { deriveIkeSaKeys, deriveSkeyseed, PrfId } from '@ikegate/crypto';
import {
  decodeCookie,
  decodeInvalidKe,
  decodeNatDetection,
  encodeInvalidKe,
  encodeMessage,
  ExchangeType,
  HeaderFlag,
  type IkeMessage,
  NotifyError,
  NotifyStatus,
  type Payload,
  PayloadType,
  verifyNonce,
} from '../codec/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { certInitPayloads, peerSignatureHashes } from './certificates.js';
import { startAuth } from './ike-auth.js';
import { startIntermediate } from './intermediate.js';
import { DEFAULT_RETRANSMIT } from './message-window.js';
import {
  acceptedIkeSuite,
  bytesEqual,
  ikeKeyLengths,
  ikeSaPayload,
  ikeSuiteSaPayload,
  keComplete,
  keInitiation,
  keRespond,
  prfOf,
  selectIkeSuite,
} from './suite.js';
import type { Endpoint, IkeInitData, IkeKeys, IkeSaContext, IkeSuite } from './types.js';
import { copy, errorNotify, findNotify, notify, requirePayload, type Work } from './work.js';

export const NONCE_LENGTH = 32;
export const INIT_TIMER_ID = 'retransmit:init';
export const HALF_OPEN_TIMER_ID = 'half-open';
export const DEFAULT_HALF_OPEN_MS = 30_000;
const MAX_INIT_RETRIES = 3;
const ZERO_SPI = new Uint8Array(8);

function natHash(ctx: IkeSaContext, spiI: Uint8Array, spiR: Uint8Array, e: Endpoint): Uint8Array {
  return ctx.provider.hash('sha1', spiI, spiR, e.address, Uint8Array.of(e.port >>> 8, e.port & 0xff));
}

function natPayloads(ctx: IkeSaContext, spiI: Uint8Array, spiR: Uint8Array): Payload[] {
  return [
    notify(NotifyStatus.NAT_DETECTION_SOURCE_IP, natHash(ctx, spiI, spiR, ctx.local)),
    notify(NotifyStatus.NAT_DETECTION_DESTINATION_IP, natHash(ctx, spiI, spiR, ctx.remote)),
  ];
}

/** RFC 7296 §2.23: NAT between us if the peer's hash of our address/port differs from ours. */
function detectNat(w: Work, payloads: readonly Payload[], spiI: Uint8Array, spiR: Uint8Array): void {
  const src = findNotify(payloads, NotifyStatus.NAT_DETECTION_SOURCE_IP);
  const dst = findNotify(payloads, NotifyStatus.NAT_DETECTION_DESTINATION_IP);
  if (!src || !dst) return;
  w.s.natRemote = !bytesEqual(decodeNatDetection(src.data), natHash(w.ctx, spiI, spiR, w.ctx.remote));
  w.s.natLocal = !bytesEqual(decodeNatDetection(dst.data), natHash(w.ctx, spiI, spiR, w.ctx.local));
}

function deriveKeys(
  ctx: IkeSaContext,
  suite: IkeSuite,
  ni: Uint8Array,
  nr: Uint8Array,
  secret: Uint8Array,
  spiI: Uint8Array,
  spiR: Uint8Array,
): IkeKeys {
  const prf = prfOf(ctx.provider, suite.prf);
  const seed = deriveSkeyseed(prf, ni, nr, secret);
  return deriveIkeSaKeys(prf, seed, ni, nr, spiI, spiR, ikeKeyLengths(ctx.provider, suite));
}

export { deriveKeys as deriveIkeKeys };

/** RFC 9370: some proposal of ours has an additional key exchange (so we need RFC 9242). */
function offersAdditionalKe(ctx: IkeSaContext): boolean {
  return ctx.policy.ikeProposals.some((p) => (p.additionalKeyExchange1 ?? []).some((g) => g !== 0));
}

// --- initiator -----------------------------------------------------------------------------------

function initRequest(w: Work, init: IkeInitData): Uint8Array {
  const { ctx } = w;
  if (init.keSeed === undefined) throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'no KE seed');
  const ke = keInitiation(ctx.provider, init.keGroup, init.keSeed);
  const payloads: Payload[] = [];
  if (init.cookie) payloads.push(notify(NotifyStatus.COOKIE, init.cookie));
  payloads.push(
    ikeSaPayload(ctx.policy.ikeProposals, new Uint8Array(0), init.keGroup, true),
    { type: PayloadType.KE, critical: false, group: init.keGroup, data: ke.publicData },
    { type: PayloadType.NONCE, critical: false, data: init.ni },
    ...natPayloads(ctx, init.spiI, ZERO_SPI),
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
  const request = initRequest(w, init);
  w.s.init = { ...init, request };
  w.s.status = 'init-sent';
  w.actions.push({ kind: 'send', bytes: request });
  if (w.s.transport === 'udp') {
    const rt = w.ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
    w.actions.push({ kind: 'arm-timer', id: INIT_TIMER_ID, at: w.now + rt.initialMs });
    w.s.init = { ...w.s.init, retransmits: 0, nextAt: w.now + rt.initialMs };
  }
}

export function startInit(w: Work): void {
  const first = w.ctx.policy.ikeProposals[0]?.keyExchange[0];
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

/** Retransmission of the IKE_SA_INIT request (UDP). */
export function onInitTimer(w: Work): void {
  const init = w.s.init;
  if (w.s.status !== 'init-sent' || !init?.request || init.nextAt === undefined || w.now < init.nextAt)
    return;
  const rt = w.ctx.policy.retransmit ?? DEFAULT_RETRANSMIT;
  const n = (init.retransmits ?? 0) + 1;
  if (n > rt.maxRetransmits) {
    w.s.status = 'deleted';
    w.actions.push({ kind: 'deleted', reason: 'dead-peer' });
    return;
  }
  const nextAt = w.now + rt.initialMs * 2 ** n;
  w.s.init = { ...init, retransmits: n, nextAt };
  w.actions.push({ kind: 'send', bytes: init.request }, { kind: 'arm-timer', id: INIT_TIMER_ID, at: nextAt });
}

export function processInitResponse(w: Work, raw: Uint8Array, msg: IkeMessage): void {
  const init = w.s.init;
  if (w.s.status !== 'init-sent' || !init || w.s.current !== undefined || msg.header.messageId !== 0) {
    w.actions.push({ kind: 'dropped', reason: 'unexpected-init-response' });
    return;
  }
  const p = msg.payloads;
  const cookie = findNotify(p, NotifyStatus.COOKIE);
  if (cookie && init.retries < MAX_INIT_RETRIES) {
    sendInit(w, { ...init, cookie: copy(decodeCookie(cookie.data)), retries: init.retries + 1 });
    return;
  }
  const invalidKe = findNotify(p, NotifyError.INVALID_KE_PAYLOAD);
  if (invalidKe && init.retries < MAX_INIT_RETRIES) {
    const group = decodeInvalidKe(invalidKe.data);
    const acceptable = w.ctx.policy.ikeProposals.some((x) => x.keyExchange.includes(group));
    if (acceptable && group !== init.keGroup) {
      sendInit(w, { ...init, keGroup: group, keSeed: copy(w.ctx.random(64)), retries: init.retries + 1 });
      return;
    }
  }
  const error = errorNotify(p);
  if (error) {
    w.s.status = 'deleted';
    w.actions.push({
      kind: 'deleted',
      reason: error.notifyType === NotifyError.NO_PROPOSAL_CHOSEN ? 'no-proposal-chosen' : 'error-notify',
    });
    return;
  }
  const suite = acceptedIkeSuite(requirePayload(p, PayloadType.SA), w.ctx.policy.ikeProposals);
  const ke = requirePayload(p, PayloadType.KE);
  const nonce = requirePayload(p, PayloadType.NONCE);
  if (verifyNonce(nonce) !== undefined) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'nonce');
  if (ke.group !== suite.keyExchange || suite.keyExchange !== init.keGroup)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'KE group mismatch');
  const spiR = copy(msg.header.responderSpi);
  const secret = keComplete(keInitiation(w.ctx.provider, init.keGroup, init.keSeed!), ke.data);
  const nr = copy(nonce.data);
  detectNat(w, p, init.spiI, spiR);
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
    keys: deriveKeys(w.ctx, suite, init.ni, nr, secret, init.spiI, spiR),
    ni: init.ni,
    nr,
    nextRequestId: 1,
    expectedRequestId: 0,
    ...(fragmentation ? { fragmentation } : {}),
  };
  // RFC 9370 §2.2.2: an additional key exchange runs in IKE_INTERMEDIATE before IKE_AUTH.
  if (suite.additionalKeyExchange1 !== undefined) startIntermediate(w);
  else startAuth(w);
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

/** RFC 7296 §2.6: COOKIE = prf(secret, Ni | IPi | SPIi); stateless, and not bound to the port. */
function expectedCookie(ctx: IkeSaContext, ni: Uint8Array, spiI: Uint8Array): Uint8Array {
  const secret = ctx.cookieSecret;
  if (!secret) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', 'requireCookie without cookieSecret');
  return prfOf(ctx.provider, PrfId.HMAC_SHA2_256).compute(secret, ni, ctx.remote.address, spiI);
}

export function respondInit(w: Work, raw: Uint8Array, msg: IkeMessage): void {
  const { ctx } = w;
  const h = msg.header;
  const p = msg.payloads;
  if (h.messageId !== 0 || !bytesEqual(h.responderSpi, ZERO_SPI)) {
    w.actions.push({ kind: 'dropped', reason: 'bad-init-request' });
    return;
  }
  const spiI = h.initiatorSpi;
  const sa = requirePayload(p, PayloadType.SA);
  const ke = requirePayload(p, PayloadType.KE);
  const nonce = requirePayload(p, PayloadType.NONCE);
  if (verifyNonce(nonce) !== undefined)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_BAD_VALUE', 'nonce length');

  if (ctx.requireCookie?.()) {
    const want = expectedCookie(ctx, nonce.data, spiI);
    const got = findNotify(p, NotifyStatus.COOKIE);
    if (!got || !bytesEqual(got.data, want)) {
      w.actions.push({
        kind: 'send',
        bytes: unprotectedResponse(spiI, ZERO_SPI, [notify(NotifyStatus.COOKIE, want)]),
      });
      if (w.s.transport === 'tcp') w.actions.push({ kind: 'close-connection' });
      return;
    }
  }

  // RFC 9242 §3: IKE_INTERMEDIATE only when both announced it.
  const peerIntermediate =
    findNotify(p, NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED) !== undefined && offersAdditionalKe(ctx);
  let suite: IkeSuite;
  let proposalNumber: number;
  try {
    const selected = selectIkeSuite(sa, ctx.policy.ikeProposals, ke.group, peerIntermediate);
    suite = selected.suite;
    proposalNumber = selected.proposal.number;
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    w.actions.push({
      kind: 'send',
      bytes: unprotectedResponse(spiI, ZERO_SPI, [notify(NotifyError.NO_PROPOSAL_CHOSEN)]),
    });
    return;
  }
  if (ke.group !== suite.keyExchange) {
    w.actions.push({
      kind: 'send',
      bytes: unprotectedResponse(spiI, ZERO_SPI, [
        notify(NotifyError.INVALID_KE_PAYLOAD, encodeInvalidKe(suite.keyExchange)),
      ]),
    });
    return;
  }
  const { publicData, sharedSecret } = keRespond(ctx.provider, suite.keyExchange, ke.data, ctx.random);
  const spiIc = copy(spiI);
  const spiR = copy(ctx.allocateIkeSpi());
  const ni = copy(nonce.data);
  const nr = copy(ctx.random(NONCE_LENGTH));
  detectNat(w, p, spiIc, ZERO_SPI);
  // RFC 7383 §2.3: answer the announcement only if we support fragmentation too.
  const fragmentation =
    (ctx.policy.fragmentation ?? true) &&
    findNotify(p, NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED) !== undefined;
  const response = unprotectedResponse(spiIc, spiR, [
    ikeSuiteSaPayload(suite, new Uint8Array(0), proposalNumber),
    { type: PayloadType.KE, critical: false, group: suite.keyExchange, data: publicData },
    { type: PayloadType.NONCE, critical: false, data: nr },
    ...natPayloads(ctx, spiIc, spiR),
    ...(fragmentation ? [notify(NotifyStatus.IKEV2_FRAGMENTATION_SUPPORTED)] : []),
    ...certInitPayloads(ctx, true),
    ...(peerIntermediate ? [notify(NotifyStatus.INTERMEDIATE_EXCHANGE_SUPPORTED)] : []),
  ]);
  w.actions.push({ kind: 'send', bytes: response });
  w.s.status = 'init-answered';
  // A half-open SA that never sees IKE_AUTH is dropped (RFC 7296 §2.6 DoS considerations).
  w.actions.push({
    kind: 'arm-timer',
    id: HALF_OPEN_TIMER_ID,
    at: w.now + (ctx.halfOpenTimeoutMs ?? DEFAULT_HALF_OPEN_MS),
  });
  w.s.init = {
    spiI: spiIc,
    spiR,
    ni,
    nr,
    keGroup: suite.keyExchange,
    request: copy(raw),
    response,
    retries: 0,
    ...(peerSignatureHashes(p) ? { peerSignatureHashes: peerSignatureHashes(p)! } : {}),
  };
  w.s.current = {
    role: 'responder',
    spiI: spiIc,
    spiR,
    suite,
    keys: deriveKeys(ctx, suite, ni, nr, sharedSecret, spiIc, spiR),
    ni,
    nr,
    nextRequestId: 0,
    expectedRequestId: 1,
    lastResponse: { messageId: 0, bytes: response },
    ...(fragmentation ? { fragmentation } : {}),
  };
}
