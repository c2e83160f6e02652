/** The empty state every IKE SA starts from (types.ts IkeSaState). */
import type { IkeSaState } from './types.js';

/** A fresh initiator SA; it then gets the `initiate` command. */
export function createIkeSa(now = 0): IkeSaState {
  return {
    status: 'idle',
    children: [],
    queue: [],
    natLocal: false,
    natRemote: false,
    peerMessageIdSync: false,
    lastInboundAt: now,
  };
}
