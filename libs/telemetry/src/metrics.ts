/**
 * Prometheus metrics (prom-client) for every ikegate role. One registry per process role so
 * `ikegate up` (all roles in one process) and separate processes expose the same names. Label
 * values are bounded sets (reasons, kinds, transports), never SPIs or addresses.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

const EXCHANGE_NAMES: Readonly<Record<number, string>> = {
  34: 'IKE_SA_INIT',
  35: 'IKE_AUTH',
  36: 'CREATE_CHILD_SA',
  37: 'INFORMATIONAL',
  43: 'IKE_INTERMEDIATE',
};

/** The `exchange` label of an IKE message: its header's exchange type (octet 18), bounded. */
export function exchangeLabel(message: Uint8Array): string {
  return EXCHANGE_NAMES[message[18] ?? 0] ?? 'other';
}

/** The version in the repository's package.json (the one `ikegate version` prints). */
export const IKEGATE_VERSION: string = (() => {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
})();

/** A configured peer's SAs held by one worker, summed when /metrics is scraped. */
export interface PeerFigures {
  ikeSas: number;
  childSas: number;
  /** Inner octets/packets, including CHILD SAs already gone (monotonic per process). */
  bytesIn: number;
  bytesOut: number;
  packetsIn: number;
  packetsOut: number;
}

/**
 * A counter child for the per-packet paths (issue #14: prom-client's `inc` hashes and validates
 * on every call, 3-4% of a gateway's CPU): `inc` adds to a plain number, and the sum goes into
 * prom-client when the counter is collected (`/metrics`, `registry.metrics()`, `counter.get()`),
 * so every reader sees every increment made before it read.
 */
class HotCounter {
  #pending = 0;
  readonly #child: { inc(value?: number): void };

  constructor(child: { inc(value?: number): void }) {
    this.#child = child;
  }

  inc(value = 1): void {
    if (!(value >= 0 && value !== Infinity)) throw new TypeError(`bad counter increment ${value}`);
    this.#pending += value;
  }

  flush(): void {
    if (this.#pending === 0) return;
    this.#child.inc(this.#pending);
    this.#pending = 0;
  }
}

/** One label value's level of a counter's hot children (see Metrics.hot). */
interface HotNode {
  counter?: HotCounter;
  readonly next: Map<string, HotNode>;
  /** Root only: cumulative sources read before the flush (Metrics.follow). */
  followers?: (() => void)[];
}

function flushAll(node: HotNode): void {
  if (node.followers) for (const f of node.followers) f();
  node.counter?.flush();
  for (const n of node.next.values()) flushAll(n);
}

/** Makes `counter` add its hot children's pending increments before it is collected. */
function flushBeforeCollect(counter: Counter<string>, root: HotNode): void {
  const c = counter as unknown as { collect?: () => unknown };
  const previous = c.collect;
  c.collect = function (this: unknown) {
    flushAll(root);
    return previous?.call(this);
  };
}

export class Metrics {
  readonly registry = new Registry();

  /** IKE messages in and out by exchange type name (IKE_SA_INIT, IKE_AUTH, ...). */
  readonly ikeMessages = new Counter({
    name: 'ikegate_ike_messages_total',
    help: 'IKE messages handled, by direction and exchange type',
    labelNames: ['direction', 'exchange'] as const,
    registers: [this.registry],
  });
  /** IKE SA lifecycle events (established, rekeyed, deleted) and delete reasons. */
  readonly ikeSaEvents = new Counter({
    name: 'ikegate_ike_sa_events_total',
    help: 'IKE SA lifecycle events by event and reason',
    labelNames: ['event', 'reason'] as const,
    registers: [this.registry],
  });
  readonly childSaEvents = new Counter({
    name: 'ikegate_child_sa_events_total',
    help: 'CHILD SA installs and removals',
    labelNames: ['event'] as const,
    registers: [this.registry],
  });
  /**
   * Exchanges refused, by exchange type and reason (snake_case notify name or cookie_required):
   * by us (we answered with an error notify or demanded a COOKIE) or, prefixed `peer_`, by the
   * peer (it answered our request with one).
   */
  readonly ikeRejections = new Counter({
    name: 'ikegate_ike_rejections_total',
    help: 'IKE exchanges refused, by exchange and reason (peer_ prefix: refused by the peer)',
    labelNames: ['exchange', 'reason'] as const,
    registers: [this.registry],
  });
  readonly ikeHalfOpen = new Gauge({
    name: 'ikegate_ike_half_open_sas',
    help: 'IKE SAs answered in IKE_SA_INIT and not yet authenticated',
    registers: [this.registry],
  });
  readonly ikeColdSas = new Gauge({
    name: 'ikegate_ike_cold_sas',
    help: 'Idle IKE SAs held encoded (ike.maxHotSas), rebuilt on their next event',
    registers: [this.registry],
  });
  readonly ikeSaThaws = new Counter({
    name: 'ikegate_ike_sa_thaws_total',
    help: 'Serialised (cold) IKE SAs rebuilt for an event: a message, a timer, a command or a read',
    registers: [this.registry],
  });
  readonly ikeCookieMode = new Gauge({
    name: 'ikegate_ike_cookie_mode',
    help: '1 while IKE_SA_INIT requests must carry a COOKIE (RFC 7296 §2.6), else 0',
    registers: [this.registry],
  });
  readonly ikeSas = new Gauge({
    name: 'ikegate_ike_sas',
    help: 'IKE SAs held, by status',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  readonly childSas = new Gauge({
    name: 'ikegate_child_sas',
    help: 'CHILD SAs installed',
    registers: [this.registry],
  });
  readonly espColdChildren = new Gauge({
    name: 'ikegate_esp_cold_child_sas',
    help: 'CHILD SAs whose ESP state is held as keys and counters (idle ones, and new ones before their first packet; dataplane.coldChildAfterSeconds), built on their next packet',
    registers: [this.registry],
  });
  readonly espChildThaws = new Counter({
    name: 'ikegate_esp_child_thaws_total',
    help: 'Cold CHILD SAs whose ESP state was built for a packet or a command (a new child its first time)',
    registers: [this.registry],
  });
  /** Frames through the edge by transport (udp/tcp/tls), kind (ike/esp/keepalive) and direction. */
  readonly frames = new Counter({
    name: 'ikegate_frames_total',
    help: 'Frames through the edge by transport, kind and direction',
    labelNames: ['transport', 'kind', 'direction'] as const,
    registers: [this.registry],
  });
  readonly frameBytes = new Counter({
    name: 'ikegate_frame_bytes_total',
    help: 'Frame payload octets through the edge by transport and direction',
    labelNames: ['transport', 'direction'] as const,
    registers: [this.registry],
  });
  /** Every drop, by the layer that dropped it and the PROTOCOL.md reason. */
  readonly drops = new Counter({
    name: 'ikegate_drops_total',
    help: 'Dropped frames, packets and messages by layer and reason',
    labelNames: ['layer', 'reason'] as const,
    registers: [this.registry],
  });
  readonly connections = new Gauge({
    name: 'ikegate_connections',
    help: 'Open TCP/TLS connections',
    labelNames: ['transport'] as const,
    registers: [this.registry],
  });
  readonly connectionEvents = new Counter({
    name: 'ikegate_connection_events_total',
    help: 'TCP/TLS connections opened and closed, by transport and close reason',
    labelNames: ['transport', 'event', 'reason'] as const,
    registers: [this.registry],
  });
  /**
   * TLS handshakes on the RFC 9329 TLS listener (RFC 9329 §8): `ok` by the protocol version agreed,
   * `failed` by a bounded reason (`tlsFailureReason`).
   */
  readonly tlsHandshakes = new Counter({
    name: 'ikegate_tls_handshakes_total',
    help: 'TLS handshakes on the RFC 9329 TLS listener, by result, TLS version (ok) and reason (failed)',
    labelNames: ['result', 'version', 'reason'] as const,
    registers: [this.registry],
  });
  readonly espPackets = new Counter({
    name: 'ikegate_esp_packets_total',
    help: 'ESP packets encapsulated (out) and decapsulated (in)',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly espBytes = new Counter({
    name: 'ikegate_esp_inner_bytes_total',
    help: 'Inner packet octets through ESP',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  readonly tunPackets = new Counter({
    name: 'ikegate_tun_packets_total',
    help: 'Packets read from (rx) and written to (tx) the TUN device',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });
  /**
   * TUN writes merged (issue #14, libs/tun gro.ts): TCP segments written as part of one GSO write
   * begun by an earlier segment of their flow (`merged`: writes saved), and segments not merged
   * because their own TCP checksum was wrong (`bad_checksum`: written alone, for the receiver to drop).
   */
  readonly tunCoalesced = new Counter({
    name: 'ikegate_tun_coalesced_segments_total',
    help: 'TCP segments merged into one GSO write to the TUN device (merged), or not merged for a bad TCP checksum (bad_checksum)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly poolAddresses = new Gauge({
    name: 'ikegate_pool_addresses_in_use',
    help: 'Virtual IPs handed out, by pool',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });
  /**
   * Cluster workers: shards in which a pool has no address at all (an SA takes an address whose
   * host index is its shard modulo the shard count, so a pool with fewer usable addresses than
   * shards refuses the clients of the other shards with INTERNAL_ADDRESS_FAILURE).
   */
  readonly poolShardsWithoutAddress = new Gauge({
    name: 'ikegate_pool_shards_without_address',
    help: 'Shards in which a pool has no address (pool smaller than the shard count), by pool',
    labelNames: ['pool'] as const,
    registers: [this.registry],
  });
  readonly exchangeSeconds = new Histogram({
    name: 'ikegate_ike_step_seconds',
    help: 'Time to process one IKE message in the state machine',
    buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });

  /** Control/admin API requests by method, route pattern (never the raw URL) and status code. */
  readonly apiRequests = new Counter({
    name: 'ikegate_api_requests_total',
    help: 'Control and admin API requests by method, route and status code',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [this.registry],
  });
  /** Requests refused before any route ran: missing/unknown credentials, or a role too low. */
  readonly apiAuthFailures = new Counter({
    name: 'ikegate_api_auth_failures_total',
    help: 'API requests refused by authentication (401) or authorization (403), by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  /** Reloads of the API access file (tokens, client certificates), by result (ok, invalid). */
  readonly apiAccessReloads = new Counter({
    name: 'ikegate_api_access_reloads_total',
    help: 'Reloads of the API access file by result',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  /** The managed configuration version this process has applied (peers, pools, policies). */
  readonly configVersion = new Gauge({
    name: 'ikegate_config_version',
    help: 'Managed configuration version applied by this process',
    registers: [this.registry],
  });
  /** Managed configuration changes applied, by kind (peer, pool, failover) and result. */
  readonly configChanges = new Counter({
    name: 'ikegate_config_changes_total',
    help: 'Managed configuration changes applied by this process, by kind and result',
    labelNames: ['kind', 'result'] as const,
    registers: [this.registry],
  });

  readonly #children = new WeakMap<object, HotNode>();

  /**
   * The child of a labelled counter for these label values (in declaration order), cached: the
   * per-packet paths call this instead of inc({labels}), which validates and hashes every time.
   * Found by one Map lookup per label value (no key string is built per call).
   */
  hot(counter: Counter<string>, ...values: string[]): { inc(value?: number): void } {
    let root = this.#children.get(counter);
    if (!root) {
      root = { next: new Map() };
      this.#children.set(counter, root);
      flushBeforeCollect(counter, root);
    }
    let node: HotNode = root;
    for (const v of values) {
      let n: HotNode | undefined = node.next.get(v);
      if (!n) node.next.set(v, (n = { next: new Map() }));
      node = n;
    }
    return (node.counter ??= new HotCounter(counter.labels(...values)));
  }

  /**
   * Counts into `counter{values}` what a cumulative source (a count kept elsewhere, e.g. a TUN
   * device's drops counted on its reader thread) gained since it was last read: read when the
   * counter is collected, so a scrape sees it current. A source that goes back (a device replaced)
   * started over: its whole new value is counted. A source that cannot be read right now
   * (undefined) is skipped, not taken for 0: the next good read would count all of it again.
   *
   * Returns the way to stop following: it reads the source one last time (what it gained since
   * the last scrape is counted) and lets it go, so a closed socket or device is neither read at
   * every scrape nor kept alive by its reader.
   */
  follow(counter: Counter<string>, values: readonly string[], read: () => number | undefined): () => void {
    const child = this.hot(counter, ...values);
    counter.labels(...values).inc(0); // the series exists from the start, at 0
    const root = this.#children.get(counter)!;
    let last = 0;
    const follower = () => {
      const now = read();
      if (now === undefined) return;
      // A source that went back (a new device) started over: all of its count is new.
      const gained = now >= last ? now - last : now;
      if (gained > 0) child.inc(gained);
      last = now;
    };
    const followers = (root.followers ??= []);
    followers.push(follower);
    return () => {
      const at = followers.indexOf(follower);
      if (at < 0) return;
      follower();
      followers.splice(at, 1);
    };
  }

  /** Time from an IKE SA's first message to its authentication, by transport (RFC 7296 §1.2). */
  readonly ikeSaSetup = new Histogram({
    name: 'ikegate_ike_sa_setup_seconds',
    help: 'From the first IKE_SA_INIT of an IKE SA to its established IKE_AUTH, by transport',
    labelNames: ['transport'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly certificateExpiry = new Gauge({
    name: 'ikegate_certificate_expiry_timestamp_seconds',
    help: 'notAfter of a certificate this process presents (relay, identity, API), as a Unix time',
    labelNames: ['certificate'] as const,
    registers: [this.registry],
  });
  /** 1, labelled with what runs: the version, the role and the Node.js version. */
  readonly buildInfo = new Gauge({
    name: 'ikegate_build_info',
    help: 'Always 1: the ikegate version, role and Node.js version of this process',
    labelNames: ['version', 'role', 'node_version'] as const,
    registers: [this.registry],
  });

  // --- per configured peer ------------------------------------------------------------------------
  // `peer` is the name of a peer entry in the configuration: bounded by the configuration, never by
  // what arrives from the network (identities matched by a wildcard entry share its name).

  /**
   * Where the SA-derived per-peer series come from: set by the worker, read at scrape time only, so
   * the per-packet path never touches a per-peer series. Undefined: no per-peer SA series.
   */
  peerFigures: (() => ReadonlyMap<string, PeerFigures>) | undefined;
  #figures: ReadonlyMap<string, PeerFigures> | undefined;

  readonly peerIkeSas: Gauge<'peer'> = new Gauge({
    name: 'ikegate_peer_ike_sas',
    help: 'Established IKE SAs of a configured peer held by this process',
    labelNames: ['peer'] as const,
    registers: [this.registry],
    collect: () => this.#collectPeers(this.peerIkeSas, (f, set) => set({}, f.ikeSas)),
  });
  readonly peerChildSas: Gauge<'peer'> = new Gauge({
    name: 'ikegate_peer_child_sas',
    help: 'CHILD SAs of a configured peer held by this process',
    labelNames: ['peer'] as const,
    registers: [this.registry],
    collect: () => this.#collectPeers(this.peerChildSas, (f, set) => set({}, f.childSas)),
  });
  readonly peerEspInnerBytes: Counter<'peer' | 'direction'> = new Counter({
    name: 'ikegate_peer_esp_inner_bytes_total',
    help: 'Inner packet octets through the CHILD SAs of a configured peer, by direction',
    labelNames: ['peer', 'direction'] as const,
    registers: [this.registry],
    collect: () =>
      this.#collectPeers(this.peerEspInnerBytes, (f, set) => {
        set({ direction: 'in' }, f.bytesIn);
        set({ direction: 'out' }, f.bytesOut);
      }),
  });
  readonly peerEspPackets: Counter<'peer' | 'direction'> = new Counter({
    name: 'ikegate_peer_esp_packets_total',
    help: 'Inner packets through the CHILD SAs of a configured peer, by direction',
    labelNames: ['peer', 'direction'] as const,
    registers: [this.registry],
    collect: () =>
      this.#collectPeers(this.peerEspPackets, (f, set) => {
        set({ direction: 'in' }, f.packetsIn);
        set({ direction: 'out' }, f.packetsOut);
      }),
  });
  /** IKE SA and CHILD SA rekeys (kind ike|child) of a configured peer, either side initiating. */
  readonly peerRekeys = new Counter({
    name: 'ikegate_peer_rekeys_total',
    help: 'Rekeys of the IKE SAs (kind=ike) and CHILD SAs (kind=child) of a configured peer',
    labelNames: ['peer', 'kind'] as const,
    registers: [this.registry],
  });
  /**
   * What went wrong for a configured peer, by reason: refused exchanges (authentication_failed is
   * counted for the peer whose identity was CLAIMED, i.e. also for someone guessing at it), failed
   * CHILD SAs (child_ prefix) and IKE SAs deleted for a fault (dead_peer, connection_lost, ...).
   */
  readonly peerErrors = new Counter({
    name: 'ikegate_peer_errors_total',
    help: 'Refused exchanges, failed CHILD SAs and faulted IKE SAs of a configured peer, by reason',
    labelNames: ['peer', 'reason'] as const,
    registers: [this.registry],
  });
  readonly peerLastError = new Gauge({
    name: 'ikegate_peer_last_error_timestamp_seconds',
    help: 'When a configured peer last had an error of this reason, as a Unix time',
    labelNames: ['peer', 'reason'] as const,
    registers: [this.registry],
  });
  readonly peerLastEstablished = new Gauge({
    name: 'ikegate_peer_last_established_timestamp_seconds',
    help: 'When an IKE SA of a configured peer was last established here, as a Unix time',
    labelNames: ['peer'] as const,
    registers: [this.registry],
  });

  // --- the cluster's shards, as the control process sees them in the store -------------------------

  /**
   * Set by the control process: the configured shard count and how many shards no live lease
   * covers, read from the store once per scrape. Series absent when unset or the store fails.
   */
  clusterShards: (() => Promise<{ readonly count: number; readonly unowned: number }>) | undefined;
  #shards: Promise<{ readonly count: number; readonly unowned: number } | undefined> | undefined;

  // A label, so that the series can be absent: prom-client writes an unlabelled gauge as 0 even
  // after reset(), and 0 shards without an owner while the store cannot be read would be a lie.
  readonly clusterShardCount: Gauge<'store'> = new Gauge({
    name: 'ikegate_cluster_shards',
    help: "The cluster's shard count (cluster.shardCount), as the control process knows it",
    labelNames: ['store'] as const,
    registers: [this.registry],
    collect: async () => {
      const v = await this.#shardView();
      this.clusterShardCount.reset();
      if (v) this.clusterShardCount.set({ store: 'redis' }, v.count);
    },
  });
  readonly clusterShardsUnowned: Gauge<'store'> = new Gauge({
    name: 'ikegate_cluster_shards_without_owner',
    help: 'Shards no worker holds a live lease on, read from the store by the control process',
    labelNames: ['store'] as const,
    registers: [this.registry],
    collect: async () => {
      const v = await this.#shardView();
      this.clusterShardsUnowned.reset();
      if (v) this.clusterShardsUnowned.set({ store: 'redis' }, v.unowned);
    },
  });

  /** A scrape waits at most this long for the store (a hung Redis must not hang /metrics). */
  clusterShardsDeadlineMs = 2000;

  #shardView(): Promise<{ readonly count: number; readonly unowned: number } | undefined> {
    return this.#shards ?? this.#readShards();
  }

  /** The source's answer, or undefined when it fails or misses the deadline (series absent). */
  #readShards(): Promise<{ readonly count: number; readonly unowned: number } | undefined> {
    const source = this.clusterShards;
    if (!source) return Promise.resolve(undefined);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.clusterShardsDeadlineMs);
    });
    return Promise.race([source().catch(() => undefined), deadline]).finally(() => clearTimeout(timer));
  }

  /** One error of a configured peer: counted, and its time kept for "last errors". */
  peerError(peer: string, reason: string, nowMs: number): void {
    this.peerErrors.inc({ peer, reason });
    this.peerLastError.set({ peer, reason }, Math.floor(nowMs / 1000));
  }

  #collectPeers(
    metric: Gauge<string> | Counter<string>,
    each: (f: PeerFigures, set: (labels: Record<string, string>, value: number) => void) => void,
  ): void {
    const figures = this.#figures ?? this.peerFigures?.();
    metric.reset();
    if (!figures) return;
    for (const [peer, f] of figures)
      each(f, (labels, value) => {
        if (metric instanceof Gauge) metric.set({ peer, ...labels }, value);
        else metric.inc({ peer, ...labels }, value);
      });
  }

  constructor(options: { readonly processMetrics?: boolean; readonly role?: string } = {}) {
    if (options.processMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: 'ikegate_' });
      // prom-client's active handle/request/resource gauges end in _total, which Prometheus
      // reserves for counters (`promtool check metrics`); they are left out.
      for (const name of ['active_handles_total', 'active_requests_total', 'active_resources_total'])
        this.registry.removeSingleMetric(`ikegate_nodejs_${name}`);
    }
    this.buildInfo.set(
      { version: IKEGATE_VERSION, role: options.role ?? 'library', node_version: process.versions.node },
      1,
    );
  }

  /** Exports the notAfter of the first certificate in `pem` as `certificate` (none if unreadable). */
  watchCertificate(certificate: string, pem: string | Uint8Array): void {
    try {
      const notAfter = Date.parse(new X509Certificate(pem).validTo) / 1000;
      if (Number.isFinite(notAfter)) this.certificateExpiry.set({ certificate }, notAfter);
    } catch {
      // Not a certificate: the process refuses it elsewhere with a clear error.
    }
  }

  /** Prometheus text exposition format. The per-peer figures are gathered once per render. */
  async render(): Promise<string> {
    this.#figures = this.peerFigures?.();
    this.#shards = this.#readShards();
    try {
      return await this.registry.metrics();
    } finally {
      this.#figures = undefined;
      this.#shards = undefined;
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/**
 * A failed TLS handshake's reason as a bounded label: `timeout`, `reset` (the client went away),
 * `protocol` (not TLS, no shared version or cipher, bad record), or `other`.
 */
export function tlsFailureReason(code: string | undefined, message: string): string {
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timeout/i.test(message)) return 'timeout';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code?.startsWith('ERR_SSL_') || /SSL|TLS|wrong version|unknown protocol/i.test(message))
    return 'protocol';
  return 'other';
}
