/**
 * A held IKE SA's state as bytes, for an SA nothing has happened to for a while (issue #14, memory
 * per held SA). An established SA's state is ~1.9 KB of heap objects (a core, keys, a cached
 * response, children, selectors, a path); encoded it is one buffer of ~600 B that the GC never
 * walks. The endpoint keeps its most recently used SAs as objects and holds the others this way,
 * rebuilding one on its next event (a message, a timer, a command, a read of `state`).
 *
 * The encoding (plain-codec.ts) keeps what JSON would lose (typed arrays, bigints, `undefined`),
 * and what is not plain data (a class instance, a function) throws, so such a state stays an
 * object. Rebuilt, every byte field gets a buffer of its own (not a view of the blob, which is
 * wiped), and the state is laid out as a live one by `compactState`, as an adopted one is.
 */
import { compactState } from '../sa/compact.js';
import type { IkeSaState } from '../sa/types.js';
import { PlainCodec } from './plain-codec.js';

/** One per process: the shapes of SA states are the same whichever endpoint holds them. */
const codec = new PlainCodec();

/** The bytes of `s`; throws NotPlainData when `s` holds something other than plain data. */
export function freezeState(s: IkeSaState): Uint8Array {
  return codec.encode(s);
}

/**
 * The state `blob` holds, in the live layout; the blob is zeroed once it is rebuilt (it holds the
 * SA's keys), and left as it is when that throws.
 */
export function thawState(blob: Uint8Array, policy: Parameters<typeof compactState>[1]): IkeSaState {
  const s = compactState(codec.decode(blob, true) as IkeSaState, policy);
  blob.fill(0);
  return s;
}

/** The state `blob` holds, as a copy the caller may keep; the blob stays as it is. */
export function peekState(blob: Uint8Array): IkeSaState {
  return codec.decode(blob, true) as IkeSaState;
}

/**
 * Whether `s` is worth holding cold: established, no exchange in flight or queued, no rekey's
 * leftovers, no stream waited for, no fragments being reassembled. Anything else is about to
 * change (a retransmission, a DELETE, a deadline within seconds) and stays an object.
 */
export function coldCandidate(s: IkeSaState): boolean {
  const c = s.current;
  return (
    s.status === 'established' &&
    c !== undefined &&
    c.outstanding === undefined &&
    (c.reassembly === undefined || c.reassembly.length === 0) &&
    s.queue.length === 0 &&
    s.init === undefined &&
    s.previous === undefined &&
    s.collision === undefined &&
    (s.childCollisions === undefined || s.childCollisions.length === 0) &&
    s.disconnectedAt === undefined
  );
}
