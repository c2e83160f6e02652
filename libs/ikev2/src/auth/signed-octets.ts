/**
 * RFC 7296 §2.15: what AUTH authenticates.
 *
 *   InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
 *   ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
 *   MACedIDForI = prf(SK_pi, RestOfInitIDPayload)   (RestOfInitIDPayload = IDType | RESERVED | InitIDData)
 *
 * With IKE_INTERMEDIATE exchanges (RFC 9242 §3.3.2) the octets are followed by
 * IntAuth = IntAuth_iN | IntAuth_rN | IKE_AUTH_MID, passed in as `intAuth`.
 */
import type { PrfAlgorithm } from '@ikegate/crypto';
import { concat } from '../codec/bytes.js';

/** The ID payload body (ID Type, 3 reserved octets, data) as MACedID wants it. */
export function idPayloadBody(idType: number, data: Uint8Array): Uint8Array {
  const body = new Uint8Array(4 + data.length);
  body[0] = idType;
  body.set(data, 4);
  return body;
}

/**
 * @param realMessage the first message this side sent (IKE_SA_INIT request for the initiator,
 *   response for the responder), exactly as sent
 * @param peerNonce the other side's Nonce Data
 * @param skP SK_pi for the initiator's octets, SK_pr for the responder's
 */
export function signedOctets(
  prf: PrfAlgorithm,
  realMessage: Uint8Array,
  peerNonce: Uint8Array,
  skP: Uint8Array,
  idBody: Uint8Array,
  intAuth?: Uint8Array,
): Uint8Array {
  const maced = prf.compute(skP, idBody);
  return concat(intAuth ? [realMessage, peerNonce, maced, intAuth] : [realMessage, peerNonce, maced]);
}
