/**
 * What the control API sees of a worker's SAs: summaries without keys, pages of them in SPI
 * order, and who holds a pool's addresses.
 *
 * Pages are keyset pages: ordered by our IKE SPI (unique, never reused while the SA lives) and
 * continued after the last SPI of the previous page, so an SA that exists for the whole listing
 * is returned exactly once however many SAs come and go meanwhile, and a page across several
 * workers is a merge of each worker's page after the same SPI.
 */
import { hex32 } from './data-plane.js';
import { ipv4Text } from './ipv4.js';
import { type SaRecord, spiOf } from './records.js';
import type { SaSummary } from './types.js';

/** Filters and position of one page (GET /v1/sas). */
export interface SaQuery {
  /** Only SPIs greater than this (16 hex digits, lowercase); none: from the start. */
  readonly after?: string;
  /** At most this many; the caller bounds it (the API: 1-1000). */
  readonly limit: number;
  /** The configured peer's name. */
  readonly peer?: string;
  /** The authenticated identity: exact (case-insensitive), or `*suffix`. */
  readonly identity?: string;
  readonly transport?: string;
  readonly state?: string;
  readonly virtualIp?: string;
  /** The edge the SA's peer is reached through (cluster). */
  readonly edge?: string;
}

export interface SaPage {
  readonly items: SaSummary[];
  /** More SAs match after the last item. */
  readonly more: boolean;
  /** SAs matching every filter but `state` and the position, by state. */
  readonly counts: Record<string, number>;
}

export interface SummaryContext {
  readonly worker?: string;
  readonly epoch?: (shard: number) => number | undefined;
}

/** `<edgeId>|<connection>` (libs/relay) names the edge; `ikegate up` paths have none. */
export function edgeOf(rec: SaRecord): string | undefined {
  const i = rec.path.connection.indexOf('|');
  return i > 0 ? rec.path.connection.slice(0, i) : undefined;
}

export function summarize(r: SaRecord, ctx: SummaryContext = {}): SaSummary {
  const edge = edgeOf(r);
  const epoch = ctx.epoch?.(r.shard);
  const last = Math.max(r.entry.lastInboundAt, r.lastEspInbound ?? 0);
  return {
    spi: spiOf(r),
    status: r.entry.status,
    ...(r.peerId !== undefined ? { peerId: r.peerId } : {}),
    ...(r.peer ? { peer: r.peer.name } : {}),
    shard: r.shard,
    ...(ctx.worker !== undefined ? { worker: ctx.worker } : {}),
    ...(epoch !== undefined ? { epoch } : {}),
    ...(edge !== undefined ? { edge } : {}),
    transport: r.path.transport,
    remote: `${r.path.remote.address}:${r.path.remote.port}`,
    ...(r.virtualIp ? { virtualIp: ipv4Text(r.virtualIp) } : {}),
    createdAt: new Date(r.createdAt).toISOString(),
    ...(r.establishedAt ? { establishedAt: new Date(r.establishedAt).toISOString() } : {}),
    ...(last > 0 ? { lastActivity: new Date(last).toISOString() } : {}),
    children: r.children.map((c) => ({
      inboundSpi: hex32(c.inboundSpi),
      outboundSpi: hex32(c.outboundSpi),
      packetsIn: c.packetsIn,
      packetsOut: c.packetsOut,
      bytesIn: c.bytesIn,
      bytesOut: c.bytesOut,
    })),
  };
}

function identityMatches(pattern: string, peerId: string | undefined): boolean {
  if (peerId === undefined) return false;
  const id = peerId.toLowerCase();
  const p = pattern.toLowerCase();
  return p.startsWith('*') ? id.endsWith(p.slice(1)) : id === p;
}

function matches(r: SaRecord, q: SaQuery): boolean {
  if (q.peer !== undefined && r.peer?.name !== q.peer) return false;
  if (q.identity !== undefined && !identityMatches(q.identity, r.peerId)) return false;
  if (q.transport !== undefined && r.path.transport !== q.transport) return false;
  if (q.virtualIp !== undefined && (!r.virtualIp || ipv4Text(r.virtualIp) !== q.virtualIp)) return false;
  if (q.edge !== undefined && edgeOf(r) !== q.edge) return false;
  return true;
}

/** One page of `records` (any order) for `q`: O(n) to filter, O(k log k) for the k after `after`. */
export function page(records: Iterable<SaRecord>, q: SaQuery, ctx: SummaryContext = {}): SaPage {
  const counts: Record<string, number> = {};
  const after: SaRecord[] = [];
  for (const r of records) {
    if (!matches(r, q)) continue;
    const status = r.entry.status;
    counts[status] = (counts[status] ?? 0) + 1;
    if (q.state !== undefined && status !== q.state) continue;
    if (q.after !== undefined && !(spiOf(r) > q.after)) continue;
    after.push(r);
  }
  after.sort((a, b) => (spiOf(a) < spiOf(b) ? -1 : 1));
  return {
    items: after.slice(0, q.limit).map((r) => summarize(r, ctx)),
    more: after.length > q.limit,
    counts,
  };
}
