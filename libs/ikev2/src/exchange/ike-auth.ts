/**
 * IKE_AUTH with pre-shared keys (RFC 7296 §1.2, §2.15), the first child SA, the configuration
 * payload (§3.15: CFG_REQUEST for INTERNAL_IP4_ADDRESS / INTERNAL_IP4_DNS, answered with
 * CFG_REPLY) and RFC 6311's IKEV2_MESSAGE_ID_SYNC_SUPPORTED.
 *
 *   AUTH = prf(prf(PSK, "Key Pad for IKEv2"), <SignedOctets>)
 *   initiator's SignedOctets = RealMessage1 | NonceRData | prf(SK_pi, IDi')
 *   responder's SignedOctets = RealMessage2 | NonceIData | prf(SK_pr, IDr')
 *
 * With `ctx.certificate` we authenticate with CERT + AUTH method 14 instead (certificates.ts), and
 * a peer's method-14 AUTH is verified against `ctx.trustAnchors`. After an IKE_INTERMEDIATE
 * exchange the signed octets end with IntAuth | IKE_AUTH_MID (RFC 9242 §3.3.2, intermediate.ts).
 *
 * A child SA failure (NO_PROPOSAL_CHOSEN, TS_UNACCEPTABLE) does not fail the IKE SA (§1.2): the
 * responder answers with the notify in place of SA/TS and the IKE SA is still established.
 */
import {
  AuthMethod,
  CfgAttributeType,
  CfgType,
  type CpPayload,
  ExchangeType,
  type IdPayload,
  IdType,
  NotifyError,
  NotifyStatus,
  type Payload,
  PayloadType,
} from '../codec/index.js';
import { concat } from '../codec/protect.js';
import { LocalUsageError, RemoteProtocolError } from '../errors.js';
import { intAuthFor } from './intermediate.js';
import { certReqPayloads, ourSignatureAuth, verifyPeerSignature } from './certificates.js';
import { acceptChild, acceptedChild, childKeys, installChild, tsPayloads } from './child-sa.js';
import { sendRequest, sendResponse } from './message-window.js';
import { bytesEqual, espSaPayload, espSuiteSaPayload, prfOf } from './suite.js';
import type { ChildSaState, IkeSaContext, IkeSaCore } from './types.js';
import { copy, errorNotify, findNotify, findPayload, notify, requirePayload, type Work } from './work.js';

const KEY_PAD = new TextEncoder().encode('Key Pad for IKEv2');

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

/** RFC 7296 §2.15 signed octets: RealMessage | Nonce | prf(SK_px, IDx'). */
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
  const maced = prf.compute(fromInitiator ? core.keys.skPi : core.keys.skPr, idBody(id));
  return concat(intAuth ? [realMessage, nonce, maced, intAuth] : [realMessage, nonce, maced]);
}

/** IDx' of §2.15: the ID payload body without its generic header. */
function idBody(id: IdPayload): Uint8Array {
  const out = new Uint8Array(4 + id.data.length);
  out[0] = id.idType;
  out.set(id.data, 4);
  return out;
}

function idString(id: IdPayload): string {
  return new TextDecoder('utf-8', { fatal: false }).decode(id.data);
}

export function pskAuth(
  ctx: IkeSaContext,
  core: IkeSaCore,
  psk: Uint8Array,
  realMessage: Uint8Array,
  nonce: Uint8Array,
  fromInitiator: boolean,
  id: IdPayload,
  intAuth?: Uint8Array,
): Uint8Array {
  const prf = prfOf(ctx.provider, core.suite.prf);
  const octets = signedOctetsOf(ctx, core, realMessage, nonce, fromInitiator, id, intAuth);
  return prf.compute(prf.compute(psk, KEY_PAD), octets);
}

function authFailed(why: string): RemoteProtocolError {
  return new RemoteProtocolError('IKEGATE_ERR_IKEV2_AUTH_FAILED', why, NotifyError.AUTHENTICATION_FAILED);
}

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
    throw authFailed('only ID_FQDN and ID_RFC822_ADDR are supported');
  const peerId = idString(id);
  if (auth.method === AuthMethod.DIGITAL_SIGNATURE) {
    const octets = signedOctetsOf(ctx, core, realMessage, nonce, idType === PayloadType.IDi, id, intAuth);
    verifyPeerSignature(ctx, payloads, id, auth.data, octets);
    return peerId;
  }
  const psk = ctx.psk(peerId);
  if (!psk) throw authFailed(`unknown peer ${peerId}`);
  if (auth.method !== AuthMethod.SHARED_KEY_MIC) throw authFailed(`auth method ${auth.method}`);
  const expected = pskAuth(ctx, core, psk, realMessage, nonce, idType === PayloadType.IDi, id, intAuth);
  if (!bytesEqual(expected, auth.data)) throw authFailed('AUTH mismatch');
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
  if (ctx.certificate) {
    const octets = signedOctetsOf(ctx, core, realMessage, nonce, core.role === 'initiator', id, intAuth);
    return ourSignatureAuth(ctx, octets, peerHashes);
  }
  return [ourPskAuth(ctx, core, id, realMessage, nonce, intAuth)];
}

function ourPskAuth(
  ctx: IkeSaContext,
  core: IkeSaCore,
  id: IdPayload,
  realMessage: Uint8Array,
  nonce: Uint8Array,
  intAuth: Uint8Array | undefined,
): Payload {
  const psk = ctx.psk(ctx.policy.localId);
  if (!psk) throw new LocalUsageError('IKEGATE_ERR_IKEV2_CONFIG', `no PSK for our id ${ctx.policy.localId}`);
  return {
    type: PayloadType.AUTH,
    critical: false,
    method: AuthMethod.SHARED_KEY_MIC,
    data: pskAuth(ctx, core, psk, realMessage, nonce, core.role === 'initiator', id, intAuth),
  };
}

// --- initiator -----------------------------------------------------------------------------------

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
  if (ctx.policy.messageIdSync) inner.push(notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED));
  if (ctx.policy.requestVirtualIp) {
    inner.push({
      type: PayloadType.CP,
      critical: false,
      cfgType: CfgType.CFG_REQUEST,
      attributes: [
        { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: new Uint8Array(0) },
        { type: CfgAttributeType.INTERNAL_IP4_DNS, value: new Uint8Array(0) },
      ],
    });
  }
  inner.push(
    espSaPayload(ctx.policy.espProposals, childSpi),
    ...tsPayloads(ctx.policy.localTs, ctx.policy.remoteTs),
  );
  w.s.current = sendRequest(
    ctx,
    core,
    w.s.transport,
    w.now,
    ExchangeType.IKE_AUTH,
    inner,
    { kind: 'ike-auth', childSpi },
    w.actions,
  );
  w.s.status = 'auth-sent';
}

function fail(w: Work, reason: 'authentication-failed' | 'error-notify'): void {
  w.s.status = 'deleted';
  w.actions.push({ kind: 'deleted', reason });
}

export function processAuthResponse(w: Work, inner: readonly Payload[], childSpi: Uint8Array): void {
  const { ctx } = w;
  const core = w.s.current!;
  const init = w.s.init!;
  if (findNotify(inner, NotifyError.AUTHENTICATION_FAILED)) return fail(w, 'authentication-failed');
  let peerId: string;
  try {
    const authMid = core.nextRequestId - 1;
    peerId = verifyPeerAuth(
      ctx,
      core,
      inner,
      PayloadType.IDr,
      init.response!,
      init.ni,
      intAuthFor(init.intAuth, authMid),
    );
  } catch (e) {
    if (e instanceof RemoteProtocolError) return fail(w, 'authentication-failed');
    throw e;
  }
  w.s.peerId = peerId;
  w.s.status = 'established';
  w.s.peerMessageIdSync = findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED) !== undefined;
  w.s.init = undefined;
  w.actions.push({ kind: 'established', initiatorSpi: core.spiI, responderSpi: core.spiR, peerId });
  const sa = findPayload(inner, PayloadType.SA);
  const tsi = findPayload(inner, PayloadType.TSi);
  const tsr = findPayload(inner, PayloadType.TSr);
  if (errorNotify(inner) || !sa || !tsi || !tsr) return;
  const accepted = acceptedChild(ctx, sa, tsi, tsr, undefined);
  const cp = findPayload(inner, PayloadType.CP);
  const vip =
    cp?.cfgType === CfgType.CFG_REPLY
      ? cp.attributes.find((a) => a.type === CfgAttributeType.INTERNAL_IP4_ADDRESS && a.value.length === 4)
          ?.value
      : undefined;
  const child: ChildSaState = {
    inboundSpi: childSpi,
    outboundSpi: accepted.peerSpi,
    suite: accepted.suite,
    tsLocal: accepted.tsI,
    tsRemote: accepted.tsR,
    ...(vip ? { virtualIp: copy(vip) } : {}),
  };
  w.s.children = [...w.s.children, child];
  w.actions.push(installChild(child, childKeys(ctx, core, accepted.suite, core.ni, core.nr), true));
}

// --- responder -----------------------------------------------------------------------------------

export function respondAuth(w: Work, inner: readonly Payload[], messageId: number): void {
  let { ctx } = w;
  let core = w.s.current!;
  const init = w.s.init!;
  let peerId: string;
  try {
    // RFC 9242: once an additional key exchange was negotiated, IKE_AUTH must follow it.
    if (core.suite.additionalKeyExchange1 !== undefined && init.intAuth === undefined)
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
    if (!(e instanceof RemoteProtocolError) || e.notify === undefined) throw e;
    w.s.current = sendResponse(
      ctx,
      core,
      ExchangeType.IKE_AUTH,
      messageId,
      [notify(NotifyError.AUTHENTICATION_FAILED)],
      w.actions,
      w.s.transport,
    );
    return fail(w, 'authentication-failed');
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
  const peerSync = findNotify(inner, NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED) !== undefined;
  if (ctx.policy.messageIdSync && peerSync) out.push(notify(NotifyStatus.IKEV2_MESSAGE_ID_SYNC_SUPPORTED));

  let newChild: { child: ChildSaState; weInitiated: false } | undefined;
  const sa = findPayload(inner, PayloadType.SA);
  const tsi = findPayload(inner, PayloadType.TSi);
  const tsr = findPayload(inner, PayloadType.TSr);
  if (sa && tsi && tsr) {
    const cp = findPayload(inner, PayloadType.CP);
    let reply: CpPayload | undefined;
    let vip: Uint8Array | undefined;
    if (
      cp?.cfgType === CfgType.CFG_REQUEST &&
      cp.attributes.some((a) => a.type === CfgAttributeType.INTERNAL_IP4_ADDRESS)
    ) {
      const assigned = ctx.assignAddress?.(peerId);
      if (assigned) {
        vip = copy(assigned.address);
        reply = {
          type: PayloadType.CP,
          critical: false,
          cfgType: CfgType.CFG_REPLY,
          attributes: [
            { type: CfgAttributeType.INTERNAL_IP4_ADDRESS, value: vip },
            ...(cp.attributes.some((a) => a.type === CfgAttributeType.INTERNAL_IP4_DNS)
              ? (assigned.dns ?? []).map((d) => ({ type: CfgAttributeType.INTERNAL_IP4_DNS, value: d }))
              : []),
          ],
        };
      }
    }
    try {
      if (cp?.cfgType === CfgType.CFG_REQUEST && !vip)
        throw new RemoteProtocolError(
          'IKEGATE_ERR_IKEV2_BAD_STATE',
          'no address',
          NotifyError.INTERNAL_ADDRESS_FAILURE,
        );
      const a = acceptChild(ctx, sa, tsi, tsr, undefined, vip);
      const inboundSpi = copy(ctx.allocateChildSpi());
      const child: ChildSaState = {
        inboundSpi,
        outboundSpi: a.peerSpi,
        suite: a.suite,
        tsLocal: a.tsR,
        tsRemote: a.tsI,
        ...(vip ? { virtualIp: vip } : {}),
      };
      newChild = { child, weInitiated: false };
      if (reply) out.push(reply);
      out.push(
        espSuiteSaPayload(a.suite, inboundSpi, undefined, a.proposalNumber),
        ...tsPayloads(a.tsI, a.tsR),
      );
    } catch (e) {
      if (!(e instanceof RemoteProtocolError) || e.notify === undefined) throw e;
      out.push(notify(e.notify));
    }
  }
  core = sendResponse(ctx, core, ExchangeType.IKE_AUTH, messageId, out, w.actions, w.s.transport);
  w.s.current = core;
  w.s.peerId = peerId;
  w.s.status = 'established';
  w.s.peerMessageIdSync = peerSync;
  w.s.init = undefined;
  w.actions.push({ kind: 'established', initiatorSpi: core.spiI, responderSpi: core.spiR, peerId });
  if (newChild) {
    w.s.children = [...w.s.children, newChild.child];
    w.actions.push(
      installChild(newChild.child, childKeys(ctx, core, newChild.child.suite, core.ni, core.nr), false),
    );
  }
}
