/**
 * IKE_AUTH (RFC 7296 §1.2, §2.15) with pre-shared keys or certificates (certificates.ts, RFC
 * 7427), the first child SA, the configuration payload (§3.15: CFG_REQUEST for an internal IPv4
 * address and DNS, CFG_REPLY) and RFC 6311's IKEV2_MESSAGE_ID_SYNC_SUPPORTED.
 *
 *   AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
 *   initiator's SignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi')
 *   responder's SignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr')
 *
 * After an IKE_INTERMEDIATE exchange the signed octets end with IntAuth | IKE_AUTH_MID (RFC 9242
 * §3.3.2, intermediate.ts). PSK AUTH is compared in constant time (auth/psk.ts).
 *
 * A child SA failure (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE, INTERNAL_ADDRESS_FAILURE) does not
 * fail the IKE SA (§1.2, §3.15.4): the responder answers with the notify in place of SA/TS, the
 * IKE SA is established, and the initiator reports `child-failed` so its service can act (a road
 * warrior without an address gives up at once instead of sitting on a useless IKE SA).
 */
import {
  AuthMethod,
  CfgType,
  ExchangeType,
  type IdPayload,
  IdType,
  NotifyError,
  NotifyStatus,
  type Payload,
  PayloadType,
  ProtocolId,
} from '../codec/index.js';
import { pskAuthData, signedOctets, verifyPskAuth, idPayloadBody } from '../auth/index.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { buildCfgReply, buildCfgRequest, parseCfgReply, parseCfgRequest } from '../negotiation/index.js';
import { scheduleChild, scheduleIkeSa } from '../sa/lifetimes.js';
import { sendRequest, sendResponse } from '../sa/task-manager.js';
import type { ChildSaState, IkeSaContext, IkeSaCore } from '../sa/types.js';
import {
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
import { certReqPayloads, ourSignatureAuth, verifyPeerSignature } from './certificates.js';
import { acceptChild, acceptedChild, childKeys, installChild, tsPayloads } from './child-sa.js';
import { startDeleteIkeUnanswered, terminate } from './informational.js';
import { intAuthFor } from './intermediate.js';
import { prfOf } from './key-exchange.js';
import { ourSaPayload, withoutKe } from './sa-payloads.js';

function idPayload(
  type: typeof PayloadType.IDi | typeof PayloadType.IDr,
  id: string,
  idType: number = IdType.ID_FQDN,
): IdPayload {
  return { type, critical: false, idType, data: new TextEncoder().encode(id) };
}

function ourId(ctx: IkeSaContext, type: typeof PayloadType.IDi | typeof PayloadType.IDr): IdPayload {
  return idPayload(type, ctx.policy.localId, ctx.policy.localIdType ?? IdType.ID_FQDN);
}

/** RFC 7296 §2.15 signed octets: RealMessage | Nonce | prf(SK_px, IDx') [| IntAuth]. */
function signedOctetsOf(
  ctx: IkeSaContext,
  core: IkeSaCore,
  realMessage: Uint8Array,
  nonce: Uint8Array,
  fromInitiator: boolean,
  id: IdPayload,
  intAuth?: Uint8Array,
): Uint8Array {
  const prf = prfOf(ctx.provider, core.suite.prf);
  const skP = fromInitiator ? core.keys.skPi : core.keys.skPr;
  return signedOctets(prf, realMessage, nonce, skP, idPayloadBody(id.idType, id.data), intAuth);
}

function idString(id: IdPayload): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(id.data);
}

/** The identity an IDi claims (unauthenticated; bounded), for attributing a refusal. */
function claimedId(payloads: readonly Payload[]): string | undefined {
  const id: IdPayload | undefined = payloads.find(
    (p): p is IdPayload => p.type === PayloadType.IDi && !('unknown' in p),
  );
  if (!id || (id.idType !== IdType.ID_FQDN && id.idType !== IdType.ID_RFC822_ADDR)) return undefined;
  return idString(id).slice(0, MAX_CLAIMED_ID);
}

/** Longer claimed identities are cut (they only ever name a configured peer, never a label). */
const MAX_CLAIMED_ID = 255;

function authFailed(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_AUTH_FAILED', why, NotifyError.AUTHENTICATION_FAILED);
}

/**
 * Verifies the peer's ID and AUTH; returns its identity.
 * @throws RemoteProtocolError AUTHENTICATION_FAILED (with why), or INVALID_SYNTAX for a missing ID/AUTH
 */
function verifyPeerAuth(
  ctx: IkeSaContext,
  core: IkeSaCore,
  payloads: readonly Payload[],
  idType: typeof PayloadType.IDi | typeof PayloadType.IDr,
  realMessage: Uint8Array,
  nonce: Uint8Array,
  intAuth?: Uint8Array,
): string {
  const id = requirePayload(payloads, idType);
  const auth = requirePayload(payloads, PayloadType.AUTH);
  if (id.idType !== IdType.ID_FQDN && id.idType !== IdType.ID_RFC822_ADDR)
    throw authFailed(`ID type ${id.idType} (only ID_FQDN and ID_RFC822_ADDR are supported)`);
  const peerId = idString(id);
  const fromInitiator = idType === PayloadType.IDi;
  const octets = () => signedOctetsOf(ctx, core, realMessage, nonce, fromInitiator, id, intAuth);
  if (auth.method === AuthMethod.DIGITAL_SIGNATURE) {
    verifyPeerSignature(ctx, payloads, id, auth.data, octets(), peerId);
    return peerId;
  }
  if (auth.method !== AuthMethod.SHARED_KEY_MIC) throw authFailed(`auth method ${auth.method}`);
  const psk = ctx.psk(peerId);
  if (!psk) throw authFailed(`no PSK for ${peerId}`);
  if (!verifyPskAuth(prfOf(ctx.provider, core.suite.prf), psk, octets(), auth.data))
    throw authFailed(`PSK AUTH mismatch for ${peerId}`);
  return peerId;
}

/** Our AUTH (and CERT payloads when we authenticate with a certificate). */
function ourAuth(
  ctx: IkeSaContext,
  core: IkeSaCore,
  id: IdPayload,
  realMessage: Uint8Array,
  nonce: Uint8Array,
  peerHashes: readonly number[] | undefined,
  intAuth: Uint8Array | undefined,
): Payload[] {
  const octets = signedOctetsOf(ctx, core, realMessage, nonce, core.role === 'initiator', id, intAuth);
  if (ctx.certificate) return ourSignatureAuth(ctx, octets, peerHashes);
  const psk = ctx.psk(ctx.policy.localId);
  if (!psk) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `no PSK for our id ${ctx.policy.localId}`);
  return [
    {
      type: PayloadType.AUTH,
      critical: false,
      method: AuthMethod.SHARED_KEY_MIC,
      data: pskAuthData(prfOf(ctx.provider, core.suite.prf), psk, octets),
    },
  ];
}

/** What the peer announced of RFC 6311 in its IKE_AUTH message. */
function peerSyncOf(inner: readonly Payload[]): { messageId: boolean; replayCounter: boolean } {
  return {
    messageId: findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED) !== undefined,
    replayCounter: findNotify(inner, NotifyStatus.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED) !== undefined,
  };
}

/** RFC 6311 notifies of ours for IKE_AUTH; a responder answers only what the peer announced. */
function ourSyncNotifies(ctx: IkeSaContext, peer?: ReturnType<typeof peerSyncOf>): Payload[] {
  const out: Payload[] = [];
  if (ctx.policy.messageIdSync && (peer?.messageId ?? true))
    out.push(notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED));
  if (ctx.policy.replayCounterSync && (peer?.replayCounter ?? true))
    out.push(notify(NotifyStatus.IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED));
  return out;
}

function established(
  w: Work,
  core: IkeSaCore,
  peerId: string,
  peerSync: ReturnType<typeof peerSyncOf>,
): void {
  w.s.peerId = peerId;
  w.s.status = 'established';
  w.s.peerMessageIdSync = peerSync.messageId;
  if (peerSync.replayCounter && w.ctx.policy.replayCounterSync) w.s.peerReplayCounterSync = true;
  w.s.init = undefined;
  w.s.halfOpenExpiresAt = undefined;
  // What the SA keeps from here on: settledCore (sa/ike-sa.ts), at the end of this step.
  w.actions.push({ kind: 'established', initiatorSpi: core.spiI, responderSpi: core.spiR, peerId });
  scheduleIkeSa(w);
}

// --- initiator -----------------------------------------------------------------------------------

function sentChildProposals(ctx: IkeSaContext, childSpi: Uint8Array) {
  return ourSaPayload(withoutKe(ctx.policy.espProposals), ProtocolId.ESP, childSpi);
}

export function startAuth(w: Work): void {
  const { ctx } = w;
  const core = w.s.current;
  const init = w.s.init;
  if (!core || !init?.request || !init.nr)
    throw new LocalUsageError('IKEGATE_ERR_IKEV2_BAD_STATE', 'IKE_AUTH before IKE_SA_INIT');
  const idi = ourId(ctx, PayloadType.IDi);
  const childSpi = copy(ctx.allocateChildSpi());
  const inner: Payload[] = [
    idi,
    ...ourAuth(
      ctx,
      core,
      idi,
      init.request,
      init.nr,
      init.peerSignatureHashes,
      intAuthFor(init.intAuth, core.nextRequestId),
    ),
    ...certReqPayloads(ctx),
  ];
  inner.push(...ourSyncNotifies(ctx));
  if (ctx.policy.requestVirtualIp) inner.push(buildCfgRequest({ ipv4: true, dns: true }));
  inner.push(sentChildProposals(ctx, childSpi), ...tsPayloads(ctx.policy.localTs, ctx.policy.remoteTs));
  w.s.current = sendRequest(w, core, ExchangeType.IKE_AUTH, inner, { kind: 'ike-auth', childSpi });
  w.s.status = 'auth-sent';
}

export function processAuthResponse(w: Work, inner: readonly Payload[], childSpi: Uint8Array): void {
  const { ctx } = w;
  const core = w.s.current!;
  const init = w.s.init!;
  const refused = findNotify(inner, NotifyError.AUTHENTICATION_FAILED);
  if (refused) {
    reject(w, ExchangeType.IKE_AUTH, NotifyError.AUTHENTICATION_FAILED, 'peer');
    return terminate(w, 'authentication-failed');
  }
  let peerId: string;
  try {
    peerId = verifyPeerAuth(
      ctx,
      core,
      inner,
      PayloadType.IDr,
      init.response!,
      init.ni,
      intAuthFor(init.intAuth, core.nextRequestId - 1),
    );
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    reject(w, ExchangeType.IKE_AUTH, NotifyError.AUTHENTICATION_FAILED, 'us', e.message);
    return terminate(w, 'authentication-failed');
  }
  const expected = ctx.expectedPeerId;
  if (expected !== undefined && expected.toLowerCase() !== peerId.toLowerCase()) {
    // RFC 7296 §2.15: authenticated, but not as whom we set out to reach.
    reject(
      w,
      ExchangeType.IKE_AUTH,
      NotifyError.AUTHENTICATION_FAILED,
      'us',
      `peer is ${peerId}, expected ${expected}`,
    );
    startDeleteIkeUnanswered(w);
    return terminate(w, 'wrong-peer-id');
  }
  established(w, core, peerId, peerSyncOf(inner));
  const error = errorNotify(inner);
  const sa = findPayload(inner, PayloadType.SA);
  const tsi = findPayload(inner, PayloadType.TSi);
  const tsr = findPayload(inner, PayloadType.TSr);
  if (error || !sa || !tsi || !tsr) {
    const type = error?.notifyType ?? NotifyError.NO_PROPOSAL_CHOSEN;
    reject(w, ExchangeType.IKE_AUTH, type, 'peer', error ? undefined : 'no child SA in the response');
    w.actions.push({
      kind: 'child-failed',
      reason: error ? 'error-notify' : 'missing-child',
      ...(error ? { notify: type } : {}),
    });
    return;
  }
  let vip: Uint8Array | undefined;
  try {
    const accepted = acceptedChild(ctx, sa, tsi, tsr, sentChildProposals(ctx, childSpi).proposals);
    const cp = findPayload(inner, PayloadType.CP);
    if (cp?.cfgType === CfgType.CFG_REPLY) vip = parseCfgReply(cp).ipv4;
    if (ctx.policy.requestVirtualIp && vip === undefined)
      throw new RemoteProtocolError(
        'IKEGATE_ERR_IKEV2_BAD_VALUE',
        'no INTERNAL_IP4_ADDRESS in CFG_REPLY',
        NotifyError.FAILED_CP_REQUIRED,
      );
    const child: ChildSaState = scheduleChild(w, {
      inboundSpi: childSpi,
      outboundSpi: accepted.peerSpi,
      suite: accepted.suite,
      tsLocal: accepted.tsI,
      tsRemote: accepted.tsR,
      ...(vip ? { virtualIp: copy(vip) } : {}),
    });
    w.s.children = appended(w.s.children, child);
    w.actions.push(installChild(child, childKeys(ctx, core, accepted.suite, core.ni, core.nr), true));
  } catch (e) {
    if (!(e instanceof RemoteProtocolError)) throw e;
    const type = e.notify ?? NotifyError.INVALID_SYNTAX;
    reject(w, ExchangeType.IKE_AUTH, type, 'us', e.message);
    w.actions.push({ kind: 'child-failed', reason: 'unacceptable-child', notify: type });
  }
}

// --- responder -----------------------------------------------------------------------------------

/** CP request handling (RFC 7296 §3.15): the address for the peer, or INTERNAL_ADDRESS_FAILURE. */
function assignVirtualIp(
  ctx: IkeSaContext,
  inner: readonly Payload[],
  peerId: string,
): { vip?: Uint8Array; reply?: Payload } {
  const cp = findPayload(inner, PayloadType.CP);
  if (cp?.cfgType !== CfgType.CFG_REQUEST) return {};
  const wants = parseCfgRequest(cp);
  if (!wants.ipv4) return {};
  const assigned = ctx.assignAddress?.(peerId);
  if (!assigned)
    throw new RemoteProtocolError(
      'IKEGATE_ERR_IKEV2_BAD_STATE',
      'no address left for the peer',
      NotifyError.INTERNAL_ADDRESS_FAILURE,
    );
  const vip = copy(assigned.address);
  return {
    vip,
    reply: buildCfgReply({ ipv4: vip, dns: wants.ipv4Dns ? (assigned.dns ?? []) : [] }),
  };
}

export function respondAuth(
  w: Work,
  inner: readonly Payload[],
  messageId: number,
  requestDigest: Uint8Array,
): void {
  let { ctx } = w;
  const core = w.s.current!;
  const init = w.s.init!;
  let peerId: string;
  try {
    // RFC 9242: once an additional key exchange was negotiated, IKE_AUTH must follow it.
    if (core.suite.additionalKeyExchanges.length > 0 && init.intAuth === undefined)
      throw authFailed('IKE_AUTH before IKE_INTERMEDIATE');
    peerId = verifyPeerAuth(
      ctx,
      core,
      inner,
      PayloadType.IDi,
      init.request!,
      init.nr!,
      intAuthFor(init.intAuth, messageId),
    );
  } catch (e) {
    if (!(e instanceof RemoteProtocolError) || e.notify !== NotifyError.AUTHENTICATION_FAILED) throw e;
    w.s.current = sendResponse(
      w,
      core,
      ExchangeType.IKE_AUTH,
      messageId,
      [notify(NotifyError.AUTHENTICATION_FAILED)],
      requestDigest,
    );
    reject(w, ExchangeType.IKE_AUTH, NotifyError.AUTHENTICATION_FAILED, 'us', e.message, claimedId(inner));
    return terminate(w, 'authentication-failed');
  }
  // The peer is authenticated: from here on its own policy (traffic selectors, pool) applies.
  if (ctx.forPeer) ctx = w.ctx = ctx.forPeer(peerId);
  const idr = ourId(ctx, PayloadType.IDr);
  const out: Payload[] = [
    idr,
    ...ourAuth(
      ctx,
      core,
      idr,
      init.response!,
      init.ni,
      init.peerSignatureHashes,
      intAuthFor(init.intAuth, messageId),
    ),
  ];
  const peerSync = peerSyncOf(inner);
  out.push(...ourSyncNotifies(ctx, peerSync));

  let newChild: ChildSaState | undefined;
  const sa = findPayload(inner, PayloadType.SA);
  const tsi = findPayload(inner, PayloadType.TSi);
  const tsr = findPayload(inner, PayloadType.TSr);
  if (sa && tsi && tsr) {
    try {
      const { vip, reply } = assignVirtualIp(ctx, inner, peerId);
      const a = acceptChild(ctx, sa, tsi, tsr, { ikeAuth: true, ...(vip ? { remoteHost: vip } : {}) });
      if (a.lenient) w.actions.push({ kind: 'lenient', what: a.lenient, exchange: 'IKE_AUTH' });
      const [inboundSpi, outboundSpi] = copyPair(ctx.allocateChildSpi(), a.peerSpi);
      newChild = {
        inboundSpi,
        outboundSpi,
        suite: a.suite,
        tsLocal: a.tsR,
        tsRemote: a.tsI,
        ...(vip ? { virtualIp: vip } : {}),
      };
      if (reply) out.push(reply);
      out.push(
        { type: PayloadType.SA, critical: false, proposals: [{ ...a.proposal, spi: inboundSpi }] },
        ...tsPayloads(a.tsI, a.tsR),
      );
    } catch (e) {
      if (
        !(e instanceof RemoteProtocolError) ||
        e.notify === undefined ||
        e.notify === NotifyError.INVALID_SYNTAX
      )
        throw e;
      out.push(notify(e.notify));
      reject(w, ExchangeType.IKE_AUTH, e.notify, 'us', e.message);
    }
  }
  w.s.current = sendResponse(w, core, ExchangeType.IKE_AUTH, messageId, out, requestDigest);
  established(w, core, peerId, peerSync);
  if (newChild) {
    const child = scheduleChild(w, newChild);
    w.s.children = appended(w.s.children, child);
    w.actions.push(installChild(child, childKeys(ctx, core, child.suite, core.ni, core.nr), false));
  }
}
