/** What the control API sees of a worker's SAs: summaries without keys. */
import { hex32 } from './data-plane.js';
import { ipv4Text } from './ipv4.js';
import { type SaRecord, spiOf } from './records.js';
import type { SaSummary } from './types.js';

export function summarize(r: SaRecord): SaSummary {
  return {
    spi: spiOf(r),
    status: r.entry.state.status,
    ...(r.peerId !== undefined ? { peerId: r.peerId } : {}),
    ...(r.peer ? { peer: r.peer.name } : {}),
    shard: r.shard,
    transport: r.path.transport,
    remote: `${r.path.remote.address}:${r.path.remote.port}`,
    ...(r.virtualIp ? { virtualIp: ipv4Text(r.virtualIp) } : {}),
    ...(r.establishedAt ? { establishedAt: new Date(r.establishedAt).toISOString() } : {}),
    children: [...r.children.values()].map((c) => ({
      inboundSpi: hex32(c.inboundSpi),
      outboundSpi: hex32(c.outboundSpi),
      packetsIn: c.packetsIn,
      packetsOut: c.packetsOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
    })),
  };
}
