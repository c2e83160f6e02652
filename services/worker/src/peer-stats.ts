/**
 * The per-peer series behind the "ikegate / Peer" dashboard (issue #13): one configured peer's
 * SAs, rekeys, traffic and last errors.
 *
 * How this works: SA counts and traffic are summed from the worker's own records when /metrics is
 * scraped (`figures`, handed to `Metrics.peerFigures`), so the per-packet path touches nothing per
 * peer. The octets of CHILD SAs that are gone (deleted, rekeyed, handed to another worker) are kept
 * per peer (`childGone`), so the counters stay monotonic in this process. Events (setups, rekeys,
 * errors) are counted as they happen.
 *
 * The `peer` label is the name of the peer entry in the configuration, so the number of series is
 * bounded by the configuration, never by what arrives from the network. An IKE_AUTH refused for a
 * claimed identity counts for the peer entry that identity would match: an operator wants to see
 * failed attempts at a peer, including someone else's guesses, and the entry names stay bounded.
 */
import type { Rejection } from '@ikegate/ikev2';
import type { Metrics, PeerFigures } from '@ikegate/telemetry';
import type { ChildRecord, SaRecord } from './records.js';
import type { PeerSettings } from './types.js';

/** IKE SA delete reasons that are an ordinary end, not something to look into. */
const ORDINARY_ENDS: ReadonlySet<string> = new Set([
  'deleted',
  'peer-deleted',
  'rekeyed',
  'expired',
  'half-open-expired',
]);

/** A delete reason or notify name as a label value: snake_case. */
const snake = (reason: string): string => reason.replaceAll('-', '_');

export class PeerStats {
  readonly #metrics: Metrics;
  readonly #clock: () => number;
  readonly #records: () => Iterable<SaRecord | undefined>;
  readonly #matchPeer: (peerId: string) => PeerSettings | undefined;
  /** Traffic of CHILD SAs no longer held here, by peer name. */
  readonly #gone = new Map<string, PeerFigures>();
  /**
   * Per peer name: the `ikegate_peer_last_established_timestamp_seconds` value last written, and
   * (by its presence) that the peer's rekey series exist. A setup then writes prom-client only
   * when the second changes, not three labelled operations per setup (issue #14). Bounded by the
   * configuration's peer names.
   */
  readonly #lastEstablished = new Map<string, number>();

  constructor(
    metrics: Metrics,
    clock: () => number,
    records: () => Iterable<SaRecord | undefined>,
    matchPeer: (peerId: string) => PeerSettings | undefined,
  ) {
    this.#metrics = metrics;
    this.#clock = clock;
    this.#records = records;
    this.#matchPeer = matchPeer;
  }

  /** What this worker holds per peer now, plus the traffic of what it no longer holds. */
  figures(): Map<string, PeerFigures> {
    const out = new Map<string, PeerFigures>();
    for (const [peer, f] of this.#gone) out.set(peer, { ...f });
    for (const rec of this.#records()) {
      const peer = rec?.peer?.name;
      if (peer === undefined) continue;
      const f = figuresOf(out, peer);
      if (rec!.entry.status === 'established') f.ikeSas++;
      for (const c of rec!.children) {
        f.childSas++;
        add(f, c);
      }
    }
    return out;
  }

  /** A CHILD SA left this worker (removed, rekeyed, or its IKE SA handed over): keep its traffic. */
  childGone(rec: SaRecord, child: ChildRecord): void {
    const peer = rec.peer?.name;
    if (peer !== undefined) add(figuresOf(this.#gone, peer), child);
  }

  established(rec: SaRecord): void {
    const peer = rec.peer?.name;
    if (peer === undefined) return;
    const seconds = Math.floor(this.#clock() / 1000);
    const last = this.#lastEstablished.get(peer);
    if (last === seconds) return;
    this.#lastEstablished.set(peer, seconds);
    this.#metrics.peerLastEstablished.set({ peer }, seconds);
    if (last !== undefined) return;
    // The rekey series exist from the first SA on (at 0), so increase() sees the first rekey.
    this.#metrics.peerRekeys.inc({ peer, kind: 'ike' }, 0);
    this.#metrics.peerRekeys.inc({ peer, kind: 'child' }, 0);
  }

  rekeyed(rec: SaRecord, kind: 'ike' | 'child'): void {
    const peer = rec.peer?.name;
    if (peer !== undefined) this.#metrics.peerRekeys.inc({ peer, kind });
  }

  /** A refused exchange: by the SA's authenticated peer, or by the one its IDi claimed. */
  rejected(rec: SaRecord | undefined, r: Rejection): void {
    const peer =
      rec?.peer?.name ?? (r.claimedId !== undefined ? this.#matchPeer(r.claimedId)?.name : undefined);
    if (peer === undefined) return;
    this.#metrics.peerError(peer, r.by === 'peer' ? `peer_${r.reason}` : r.reason, this.#clock());
  }

  childFailed(rec: SaRecord, reason: string): void {
    const peer = rec.peer?.name;
    if (peer !== undefined) this.#metrics.peerError(peer, `child_${snake(reason)}`, this.#clock());
  }

  /** An IKE SA of an authenticated peer ended; a fault (dead peer, lost connection, ...) counts. */
  deleted(rec: SaRecord, reason: string): void {
    const peer = rec.peer?.name;
    if (peer === undefined || ORDINARY_ENDS.has(reason)) return;
    this.#metrics.peerError(peer, snake(reason), this.#clock());
  }
}

function figuresOf(map: Map<string, PeerFigures>, peer: string): PeerFigures {
  let f = map.get(peer);
  if (!f) {
    f = { ikeSas: 0, childSas: 0, bytesIn: 0, bytesOut: 0, packetsIn: 0, packetsOut: 0 };
    map.set(peer, f);
  }
  return f;
}

function add(f: PeerFigures, c: ChildRecord): void {
  f.bytesIn += c.bytesIn;
  f.bytesOut += c.bytesOut;
  f.packetsIn += c.packetsIn;
  f.packetsOut += c.packetsOut;
}
