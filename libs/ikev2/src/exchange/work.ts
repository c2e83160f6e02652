/**
 * The scratch record one `step` works on: a shallow copy of the state that task functions replace
 * fields of (never mutating what the caller passed in), and the actions collected so far.
 */
import { type NotifyPayload, type Payload, PayloadType } from '../codec/index.js';
import { RemoteProtocolError } from '../errors.js';
import type { IkeSaAction, IkeSaContext, IkeSaState } from './types.js';

export type Mutable<T> = { -readonly [K in keyof T]: T[K] };

export interface Work {
  s: Mutable<IkeSaState>;
  readonly actions: IkeSaAction[];
  ctx: IkeSaContext;
  readonly now: number;
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
