/**
 * Allowed-value checks (STYLE.md rule 5: `decode` checks layout, `verify` checks values).
 *
 * Each payload file's `verify*` returns a reason or undefined; `verifyPayloads` applies the one
 * for each payload and turns the first reason into INVALID_SYNTAX (RFC 7296 §3.10.1: "the
 * message was malformed or contained invalid values"). Callers run it on payloads they are
 * about to act on: after decryption for protected messages, so an unauthenticated message is
 * never answered with a notify it could have forged. Checks that depend on negotiated state
 * (KE group, TS narrowing, SPI known) belong to the exchanges, not here.
 */
import { badValue } from './bytes.js';
import { PayloadType } from './constants.js';
import { verifyAuth } from './payloads/auth-payload.js';
import { verifyCertReq } from './payloads/certreq-payload.js';
import { verifyCp } from './payloads/cp-payload.js';
import { verifyId } from './payloads/id-payload.js';
import { verifyKe } from './payloads/ke-payload.js';
import { verifyNonce } from './payloads/nonce-payload.js';
import { verifyNotify } from './payloads/notify-payload.js';
import { verifySa } from './payloads/sa-payload.js';
import { verifyTs } from './payloads/ts-payload.js';
import type { Payload } from './types.js';

function reason(p: Payload): string | undefined {
  if ('unknown' in p) return undefined;
  switch (p.type) {
    case PayloadType.SA:
      return verifySa(p);
    case PayloadType.KE:
      return verifyKe(p);
    case PayloadType.IDi:
    case PayloadType.IDr:
      return verifyId(p);
    case PayloadType.CERTREQ:
      return verifyCertReq(p);
    case PayloadType.AUTH:
      return verifyAuth(p);
    case PayloadType.NONCE:
      return verifyNonce(p);
    case PayloadType.NOTIFY:
      return verifyNotify(p);
    case PayloadType.TSi:
    case PayloadType.TSr:
      return verifyTs(p);
    case PayloadType.CP:
      return verifyCp(p);
    default:
      return undefined;
  }
}

/** @throws RemoteProtocolError IKEGATE_ERR_IKEV2_BAD_VALUE, notify INVALID_SYNTAX. */
export function verifyPayloads(payloads: readonly Payload[]): void {
  for (const p of payloads) {
    const why = reason(p);
    if (why !== undefined) throw badValue(`payload ${p.type}: ${why}`);
  }
}
