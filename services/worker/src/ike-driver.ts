/**
 * The worker's IKE driver: the only code that talks to the sans-IO IkeEndpoint (libs/ikev2). It
 * turns frames into endpoint input, runs the one timer every IKE deadline shares (re-armed from
 * `nextTimeout()` after each call; a timer that fires early does nothing), builds each SA's
 * context (policy, PSKs, the matched peer's selectors and pool), and turns endpoint output into
 * edge sends and calls of `DriverHooks`: the worker reacts to explicit events, it never guesses.
 *
 * Everything a peer can provoke is counted (`ikegate_drops_total`, `ikegate_ike_rejections_total`)
 * and logged with its reason; lines an unauthenticated peer can cause are rate-limited.
 */
import { type EdgeLink, type InboundFrame, type PeerPath, ShardSpiAllocator } from '@ikegate/cluster';
import { RandomPool } from '@ikegate/crypto';
import {
  type EndpointOutput,
  type IkePath,
  IkeEndpoint,
  type IkeSaAction,
  type IkeSaCommand,
  type IkeSaContext,
  type IkeSaPolicy,
  LocalUsageError,
  type SaEntry,
} from '@ikegate/ikev2';
import { exchangeLabel, type Logger, type Metrics, tracingActive } from '@ikegate/telemetry';
import { SaContexts } from './contexts.js';
import { IkeReports } from './reports.js';
import { toIkePath } from './paths.js';
import { IkeTraces, type InboundMessage } from './tracing.js';
import { NO_CHILDREN, type SaRecord, spiOf } from './records.js';
import type { InitiateOptions, WorkerSettings } from './types.js';

const MAX_TIMER_MS = 2 ** 31 - 1;
const DEFAULT_RECONNECT_WAIT_SECONDS = 30;

type SaAction = Exclude<IkeSaAction, { kind: 'send' }>;

/** What the worker does when something happened to an SA. */
export interface DriverHooks {
  readonly action: (rec: SaRecord, action: SaAction) => void;
  /** Whether an inbound ESP SPI is taken (the data plane's index). */
  readonly espSpiTaken: (spi: number) => boolean;
  /** Resolves when the SA's state is in the store; its IKE messages wait for it (write-ahead). */
  readonly durable?: (rec: SaRecord) => Promise<void> | undefined;
}

export class IkeDriver {
  readonly #edge: EdgeLink;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #hooks: DriverHooks;
  readonly #clock: () => number;
  readonly #endpoint: IkeEndpoint<SaRecord>;
  readonly #allocator: ShardSpiAllocator;
  readonly #policy: IkeSaPolicy;
  readonly #contexts: SaContexts;
  readonly #reports: IkeReports;
  /** Spans of IKE SA setups and exchanges, while a tracer provider is registered (tracing.ts). */
  readonly #traces = new IkeTraces();
  /** The gauge values last written (#updateGauges writes only what changed). */
  #gauges = { established: -1, other: -1, halfOpen: -1, cookieMode: -1, cold: -1, thaws: 0 };
  #frame: InboundFrame | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #nextId = 1;
  #stopped = false;

  constructor(
    settings: WorkerSettings,
    edge: EdgeLink,
    log: Logger,
    metrics: Metrics,
    hooks: DriverHooks,
    clock: () => number,
  ) {
    this.#edge = edge;
    this.#log = log;
    this.#metrics = metrics;
    this.#hooks = hooks;
    this.#clock = clock;
    // One pooled random source per worker for SPIs, nonces, private keys and jitter (issue #14).
    const random = new RandomPool().random;
    this.#allocator = new ShardSpiAllocator(settings.layout, random);
    const s = settings;
    this.#policy = {
      ...s.policy,
      lifetimes: {
        ikeMs: s.ikeLifetimeSeconds * 1000,
        childMs: s.childLifetimeSeconds * 1000,
        marginMs: s.rekeyMarginSeconds * 1000,
      },
      ...(s.dpdSeconds > 0 ? { dpdMs: s.dpdSeconds * 1000 } : {}),
      reconnectWaitMs: (s.reconnectWaitSeconds ?? DEFAULT_RECONNECT_WAIT_SECONDS) * 1000,
      ...(s.retransmit ? { retransmit: s.retransmit } : {}),
    };
    this.#reports = new IkeReports(log, metrics, clock);
    this.#contexts = new SaContexts(
      s,
      this.#policy,
      this.#allocator,
      metrics,
      log,
      hooks.espSpiTaken,
      random,
    );
    this.#endpoint = new IkeEndpoint<SaRecord>({
      provider: s.provider,
      random,
      policy: this.#policy,
      ikeSpi: (shard) => this.#allocator.ikeSpi(shard, () => false),
      responderContext: (entry) => this.#responderContext(entry as SaEntry<SaRecord>),
      limits: {
        ...(s.maxIkeSas !== undefined ? { maxSas: s.maxIkeSas } : {}),
        ...(s.cookieThreshold !== undefined ? { cookieThreshold: s.cookieThreshold } : {}),
        ...(s.maxHotSas !== undefined ? { maxHotSas: s.maxHotSas } : {}),
        ...(s.halfOpenTimeoutMs !== undefined ? { halfOpenMs: s.halfOpenTimeoutMs } : {}),
        ...(s.maxHalfOpen !== undefined ? { maxHalfOpen: s.maxHalfOpen } : {}),
        ...(s.maxHalfOpenPerAddress !== undefined ? { maxHalfOpenPerAddress: s.maxHalfOpenPerAddress } : {}),
      },
    });
  }

  get endpoint(): IkeEndpoint<SaRecord> {
    return this.#endpoint;
  }

  // --- input ---------------------------------------------------------------------------------------

  receive(frame: InboundFrame): void {
    const m = frame.bytes;
    this.#countMessage('in', m);
    const started = performance.now();
    this.#frame = frame;
    const at = tracingActive() ? performance.now() : 0;
    try {
      const out = this.#endpoint.receive(m, toIkePath(frame.path), frame.shard, this.#clock());
      this.#run(out, at > 0 ? { inbound: { bytes: m, at } } : undefined);
    } catch (e) {
      // A bug, not bad input (the engine turns bad input into drops); keep serving other SAs.
      this.#log.error({ err: e, connection: frame.path.connection }, 'ike-step-failed');
      this.#reports.drop('internal_error');
    } finally {
      this.#frame = undefined;
    }
    this.#metrics.exchangeSeconds.observe((performance.now() - started) / 1000);
    this.#afterCall();
  }

  /**
   * Runs a command on an SA. Returns false when it does not fit the SA's state (e.g. a rekey of
   * an SA not established) or the SA is gone.
   */
  command(rec: SaRecord, command: IkeSaCommand): boolean {
    try {
      this.#run(this.#endpoint.command(rec.entry, command, this.#clock()), { fromCaller: true });
      return true;
    } catch (e) {
      if (!(e instanceof LocalUsageError)) throw e;
      return false;
    } finally {
      this.#afterCall();
    }
  }

  /** The stream `path` closed: SAs on it wait for their peer (RFC 9329 §6). */
  connectionLost(path: PeerPath): void {
    this.#run(this.#endpoint.connectionLost(path.connection, this.#clock()));
    this.#afterCall();
  }

  connectionsLost(match: (connection: string) => boolean): void {
    this.#run(this.#endpoint.connectionsLost(match, this.#clock()));
    this.#afterCall();
  }

  /** An authenticated ESP packet of `rec` came on `path`: the SA follows it. */
  espPath(rec: SaRecord, path: PeerPath): void {
    this.#frame = { kind: 'esp', path, bytes: new Uint8Array(0), shard: rec.shard };
    try {
      this.#run(this.#endpoint.espPath(rec.entry, toIkePath(path), this.#clock()));
    } finally {
      this.#frame = undefined;
    }
    this.#afterCall();
  }

  /** Starts an initiator SA toward a responder (RFC 7296 §1.2). */
  initiate(o: InitiateOptions): SaRecord {
    const rec = this.#newRecord(0, o.path);
    rec.expectedPeerId = o.remoteId;
    const ctx = this.#contexts.initiator(rec, {
      policy: {
        ...this.#policy,
        ...o.policy,
        lifetimes: this.#policy.lifetimes!,
        ...(this.#policy.dpdMs ? { dpdMs: this.#policy.dpdMs } : {}),
      },
      psk: o.psk,
      remoteId: o.remoteId,
    });
    const r = this.#endpoint.initiate(ctx, toIkePath(o.path), 0, this.#clock(), rec);
    rec.entry = r.sa;
    if (tracingActive()) this.#traces.initiated(rec);
    this.#run(r.out);
    this.#afterCall();
    return rec;
  }

  /** The initiator re-established its stream on `path` (RFC 9329 §6). */
  restore(rec: SaRecord, path: PeerPath): void {
    rec.path = path;
    this.command(rec, { kind: 'connection-restored', path: toIkePath(path) });
  }

  /** Holds an SA taken over from another worker; undefined if one of its SPIs is taken here. */
  adopt(rec: SaRecord, state: SaEntry<SaRecord>['state']): SaEntry<SaRecord> | undefined {
    const base = this.#contexts.base(rec);
    const ctx = rec.peerId !== undefined && base.forPeer ? base.forPeer(rec.peerId) : base;
    const entry = this.#endpoint.adopt(state, ctx, rec.shard, rec);
    if (entry && tracingActive()) this.#traces.adopted(rec);
    this.#afterCall();
    return entry;
  }

  /**
   * Gives an established SA the context its peer's settings give now (they changed), if its
   * identity still belongs to the peer named `peerName`; false otherwise (nothing changes).
   */
  refreshContext(rec: SaRecord, peerName: string): boolean {
    const entry = rec.entry;
    if (rec.peerId === undefined || entry.status !== 'established') return false;
    if (this.#contexts.peerFor(rec.peerId)?.name !== peerName) return false;
    const base = this.#contexts.base(rec);
    entry.ctx = base.forPeer ? base.forPeer(rec.peerId) : base;
    return true;
  }

  forget(rec: SaRecord): void {
    this.#traces.forgotten(rec);
    this.#endpoint.forget(rec.entry);
    this.#afterCall();
  }

  newRecord(shard: number, path: PeerPath): SaRecord {
    return this.#newRecord(shard, path);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  // --- timer ---------------------------------------------------------------------------------------

  #afterCall(): void {
    this.#updateGauges();
    this.#arm();
  }

  #arm(): void {
    if (this.#stopped) return;
    const next = this.#endpoint.nextTimeout();
    if (next === undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#timer && this.#timerAt <= next) return;
    clearTimeout(this.#timer);
    this.#timerAt = next;
    const t = setTimeout(() => this.#fire(), Math.min(MAX_TIMER_MS, Math.max(0, next - this.#clock())));
    t.unref();
    this.#timer = t;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    try {
      this.#run(this.#endpoint.timeout(this.#clock(), (sa) => sa.data?.lastEspInbound));
    } catch (e) {
      this.#log.error({ err: e }, 'ike-timeout-failed');
      this.#reports.drop('internal_error');
    }
    this.#afterCall();
  }

  // --- contexts --------------------------------------------------------------------------------------

  #newRecord(shard: number, path: PeerPath): SaRecord {
    const now = this.#clock();
    // Every field in the literal, the optional ones `undefined`: fields added later go to a
    // separate property array (64 B per SA; issue #14, memory per SA).
    return {
      entry: undefined as unknown as SaEntry<SaRecord>,
      id: this.#nextId++,
      shard,
      path,
      children: NO_CHILDREN,
      peer: undefined,
      peerId: undefined,
      virtualIp: undefined,
      poolKey: undefined,
      expectedPeerId: undefined,
      lastEspInbound: undefined,
      createdAt: now,
      establishedAt: undefined,
      heldSends: undefined,
      heldCount: undefined,
    };
  }

  #responderContext(entry: SaEntry<SaRecord>): IkeSaContext {
    const rec = this.#newRecord(entry.shard, this.#frame!.path);
    rec.entry = entry;
    entry.data = rec;
    return this.#contexts.base(rec);
  }

  // --- output --------------------------------------------------------------------------------------

  /** Carries out `out`; with tracing on, each SA's part inside its span (tracing.ts). */
  #run(
    out: readonly EndpointOutput<SaRecord>[],
    o?: { readonly inbound?: InboundMessage; readonly fromCaller?: boolean },
  ): void {
    if (out.length === 0) return;
    if (!tracingActive()) return this.#handle(out);
    this.#traces.run(out, (chunk) => this.#handle(chunk), o);
  }

  #handle(out: readonly EndpointOutput<SaRecord>[]): void {
    // An SA's messages go out after the batch's state changes were handed to the store (the
    // `persist` action may come after the message in the same batch).
    let held: { path: IkePath; bytes: Uint8Array; closeAfter?: string; rec: SaRecord }[] | undefined;
    for (const o of out) {
      switch (o.kind) {
        case 'transmit':
          if (o.sa?.data && this.#hooks.durable)
            (held ??= []).push({
              path: o.path,
              bytes: o.bytes,
              ...(o.closeAfter ? { closeAfter: o.closeAfter } : {}),
              rec: o.sa.data,
            });
          else this.#transmit(o.path, o.bytes, o.closeAfter, o.sa?.data);
          break;
        case 'sa-action':
          if (o.sa.data) this.#saAction(o.sa.data, o.action);
          break;
        case 'dropped':
          this.#reports.drop(o.reason);
          break;
        case 'rejected':
          this.#reports.rejected(o.exchange, o.reason, o.by, o.detail, undefined, this.#frame?.path);
          break;
        case 'lenient':
          this.#reports.lenient(o.exchange);
          break;
      }
    }
    for (const h of held ?? []) this.#afterDurable(h.rec, h.path, h.bytes, h.closeAfter);
  }

  /**
   * Sends `bytes` once the SA's state is in the store (write-ahead): a peer never sees an exchange
   * that a takeover right after it would not find. The path is chosen now, from the frame being
   * handled; messages of one SA stay in order. Without anything pending, it goes out at once.
   */
  #afterDurable(rec: SaRecord, path: IkePath, bytes: Uint8Array, closeAfter: string | undefined): void {
    const peerPath = this.#peerPath(path, rec);
    const wait = this.#hooks.durable?.(rec);
    if (!wait && !rec.heldSends) return this.#send(peerPath, path, bytes, closeAfter, rec);
    rec.heldCount = (rec.heldCount ?? 0) + 1;
    rec.heldSends = (rec.heldSends ?? Promise.resolve())
      .then(() => wait)
      .then(() => {
        this.#send(peerPath, path, bytes, closeAfter, rec);
        rec.heldCount = (rec.heldCount ?? 1) - 1;
        if (rec.heldCount === 0) rec.heldSends = undefined;
      });
  }

  #peerPath(path: IkePath, rec: SaRecord | undefined): PeerPath | undefined {
    const frame = this.#frame;
    return frame && frame.path.connection === path.id
      ? frame.path
      : rec && rec.path.connection === path.id
        ? rec.path
        : undefined;
  }

  #transmit(
    path: IkePath,
    bytes: Uint8Array,
    closeAfter: string | undefined,
    rec: SaRecord | undefined,
  ): void {
    this.#send(this.#peerPath(path, rec), path, bytes, closeAfter, rec);
  }

  #send(
    peerPath: PeerPath | undefined,
    path: IkePath,
    bytes: Uint8Array,
    closeAfter: string | undefined,
    rec: SaRecord | undefined,
  ): void {
    if (!peerPath) {
      this.#log.error({ connection: path.id, spi: rec ? spiOf(rec) : undefined }, 'ike-send-no-path');
      this.#metrics.hot(this.#metrics.drops, 'ike-out', 'no_path').inc();
      return;
    }
    const r = this.#edge.send({ kind: 'ike', path: peerPath, bytes, ...(closeAfter ? { closeAfter } : {}) });
    this.#countMessage('out', bytes);
    if (r !== 'sent') this.#metrics.hot(this.#metrics.drops, 'ike-out', r).inc();
  }

  #saAction(rec: SaRecord, a: SaAction): void {
    switch (a.kind) {
      case 'path-validated': {
        const frame = this.#frame;
        if (frame && frame.path.connection === a.path.id) rec.path = frame.path;
        break;
      }
      case 'install-child':
        this.#contexts.installed(a.inboundSpi);
        break;
      case 'deleted':
        this.#contexts.released(rec);
        break;
      case 'dropped':
        this.#reports.drop(a.reason);
        return;
      case 'rejected':
        this.#reports.rejected(a.exchange, a.reason, a.by, a.detail, rec);
        break; // the worker attributes it to a peer too
      case 'lenient':
        this.#reports.lenient(a.exchange);
        return;
      default:
        break;
    }
    this.#hooks.action(rec, a);
  }

  /** `ikegate_ike_messages_total{direction, exchange}` + 1 for the IKE message `bytes`. */
  #countMessage(direction: 'in' | 'out', bytes: Uint8Array): void {
    this.#metrics.hot(this.#metrics.ikeMessages, direction, exchangeLabel(bytes)).inc();
  }

  /**
   * The SA gauges after every call into the endpoint. Only values that changed are written: a
   * labelled `set` hashes its labels each time, and most messages change none of them (issue #14).
   * This driver is the only writer of these gauges, so what a scrape sees is the same.
   */
  #updateGauges(): void {
    const st = this.#endpoint.stats;
    const g = this.#gauges;
    const other = st.sas - st.established;
    const cookieMode = st.cookieMode ? 1 : 0;
    if (g.established !== st.established)
      this.#metrics.ikeSas.set({ status: 'established' }, (g.established = st.established));
    if (g.other !== other) this.#metrics.ikeSas.set({ status: 'other' }, (g.other = other));
    if (g.halfOpen !== st.halfOpen) this.#metrics.ikeHalfOpen.set((g.halfOpen = st.halfOpen));
    if (g.cookieMode !== cookieMode) this.#metrics.ikeCookieMode.set((g.cookieMode = cookieMode));
    if (g.cold !== st.cold) this.#metrics.ikeColdSas.set((g.cold = st.cold));
    if (g.thaws !== st.thaws) {
      this.#metrics.ikeSaThaws.inc(st.thaws - g.thaws);
      g.thaws = st.thaws;
    }
  }
}
