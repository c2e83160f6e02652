/**
 * PSKs of managed peers at rest in Redis: a peer document whose `auth` is `{ psk: "<secret>" }` is
 * kept as `{ psk: { sealed: "<base64 of Sealer.seal>" } }` (AES-256-GCM under the KEK, seal.ts),
 * in the peers hash and in the change log alike. `{ psk: { file } }` and `{ ca }` hold no secret and
 * are kept as they are.
 *
 * The seal's AAD binds the value to shard 0 and the key `cfg:peer:<name>`, so a sealed PSK copied
 * into another peer's document fails to open instead of authenticating that peer with it.
 */
import type { PeerDoc } from '@ikegate/config';
import { SealedValueError } from '../errors.js';
import type { Sealer } from '../seal.js';
import { isRecord } from './changes.js';

/** The Sealer shard every managed-config value is sealed under (they belong to no SA shard). */
export const CONFIG_SEAL_SHARD = 0;

export const pskSealKey = (peer: string): string => `cfg:peer:${peer}`;

/** The document as kept at rest: `peer` is the name it is stored under. */
export function sealPeerDoc(sealer: Sealer, peer: string, doc: PeerDoc): unknown {
  const auth: unknown = doc.auth;
  if (!isRecord(auth) || typeof auth.psk !== 'string') return doc;
  const sealed = sealer.seal(CONFIG_SEAL_SHARD, pskSealKey(peer), Buffer.from(auth.psk, 'utf8'));
  return { ...doc, auth: { ...auth, psk: { sealed: Buffer.from(sealed).toString('base64') } } };
}

/**
 * The document as written, from its form at rest under the name `peer`.
 * @throws SealedValueError (the Sealer's code) naming the peer, when its PSK does not open: another
 *   KEK, a value altered at rest, or one moved from another peer.
 */
export function openPeerDoc(sealer: Sealer, peer: string, stored: PeerDoc): PeerDoc {
  const auth: unknown = stored.auth;
  if (!isRecord(auth) || !isRecord(auth.psk) || typeof auth.psk.sealed !== 'string') return stored;
  let psk: string;
  try {
    const plain = sealer.open(CONFIG_SEAL_SHARD, pskSealKey(peer), Buffer.from(auth.psk.sealed, 'base64'));
    psk = Buffer.from(plain).toString('utf8');
  } catch (e) {
    if (!(e instanceof SealedValueError)) throw e;
    throw new SealedValueError(
      e.code,
      `the PSK of managed peer ${JSON.stringify(peer)} does not open: ${e.message} ` +
        '(a PSK sealed for another peer never opens under this one)',
    );
  }
  return { ...stored, auth: { ...auth, psk } as PeerDoc['auth'] };
}
