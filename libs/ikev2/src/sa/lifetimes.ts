/**
 * Deadlines of an established IKE SA besides its requests: rekeying and hard expiry of the IKE SA
 * and of each child SA (RFC 7296 §2.8), rekey retries after a failure, and liveness checks after
 * a quiet period (§2.4). All are absolute times in the state; `nextTimeout` is the earliest of
 * every deadline the SA has, requests included, so the driver needs one timer per SA (or one for
 * all of them, ordered by this value).
 */
import { terminate, startDeleteIkeUnanswered } from '../exchange/informational.js';
import { connected, enqueue } from './task-manager.js';
import type { ChildSaState, IkeSaContext, IkeSaCore, IkeSaState, IkeTask, LifetimePolicy } from './types.js';
import { bytesEqual, type Work } from './work.js';

/** Default wait after a failed rekey before the next try (bounded by the hard expiry). */
export const DEFAULT_REKEY_RETRY_MS = 30_000;
const MIN_RETRY_MS = 1000;

/** How long a rekey's leftover IKE SAs wait for their DELETE exchange (strongSwan: 90 s too). */
export const PREVIOUS_WAIT_MS = 90_000;

/** `old`, replaced by a rekey, is kept until its DELETE exchange is done or PREVIOUS_WAIT_MS. */
export function holdPrevious(w: Work, old: IkeSaCore): void {
  w.s.previous = old;
  w.s.previousUntil = w.now + PREVIOUS_WAIT_MS;
}

/** The earliest deadline of `s`, or undefined when nothing is scheduled (or the SA is deleted). */
export function nextTimeout(s: IkeSaState): number | undefined {
  if (s.status === 'deleted') return undefined;
  let t = Number.POSITIVE_INFINITY;
  const at = (x: number | undefined) => {
    if (x !== undefined && x < t) t = x;
  };
  if (s.status === 'init-sent' && !s.current) at(s.init?.retransmitAt);
  if (s.status === 'init-answered') at(s.halfOpenExpiresAt);
  at(s.reconnectBy);
  at(s.current?.outstanding?.retransmitAt);
  at(s.previous?.outstanding?.retransmitAt);
  if (s.previous || s.collision) at(s.previousUntil);
  at(s.collision?.outstanding?.retransmitAt);
  if (s.status === 'established') {
    at(s.rekeyAt);
    at(s.expireAt);
    at(s.livenessAt);
    for (const c of s.children) {
      at(c.rekeyAt);
      at(c.expireAt);
    }
  }
  return t === Number.POSITIVE_INFINITY ? undefined : t;
}

/** A number in [0, 1) from the injected randomness (deterministic under test). */
function unit(ctx: IkeSaContext): number {
  const b = ctx.random(2);
  return ((b[0]! << 8) | b[1]!) / 65536;
}

function rekeyDelay(ctx: IkeSaContext, lifetimeMs: number, l: LifetimePolicy): number {
  const margin = Math.min(l.marginMs, lifetimeMs / 2);
  // RFC 7296 §2.8: randomized, so both ends do not rekey at once.
  return lifetimeMs - margin * (0.5 + 0.5 * unit(ctx));
}

/** Rekey and expiry times of a new (or rekeyed) IKE SA, and its first liveness check. */
export function scheduleIkeSa(w: Work): void {
  const l = w.ctx.policy.lifetimes;
  if (l) {
    w.s.rekeyAt = w.now + rekeyDelay(w.ctx, l.ikeMs, l);
    w.s.expireAt = w.now + l.ikeMs;
  }
  const dpd = w.ctx.policy.dpdMs;
  if (dpd !== undefined && dpd > 0) w.s.livenessAt = w.now + dpd;
}

/** A new child SA with its rekey and expiry times. */
export function scheduleChild(w: Work, child: ChildSaState): ChildSaState {
  const l = w.ctx.policy.lifetimes;
  if (!l) return child;
  // Object.assign, not `{ ...child, rekeyAt, expireAt }`: a spread that adds properties the source
  // lacks gives every object its own hidden class once V8 optimizes it (Node 20: 268 B per held
  // CHILD SA; issue #14, memory per SA). Same own properties either way.
  return Object.assign({}, child, {
    rekeyAt: w.now + rekeyDelay(w.ctx, l.childMs, l),
    expireAt: w.now + l.childMs,
  });
}

function retryAt(w: Work, expireAt: number | undefined): number {
  const retry = w.ctx.policy.lifetimes?.retryMs ?? DEFAULT_REKEY_RETRY_MS;
  const left = expireAt === undefined ? retry : (expireAt - w.now) / 2;
  return w.now + Math.max(MIN_RETRY_MS, Math.min(retry, left));
}

/**
 * A rekey (or other) request of ours failed without killing the SA: retry rekeys later, when the
 * SA has lifetimes (without them nothing expires, and a refused manual rekey is not repeated).
 */
export function taskFailed(w: Work, task: IkeTask): void {
  if (!w.ctx.policy.lifetimes) return;
  if (task.kind === 'rekey-ike') {
    w.s.rekeyAt = retryAt(w, w.s.expireAt);
    return;
  }
  if (task.kind === 'rekey-child') {
    w.s.children = w.s.children.map((c) =>
      bytesEqual(c.inboundSpi, task.oldSpi) ? { ...c, rekeyAt: retryAt(w, c.expireAt) } : c,
    );
  }
}

/** Lifetime and liveness deadlines due at `w.now` (the SA is established). */
export function onLifetimeTimers(w: Work, espActivityAt: number | undefined): void {
  const now = w.now;
  if (w.s.expireAt !== undefined && now >= w.s.expireAt) {
    // Hard expiry without a rekey: tell the peer if we can, but do not wait for it.
    startDeleteIkeUnanswered(w);
    return terminate(w, 'expired');
  }
  if (w.s.rekeyAt !== undefined && now >= w.s.rekeyAt) {
    w.s.rekeyAt = undefined;
    enqueue(w, { kind: 'rekey-ike' });
  }
  let children = w.s.children;
  for (const c of w.s.children) {
    if (c.expireAt !== undefined && now >= c.expireAt) {
      // The keys must not be used past their lifetime: out of the data plane now, DELETE next.
      children = children.filter((x) => x !== c);
      w.actions.push({ kind: 'remove-child', inboundSpi: c.inboundSpi, reason: 'expired' });
      enqueue(w, { kind: 'delete-child', spi: c.inboundSpi }, true);
    } else if (c.rekeyAt !== undefined && now >= c.rekeyAt) {
      children = children.map((x) => (x === c ? { ...c, rekeyAt: undefined } : x));
      enqueue(w, { kind: 'rekey-child', spi: c.inboundSpi });
    }
  }
  w.s.children = children;
  const dpd = w.ctx.policy.dpdMs;
  if (dpd !== undefined && dpd > 0 && w.s.livenessAt !== undefined && now >= w.s.livenessAt) {
    const last = Math.max(w.s.lastInboundAt, espActivityAt ?? Number.NEGATIVE_INFINITY);
    const quiet = now - last >= dpd;
    // An outstanding request is a liveness check already; a lost stream is handled by its wait.
    if (quiet && connected(w) && w.s.current?.outstanding === undefined) enqueue(w, { kind: 'liveness' });
    w.s.livenessAt = quiet ? now + dpd : last + dpd;
  }
}
