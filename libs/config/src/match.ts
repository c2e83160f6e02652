/**
 * Which configured peer a remote identity belongs to. An exact id beats any wildcard; among
 * wildcards the most specific wins (the longest `*suffix` the id ends with), and `*` comes last,
 * whatever the order peers were written or created in. Comparison is case-insensitive (DNS names
 * are; RFC 822 local parts rarely differ only in case).
 */
import type { Config, PeerIdPattern, Peer } from './config.js';

const indexes = new WeakMap<object, PeerIndex<Peer>>();

export function matchPeer(config: Pick<Config, 'peers'>, peerId: string): Peer | undefined {
  let index = indexes.get(config.peers);
  if (!index) {
    index = new PeerIndex(config.peers);
    indexes.set(config.peers, index);
  }
  return index.match(peerId);
}

/**
 * Peers by identity pattern, for a lookup per IKE_AUTH that does not grow with the number of
 * peers: an exact id first; then the most specific wildcard (the longest `*suffix` that the id
 * ends with, found by looking each suffix of the id up, so the cost is the id's length); then `*`.
 * Ids compare case-insensitively. Immutable: build a new index when the peers change.
 */
export class PeerIndex<T extends { readonly match: PeerIdPattern }> {
  readonly #exact = new Map<string, T>();
  readonly #suffix = new Map<string, T>();
  #any: T | undefined;
  readonly size: number;

  constructor(peers: Iterable<T>) {
    let n = 0;
    for (const p of peers) {
      n++;
      const m = p.match;
      if (m.kind === 'exact') this.#exact.set(m.id.toLowerCase(), p);
      else if (m.kind === 'suffix') this.#suffix.set(m.suffix.toLowerCase(), p);
      else this.#any = p;
    }
    this.size = n;
  }

  match(peerId: string): T | undefined {
    const id = peerId.toLowerCase();
    const exact = this.#exact.get(id);
    if (exact) return exact;
    if (this.#suffix.size > 0) {
      for (let i = 0; i < id.length; i++) {
        const p = this.#suffix.get(id.slice(i));
        if (p) return p;
      }
    }
    return this.#any;
  }
}
