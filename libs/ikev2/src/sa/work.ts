/**
 * The scratch record one `step` works on: a shallow copy of the state that task functions replace
 * fields of (never mutating what the caller passed in), the actions collected so far, and where
 * the message being handled came from.
 */
import { type NotifyPayload, type Payload, PayloadType } from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import type { IkePath, IkeSaAction, IkeSaContext, IkeSaState } from './types.js';

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface Work {
  s: Mutable<IkeSaState>;
  readonly actions: IkeSaAction[];
  ctx: IkeSaContext;
  readonly now: number;
  /** The path of the message being handled (responses go there), if the event is a message. */
  readonly from?: IkePath;
}

export function findPayload<T extends Payload['type']>(
  payloads: readonly Payload[],
  type: T,
): Extract<Payload, { type: T }> | undefined {
  return payloads.find((p) => p.type === type && !('unknown' in p)) as
    Extract<Payload, { type: T }> | undefined;
}

export function requirePayload<T extends Payload['type']>(
  payloads: readonly Payload[],
  type: T,
): Extract<Payload, { type: T }> {
  const p = findPayload(payloads, type);
  if (!p) throw new RemoteProtocolError('IKEGATE_ERR_IKEV2_MISSING_PAYLOAD', `payload ${type} missing`);
  return p;
}

export function notifies(payloads: readonly Payload[]): NotifyPayload[] {
  return payloads.filter((p): p is NotifyPayload => p.type === PayloadType.NOTIFY && !('unknown' in p));
}

export function findNotify(payloads: readonly Payload[], notifyType: number): NotifyPayload | undefined {
  return notifies(payloads).find((n) => n.notifyType === notifyType);
}

/** The first error notify (type < 16384, RFC 7296 §3.10.1), if any. */
export function errorNotify(payloads: readonly Payload[]): NotifyPayload | undefined {
  return notifies(payloads).find((n) => n.notifyType < 16384);
}

export function notify(
  notifyType: number,
  data: Uint8Array = new Uint8Array(0),
  protocolId = 0,
  spi: Uint8Array = new Uint8Array(0),
): NotifyPayload {
  return { type: PayloadType.NOTIFY, critical: false, protocolId, notifyType, spi, data };
}

export function copy(b: Uint8Array): Uint8Array {
  return b.slice();
}

/**
 * Copies of `a` and `b` as views of one new buffer. Each typed array with its own buffer costs a
 * JSArrayBuffer (88 B of heap) and a backing store besides the view, so values kept together for
 * an SA's life (its SPIs) share one (issue #14, memory per held SA: 86 B per pair).
 */
export function copyPair(a: Uint8Array, b: Uint8Array): [Uint8Array, Uint8Array] {
  const both = new Uint8Array(a.length + b.length);
  both.set(a, 0);
  both.set(b, a.length);
  return [both.subarray(0, a.length), both.subarray(a.length)];
}

/**
 * Copies of `parts` as views of one new buffer, as copyPair. An empty part is returned as it is
 * (the shared NO_KEY stays shared; a view of its own would cost 96 B for nothing).
 */
export function copyAll(parts: readonly Uint8Array[]): Uint8Array[] {
  let total = 0;
  for (const p of parts) total += p.length;
  const all = new Uint8Array(total);
  let at = 0;
  return parts.map((p) => {
    if (p.length === 0) return p;
    all.set(p, at);
    at += p.length;
    return all.subarray(at - p.length, at);
  });
}

/**
 * `list` with `item` at the end, in an array of its own length. `[...list, item]` gives an array
 * with room for 16 more (152 B where 24 do), and an SA keeps its children's list (issue #14).
 */
export function appended<T>(list: readonly T[], item: T): T[] {
  return list.concat([item]);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Unsigned big-endian comparison, shorter-is-lower on a common prefix (RFC 7296 §2.8.1 nonces). */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a[i]! - b[i]!;
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}

/** Exchange type names, for rejection and drop labels. */
const EXCHANGE_NAMES: Readonly<Record<number, string>> = {
  34: 'IKE_SA_INIT',
  35: 'IKE_AUTH',
  36: 'CREATE_CHILD_SA',
  37: 'INFORMATIONAL',
  43: 'IKE_INTERMEDIATE',
  44: 'IKE_FOLLOWUP_KE',
};

export function exchangeName(type: number): string {
  return EXCHANGE_NAMES[type] ?? 'OTHER';
}

/** RFC 7296 §3.10.1 error names as snake_case metric labels. */
const NOTIFY_REASONS: Readonly<Record<number, string>> = {
  1: 'unsupported_critical_payload',
  4: 'invalid_ike_spi',
  5: 'invalid_major_version',
  7: 'invalid_syntax',
  9: 'invalid_message_id',
  11: 'invalid_spi',
  14: 'no_proposal_chosen',
  17: 'invalid_ke_payload',
  24: 'authentication_failed',
  34: 'single_pair_required',
  35: 'no_additional_sas',
  36: 'internal_address_failure',
  37: 'failed_cp_required',
  38: 'ts_unacceptable',
  39: 'invalid_selectors',
  43: 'temporary_failure',
  44: 'child_sa_not_found',
};

export function notifyReason(type: number): string {
  return NOTIFY_REASONS[type] ?? 'error_notify';
}

/** Records a refused exchange (STYLE: every rejection leaves a log line and a metric). */
export function reject(
  w: Work,
  exchangeType: number,
  notifyType: number,
  by: 'us' | 'peer',
  detail?: string,
  claimedId?: string,
): void {
  w.actions.push({
    kind: 'rejected',
    exchange: exchangeName(exchangeType),
    reason: notifyReason(notifyType),
    by,
    ...(detail !== undefined ? { detail } : {}),
    ...(claimedId !== undefined ? { claimedId } : {}),
  });
}
