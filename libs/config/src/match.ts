/**
 * Which configured peer a remote identity belongs to. An exact id beats any wildcard; among
 * wildcards (`*suffix` and `*`) the first in file order wins, so list specific patterns first.
 * Comparison is case-insensitive (DNS names are; RFC 822 local parts rarely differ only in case).
 */
import type { Config, Peer } from './config.js';

export function matchPeer(config: Pick<Config, 'peers'>, peerId: string): Peer | undefined {
  const id = peerId.toLowerCase();
  let wildcard: Peer | undefined;
  for (const peer of config.peers) {
    const m = peer.match;
    if (m.kind === 'exact') {
      if (m.id.toLowerCase() === id) return peer;
    } else if (wildcard === undefined) {
      if (m.kind === 'any' || id.endsWith(m.suffix.toLowerCase())) wildcard = peer;
    }
  }
  return wildcard;
}
