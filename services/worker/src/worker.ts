/**
 * A worker: runs IKEv2 and ESP for the shards it owns and moves inner packets between ESP and a
 * packet device (the TUN). It receives frames from edges through `WorkerLink` and sends through
 * `EdgeLink` (libs/cluster frames.ts), so it never touches a socket: in `ikegate up` the edge
 * calls it directly, in a cluster gRPC carries the same frames.
 *
 * One file per concern, wired here:
 * - ike-driver.ts: the sans-IO IKE endpoint (libs/ikev2), its one timer, SA contexts, and the
 *   explicit events it reports (established, path validated, child installed, deleted, ...);
 * - data-plane.ts: child SAs as ESP objects, ESP in and out, the TUN side;
 * - ha.ts: write-through snapshots and takeover (adopt, forget a shard);
 * - admin.ts: what the control API shows.
 *
 * Drops are counted by reason, never thrown (STYLE.md rule 7): a peer's bad input touches only the
 * SA its SPI names, and only after the IKE engine authenticated it.
 */
import type { EdgeLink, InboundFrame, PeerPath, WorkerLink } from '@ikegate/cluster';
import type { IkeSaAction } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { page, type SaPage, type SaQuery, summarize } from './admin.js';
import { DataPlane, remoteRanges } from './data-plane.js';
import { Takeover } from './ha.js';
import { IkeDriver } from './ike-driver.js';
import { ipv4Text, ipv4ToNumber, u32Octets } from './ipv4.js';
import { LogLimiter } from './log-limit.js';
import { PeerStats } from './peer-stats.js';
import { type SaRecord, spiOf } from './records.js';
import type { SaSnapshot } from './snapshot.js';
import type { InitiateOptions, PacketDevice, SaSummary, WorkerSettings } from './types.js';

export { TAKEOVER_SEQUENCE_MARGIN } from './data-plane.js';
export type { SaPage, SaQuery } from './admin.js';
export type {
  AddressPoolLike,
  ChildInfo,
  InitiateOptions,
  PacketDevice,
  PeerSettings,
  Persistence,
  SaSummary,
  WorkerObserver,
  WorkerSettings,
} from './types.js';

type SaAction = Exclude<IkeSaAction, { kind: 'send' }>;

export class Worker implements WorkerLink {
  readonly #settings: WorkerSettings;
  readonly #edge: EdgeLink;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #clock: () => number;
  readonly #dataPlane: DataPlane;
  readonly #driver: IkeDriver;
  readonly #ha: Takeover;
  readonly #peers: PeerStats;
  readonly #logLimit = new LogLimiter();
  #closed = false;

  /** `ikegate_tun_packets_total{direction="rx"}`, resolved once (per-packet path). */
  readonly #tunRx: { inc(value?: number): void };
  /** `ikegate_ike_sa_events_total{event="established"}`, resolved once (once per setup). */
  readonly #setupsEstablished: { inc(value?: number): void };

  constructor(settings: WorkerSettings, edge: EdgeLink, log: Logger, metrics: Metrics) {
    this.#settings = settings;
    this.#edge = edge;
    this.#log = log;
    this.#metrics = metrics;
    this.#tunRx = metrics.hot(metrics.tunPackets, 'rx');
    this.#setupsEstablished = metrics.hot(metrics.ikeSaEvents, 'established', '');
    this.#clock = settings.clock ?? Date.now;
    // Series an alert or a dashboard waits for exist from the start (at 0), not from the first event.
    for (const [event, reason] of [
      ['established', ''],
      ['adopted', ''],
      ['deleted', 'connection-lost'],
    ] as const)
      metrics.ikeSaEvents.inc({ event, reason }, 0);
    for (const [exchange, reason] of [
      ['IKE_SA_INIT', 'no_proposal_chosen'],
      ['IKE_SA_INIT', 'cookie_required'],
      ['IKE_AUTH', 'authentication_failed'],
      ['IKE_AUTH', 'ts_unacceptable'],
      ['CREATE_CHILD_SA', 'no_proposal_chosen'],
    ] as const)
      metrics.ikeRejections.inc({ exchange, reason }, 0);
    // Setups that happen before the first scrape still show up in rate() (a series must exist first).
    for (const transport of ['udp', 'tcp', 'tls']) metrics.ikeSaSetup.zero({ transport });
    this.#dataPlane = new DataPlane(
      settings,
      edge,
      log,
      metrics,
      {
        pathChanged: (rec, path) => this.#driver.espPath(rec, path),
        rekeyNeeded: (rec, child) =>
          void this.#driver.command(rec, { kind: 'rekey-child', spi: u32Octets(child.inboundSpi) }),
        checkpoint: (rec) => this.#ha.dirty(rec),
        childGone: (rec, child) => this.#peers.childGone(rec, child),
        childLost: (rec, child) =>
          void this.#driver.command(rec, { kind: 'delete-child', spi: u32Octets(child.inboundSpi) }),
      },
      this.#clock,
    );
    this.#driver = new IkeDriver(
      settings,
      edge,
      log,
      metrics,
      {
        action: (rec, a) => this.#onAction(rec, a),
        espSpiTaken: (spi) => this.#dataPlane.hasSpi(spi),
        durable: (rec) => this.#ha.durable(rec),
      },
      this.#clock,
    );
    this.#ha = new Takeover(settings, this.#driver, this.#dataPlane, log, metrics);
    const endpoint = this.#driver.endpoint;
    this.#peers = new PeerStats(
      metrics,
      this.#clock,
      function* () {
        for (const e of endpoint.entries()) yield e.data;
      },
      settings.matchPeer,
    );
    metrics.peerFigures = () => this.#peers.figures();
  }

  /**
   * Attaches the packet device decrypted inner packets are written to; packets written count as
   * `ikegate_tun_packets_total{direction="tx"}`.
   */
  attachDevice(device: PacketDevice): void {
    const tx = this.#metrics.hot(this.#metrics.tunPackets, 'tx');
    this.#dataPlane.attachDevice({
      write: (p) => {
        const ok = device.write(p);
        if (ok) tx.inc();
        return ok;
      },
    });
  }

  get ikeSaCount(): number {
    return this.#driver.endpoint.stats.sas;
  }

  get childSaCount(): number {
    return this.#dataPlane.childCount;
  }

  // --- frames from the edge ----------------------------------------------------------------------

  deliver(frame: InboundFrame): void {
    if (this.#closed) return;
    // A stale edge route (the lease just moved): never create or touch SAs in a shard not ours.
    if (this.#settings.ownsShard && !this.#settings.ownsShard(frame.shard)) {
      this.#metrics.hot(this.#metrics.drops, 'worker', 'not_owner').inc();
      this.#edge.bounce?.(frame);
      return;
    }
    if (frame.kind === 'esp') this.#dataPlane.inbound(frame);
    else this.#driver.receive(frame);
  }

  /**
   * RFC 9329 §6: the responder never dials; SAs on the closed stream wait for the initiator to
   * come back on a new one (failover policy wait-for-reconnect), then are deleted as `connection-lost`.
   */
  connectionClosed(path: PeerPath): void {
    if (this.#closed) return;
    this.#log.debug({ connection: path.connection }, 'peer-connection-closed');
    this.#driver.connectionLost(path);
  }

  /**
   * Edge `edgeId` is gone (or restarted as incarnation `except`): every TCP/TLS stream through it
   * is closed, so each SA on one waits for its peer to reconnect (RFC 9329 §6, failover.waitSeconds)
   * and is deleted as `connection-lost` if it does not (issue #11: such SAs stayed "established").
   */
  edgeGone(edgeId: string, except?: string): void {
    if (this.#closed) return;
    const streams = [`${edgeId}|tcp:`, `${edgeId}|tls:`];
    let n = 0;
    this.#driver.connectionsLost((connection) => {
      if (!streams.some((p) => connection.startsWith(p))) return false;
      if (except !== undefined && connection.includes(`:${except}:`)) return false;
      n++;
      return true;
    });
    this.#log.warn({ edgeId, ...(except ? { except } : {}), streams: n }, 'edge-streams-gone');
  }

  /** An inner packet from the TUN device: find its child SA and send it as ESP. */
  /** A packet read from the device (`ikegate_tun_packets_total{direction="rx"}`). */
  fromDevice(packet: Uint8Array): void {
    this.#tunRx.inc();
    this.#dataPlane.outbound(packet);
  }

  // --- what the IKE engine reports ---------------------------------------------------------------

  #onAction(rec: SaRecord, a: SaAction): void {
    switch (a.kind) {
      case 'established':
        return this.#established(rec, a.peerId);
      case 'path-validated':
        this.#log.debug(
          {
            spi: spiOf(rec),
            connection: rec.path.connection,
            remote: `${rec.path.remote.address}:${rec.path.remote.port}`,
          },
          'ike-sa-path-moved',
        );
        return this.#ha.dirty(rec);
      case 'install-child': {
        // The engine keeps its own copy of the address it assigned: hold that one, not a second.
        const v = a.virtualIp;
        if (v?.length === 4 && rec.virtualIp?.length === 4 && ipv4ToNumber(v) === ipv4ToNumber(rec.virtualIp))
          rec.virtualIp = v;
        const child = this.#dataPlane.install(rec, a);
        if (a.replaces) this.#peers.rekeyed(rec, 'child');
        this.#settings.observer?.childInstalled?.({
          ikeSpi: spiOf(rec),
          inboundSpi: child.inboundSpi,
          ...(a.virtualIp && rec.expectedPeerId !== undefined ? { virtualIp: ipv4Text(a.virtualIp) } : {}),
          weInitiated: a.weInitiated,
          tsLocal: child.tsLocal,
          tsRemote: remoteRanges(child),
        });
        return;
      }
      case 'remove-child':
        this.#dataPlane.remove(rec, ipv4ToNumber(a.inboundSpi), a.reason);
        return;
      case 'child-failed':
        this.#peers.childFailed(rec, a.reason);
        this.#log.warn(
          { spi: spiOf(rec), peerId: rec.peerId, reason: a.reason, notify: a.notify },
          'child-sa-failed',
        );
        this.#settings.observer?.childFailed?.(spiOf(rec), a.reason, a.notify);
        return;
      case 'rekeyed-ike':
        this.#peers.rekeyed(rec, 'ike');
        this.#metrics.ikeSaEvents.inc({ event: 'rekeyed', reason: '' });
        this.#log.info({ spi: spiOf(rec), peerId: rec.peerId }, 'ike-sa-rekeyed');
        return;
      case 'deleted':
        return this.#deleted(rec, a.reason);
      case 'persist':
        return this.#ha.dirty(rec);
      case 'rejected':
        return this.#peers.rejected(rec, a);
      case 'replay-counter-sync': {
        // RFC 6311 §4.3 (we are the peer of a cluster that took this SA over).
        const moved = this.#dataPlane.skipOutbound(rec, a.counter);
        this.#log.info(
          { spi: spiOf(rec), peerId: rec.peerId, counter: a.counter.toString(), children: moved },
          'replay-counter-synced',
        );
        return this.#ha.dirty(rec);
      }
      default:
        return;
    }
  }

  #established(rec: SaRecord, peerId: string): void {
    rec.peerId = peerId;
    rec.establishedAt = this.#clock();
    this.#setupsEstablished.inc();
    this.#peers.established(rec);
    this.#metrics.ikeSaSetup.observe(
      { transport: rec.path.transport },
      Math.max(0, rec.establishedAt - rec.createdAt) / 1000,
    );
    // The line's fields (hex SPI, address text) are built only when it is written (issue #14).
    if (this.#log.isLevelEnabled('info'))
      this.#log.info(
        {
          spi: spiOf(rec),
          peerId,
          peer: rec.peer?.name,
          transport: rec.path.transport,
          remote: `${rec.path.remote.address}:${rec.path.remote.port}`,
          virtualIp: rec.virtualIp ? ipv4Text(rec.virtualIp) : undefined,
        },
        'ike-sa-established',
      );
    this.#settings.observer?.established?.(spiOf(rec), peerId);
  }

  #deleted(rec: SaRecord, reason: string): void {
    for (const spi of rec.children.map((c) => c.inboundSpi)) this.#dataPlane.remove(rec, spi, 'ike-deleted');
    if (rec.virtualIp && rec.peer?.pool && rec.peerId !== undefined) {
      rec.peer.pool.release(rec.poolKey ?? `${rec.peerId}#${rec.id}`);
      this.#metrics.poolAddresses.set({ pool: rec.peer.pool.name }, rec.peer.pool.inUse);
    }
    this.#ha.gone(rec);
    this.#metrics.ikeSaEvents.inc({ event: 'deleted', reason });
    this.#peers.deleted(rec, reason);
    // Half-open SAs that never authenticated are an unauthenticated peer's doing: counted always,
    // logged within bounds (a flood of IKE_SA_INITs must not become a flood of log lines).
    const logged =
      reason !== 'half-open-expired' ||
      this.#logLimit.allow(reason, this.#clock(), (suppressed) =>
        this.#log.info({ reason, suppressed }, 'ike-sa-deleted-suppressed'),
      );
    if (logged) this.#log.info({ spi: spiOf(rec), peerId: rec.peerId, reason }, 'ike-sa-deleted');
    this.#settings.observer?.ikeSaDeleted?.(spiOf(rec), reason);
  }

  #record(spi: string): SaRecord | undefined {
    return this.#driver.endpoint.get(spi)?.data;
  }

  // --- initiator ---------------------------------------------------------------------------------

  /** Starts an IKE SA toward a responder (RFC 7296 §1.2); returns our IKE SPI (hex). */
  initiate(o: InitiateOptions): string {
    return spiOf(this.#driver.initiate(o));
  }

  /**
   * The stream to the peer was re-established on `path` (RFC 9329 §6: the initiator reconnects
   * and retransmits every outstanding request on the new connection).
   */
  restore(spi: string, path: PeerPath): boolean {
    const rec = this.#record(spi);
    if (!rec) return false;
    this.#driver.restore(rec, path);
    return true;
  }

  // --- write-through and takeover ----------------------------------------------------------------

  /** The storable form of the SA our SPI `spi` names (undefined if gone). */
  snapshot(spi: string): SaSnapshot | undefined {
    const rec = this.#record(spi);
    return rec ? this.#ha.snapshot(rec) : undefined;
  }

  /** Takes over an SA another worker held (ha.ts); false if one of its SPIs is in use here. */
  adopt(snap: SaSnapshot): boolean {
    return this.#ha.adopt(snap) !== undefined;
  }

  /** Forgets every SA of `shard` without telling peers (its lease moved to another worker). */
  dropShard(shard: number): number {
    const recs = [...this.#driver.endpoint.entries()].flatMap((e) =>
      e.shard === shard && e.data ? [e.data] : [],
    );
    for (const rec of recs) this.#ha.forget(rec);
    if (recs.length > 0) this.#log.info({ shard, sas: recs.length }, 'shard-dropped');
    return recs.length;
  }

  /** Our SPIs of the established SAs in `shard`. */
  sasInShard(shard: number): string[] {
    const out: string[] = [];
    for (const e of this.#driver.endpoint.entries())
      if (e.shard === shard && e.status === 'established' && e.data) out.push(spiOf(e.data));
    return out;
  }

  // --- control API -------------------------------------------------------------------------------

  #summaryContext() {
    const s = this.#settings;
    return {
      ...(s.workerId !== undefined ? { worker: s.workerId } : {}),
      ...(s.shardEpoch ? { epoch: s.shardEpoch } : {}),
    };
  }

  #records(): Iterable<SaRecord> {
    const out: SaRecord[] = [];
    for (const e of this.#driver.endpoint.entries()) if (e.data) out.push(e.data);
    return out;
  }

  list(): SaSummary[] {
    const ctx = this.#summaryContext();
    return [...this.#records()].map((r) => summarize(r, ctx));
  }

  /** One keyset page of SAs in SPI order with counts by state (admin.ts). */
  page(q: SaQuery): SaPage {
    return page(this.#records(), q, this.#summaryContext());
  }

  get(spi: string): SaSummary | undefined {
    const rec = this.#record(spi.toLowerCase());
    return rec ? summarize(rec, this.#summaryContext()) : undefined;
  }

  /** Who holds addresses of pool `name` here: each address with its SA. */
  poolHolders(name: string): { address: string; spi: string; peerId?: string; peer?: string }[] {
    const out: { address: string; spi: string; peerId?: string; peer?: string }[] = [];
    for (const r of this.#records()) {
      if (!r.virtualIp || r.peer?.pool?.name !== name) continue;
      out.push({
        address: ipv4Text(r.virtualIp),
        spi: spiOf(r),
        ...(r.peerId !== undefined ? { peerId: r.peerId } : {}),
        peer: r.peer.name,
      });
    }
    return out;
  }

  /**
   * A configured peer changed (managed configuration, issue #10). Deleted: its established SAs are
   * deleted with an INFORMATIONAL DELETE (RFC 7296 §1.4.1) unless `keepSas`. Changed: its SAs take
   * the new settings at their next event (rekey proposals, lifetimes of new SAs, DPD, the
   * reconnect wait); their keys and traffic selectors stay until they are rekeyed.
   */
  peerChanged(name: string, change: 'put' | 'deleted', keepSas: boolean): number {
    let n = 0;
    for (const r of this.#records()) {
      if (r.peer?.name !== name || r.peerId === undefined) continue;
      if (change === 'deleted') {
        if (!keepSas && this.#driver.command(r, { kind: 'delete-ike' })) n++;
        continue;
      }
      if (this.#driver.refreshContext(r, name)) n++;
    }
    if (n > 0) this.#log.info({ peer: name, change, keepSas, sas: n }, 'peer-change-applied-to-sas');
    return n;
  }

  /** The cluster failover policy changed: established SAs of peers without their own take it. */
  failoverChanged(): number {
    let n = 0;
    for (const r of this.#records())
      if (r.peer && r.peer.reconnectWaitSeconds === undefined && this.#driver.refreshContext(r, r.peer.name))
        n++;
    return n;
  }

  /**
   * Starts an exchange on the SA our SPI `spi` names; false if there is no such SA or it cannot
   * take the command now (not established).
   */
  command(spi: string, command: 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness'): boolean {
    const rec = this.#record(spi.toLowerCase());
    if (!rec) return false;
    if (command === 'delete') return this.#driver.command(rec, { kind: 'delete-ike' });
    if (command === 'rekey-ike') return this.#driver.command(rec, { kind: 'rekey-ike' });
    if (command === 'liveness') return this.#driver.command(rec, { kind: 'liveness' });
    let ok = rec.children.length > 0;
    for (const c of rec.children)
      ok = this.#driver.command(rec, { kind: 'rekey-child', spi: u32Octets(c.inboundSpi) }) && ok;
    return ok;
  }

  /** Sends DELETE for every established SA (RFC 7296 §1.4.1), waits `graceMs`, stops. */
  async close(graceMs = 500): Promise<void> {
    let sent = 0;
    for (const e of [...this.#driver.endpoint.entries()])
      if (e.status === 'established' && e.data && this.#driver.command(e.data, { kind: 'delete-ike' }))
        sent++;
    if (sent > 0 && graceMs > 0) await new Promise((r) => setTimeout(r, graceMs).unref());
    this.#closed = true;
    this.#driver.stop();
    this.#dataPlane.stop();
  }
}
