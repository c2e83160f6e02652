/**
 * IKE_INTERMEDIATE (RFC 9242) carrying one additional key exchange (RFC 9370 ADDKE1, e.g.
 * ML-KEM-768) between IKE_SA_INIT and IKE_AUTH.
 *
 * Both sides announce INTERMEDIATE_EXCHANGE_SUPPORTED in IKE_SA_INIT; when the chosen proposal has
 * an ADDKE1 transform the initiator sends an IKE_INTERMEDIATE request (Message ID 1) with a KE
 * payload of that method, the responder answers with its KE payload, and both replace the IKE SA
 * keys (RFC 9370 §2.2.4):
 *
 *   SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr); then prf+ as in RFC 7296 §2.14.
 *
 * AUTH then also covers the exchange (RFC 9242 §3.3.2): IntAuth = IntAuth_i1 | IntAuth_r1 |
 * IKE_AUTH_MID, where IntAuth_x1 = prf(SK_px, A | P) with the keys that protected the
 * IKE_INTERMEDIATE, A the IKE header and Encrypted payload header with their Length fields set as
 * if IV, padding and ICV were absent (and as if not fragmented), and P the inner payloads in clear.
 * P is taken as the re-encoding of the decoded payloads of a received message.
 */
import { deriveAdditionalKeSkeyseed, type IkeSaKeys } from '@ikegate/crypto';
import { encodePayloads, ExchangeType, NotifyError, type Payload, PayloadType } from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import { concat } from '../codec/protect.js';
import { deriveIkeSaKeysForSuite } from '../negotiation/index.js';
import { flagsFor, sendRequest, sendResponse } from '../sa/task-manager.js';
import type { IkeSaContext, IkeSaCore, IkeTask } from '../sa/types.js';
import { copy, notify, reject, requirePayload, type Work } from '../sa/work.js';
import { startAuth } from './ike-auth.js';
import { keComplete, keInitiation, keRespond, prfOf } from './key-exchange.js';

const SK_PAYLOAD = 46;

function u32(n: number): Uint8Array {
  return Uint8Array.of(n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff);
}

/** IntAuth_x1 = prf(SK_px, A | P) over one IKE_INTERMEDIATE message (RFC 9242 §3.3.2). */
function intAuthOf(
  ctx: IkeSaContext,
  core: IkeSaCore,
  fromInitiator: boolean,
  response: boolean,
  messageId: number,
  inner: readonly Payload[],
): Uint8Array {
  const chain = encodePayloads(inner);
  const p = chain.bytes;
  const a = new Uint8Array(28 + 4);
  a.set(core.spiI, 0);
  a.set(core.spiR, 8);
  a[16] = SK_PAYLOAD;
  a[17] = 0x20;
  a[18] = ExchangeType.IKE_INTERMEDIATE;
  a[19] = flagsFor(fromInitiator ? 'initiator' : 'responder', response);
  a.set(u32(messageId), 20);
  a.set(u32(32 + p.length), 24);
  a[28] = chain.firstPayload;
  a[29] = 0;
  a[30] = ((4 + p.length) >>> 8) & 0xff;
  a[31] = (4 + p.length) & 0xff;
  const prf = prfOf(ctx.provider, core.suite.prf);
  return prf.compute(fromInitiator ? core.keys.skPi : core.keys.skPr, a, p);
}

/** RFC 9370 §2.2.4: the IKE SA keys after an additional key exchange. */
function updatedKeys(ctx: IkeSaContext, core: IkeSaCore, secret: Uint8Array): IkeSaKeys {
  const prf = prfOf(ctx.provider, core.suite.prf);
  const seed = deriveAdditionalKeSkeyseed(prf, core.keys.skD, secret, core.ni, core.nr);
  return deriveIkeSaKeysForSuite(ctx.provider, core.suite, seed, core.ni, core.nr, core.spiI, core.spiR);
}

/** IntAuth | IKE_AUTH_MID for the signed octets, when an IKE_INTERMEDIATE exchange took place. */
export function intAuthFor(intAuth: Uint8Array | undefined, authMessageId: number): Uint8Array | undefined {
  return intAuth === undefined ? undefined : concat([intAuth, u32(authMessageId)]);
}

function kePayload(group: number, data: Uint8Array): Payload {
  return { type: PayloadType.KE, critical: false, group, data };
}

/** Initiator: sends the IKE_INTERMEDIATE request with our ADDKE1 KE payload. */
export function startIntermediate(w: Work): void {
  const core = w.s.current!;
  const keGroup = core.suite.additionalKeyExchanges[0]!;
  const keSeed = copy(w.ctx.random(64));
  const ke = keInitiation(w.ctx.provider, keGroup, keSeed);
  const inner = [kePayload(keGroup, ke.publicData)];
  const task: IkeTask = {
    kind: 'intermediate',
    keSeed,
    keGroup,
    intAuthI: intAuthOf(w.ctx, core, true, false, core.nextRequestId, inner),
  };
  w.s.current = sendRequest(w, core, ExchangeType.IKE_INTERMEDIATE, inner, task);
}

/**
 * Initiator: the responder's KE; updates the keys, keeps IntAuth_i1 | IntAuth_r1 for AUTH and
 * goes on to IKE_AUTH. @throws RemoteProtocolError when the response has no usable KE payload
 */
export function processIntermediateResponse(
  w: Work,
  inner: readonly Payload[],
  task: Extract<IkeTask, { kind: 'intermediate' }>,
  messageId: number,
): void {
  const core = w.s.current!;
  const ke = requirePayload(inner, PayloadType.KE);
  if (ke.group !== task.keGroup)
    throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_INVALID_KE', 'ADDKE group mismatch');
  const secret = keComplete(keInitiation(w.ctx.provider, task.keGroup, task.keSeed), ke.data);
  const intAuthR = intAuthOf(w.ctx, core, false, true, messageId, inner);
  w.s.current = { ...core, keys: updatedKeys(w.ctx, core, secret) };
  w.s.init = { ...w.s.init!, intAuth: concat([task.intAuthI, intAuthR]) };
  startAuth(w);
}

/** Responder: answers the IKE_INTERMEDIATE request and updates the keys. */
export function respondIntermediate(
  w: Work,
  inner: readonly Payload[],
  messageId: number,
  requestDigest: Uint8Array,
): void {
  const core = w.s.current!;
  const group = core.suite.additionalKeyExchanges[0];
  const init = w.s.init!;
  const ke = inner.find((p) => p.type === PayloadType.KE && !('unknown' in p)) as
    Extract<Payload, { type: typeof PayloadType.KE }> | undefined;
  if (group === undefined || init.intAuth !== undefined || !ke || ke.group !== group) {
    const out = [notify(NotifyError.INVALID_SYNTAX)];
    w.s.current = sendResponse(w, core, ExchangeType.IKE_INTERMEDIATE, messageId, out, requestDigest);
    reject(w, ExchangeType.IKE_INTERMEDIATE, NotifyError.INVALID_SYNTAX, 'us', 'unexpected IKE_INTERMEDIATE');
    return;
  }
  const { publicData, sharedSecret } = keRespond(w.ctx.provider, group, ke.data, w.ctx.random);
  const out = [kePayload(group, publicData)];
  const intAuthI = intAuthOf(w.ctx, core, true, false, messageId, inner);
  const intAuthR = intAuthOf(w.ctx, core, false, true, messageId, out);
  const answered = sendResponse(w, core, ExchangeType.IKE_INTERMEDIATE, messageId, out, requestDigest);
  w.s.current = { ...answered, keys: updatedKeys(w.ctx, core, sharedSecret) };
  w.s.init = { ...init, intAuth: concat([intAuthI, intAuthR]) };
}
