/**
 * The SA's path to the peer (RFC 7296 §2.23; RFC 9329 §6): it moves only on an authenticated new
 * message (or ESP packet), a new stream gets every outstanding request again, and a lost stream
 * suspends retransmission until the peer is back or the reconnect wait ends.
 */
import { resendOutstanding, SLOTS, suspendOutstanding } from './task-manager.js';
import type { Work } from './work.js';

/** RFC 9329 §6: every outstanding request goes out again on the (new) path. */
export function resendAll(w: Work): void {
  const path = w.s.path;
  if (!path) return;
  if (w.s.status === 'init-sent' && w.s.init?.request && !w.s.current) {
    w.actions.push({ kind: 'send', bytes: w.s.init.request, path });
    return;
  }
  for (const slot of SLOTS) {
    const core = w.s[slot];
    if (core?.outstanding) w.s[slot] = resendOutstanding(w, core);
  }
}

export function onConnectionLost(w: Work, pathId: string): void {
  if (w.s.path?.id !== pathId || w.s.disconnectedAt !== undefined) return;
  w.s.disconnectedAt = w.now;
  const wait = w.ctx.policy.reconnectWaitMs;
  if (wait !== undefined) w.s.reconnectBy = w.now + wait;
  for (const slot of SLOTS) {
    const core = w.s[slot];
    if (core) w.s[slot] = suspendOutstanding(core);
  }
}

/**
 * An authenticated, new message arrived on `w.from`: the SA now sends there (RFC 7296 §2.23; RFC
 * 9329 §6: the last valid message's connection), and a new stream gets every outstanding request.
 */
export function validatePath(w: Work): void {
  w.s.lastInboundAt = w.now;
  const from = w.from;
  if (!from) return;
  const old = w.s.path;
  const reconnected = w.s.disconnectedAt !== undefined;
  if (old?.id === from.id && !reconnected) return;
  w.s.path = from;
  w.s.disconnectedAt = undefined;
  w.s.reconnectBy = undefined;
  w.actions.push({ kind: 'path-validated', path: from });
  if (from.transport === 'tcp') resendAll(w);
}
