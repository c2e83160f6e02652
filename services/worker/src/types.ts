/**
 * What a worker is configured with and what it reports (its narrow interfaces to the rest of a
 * process): settings, peers and pools, the packet device, the observer, write-through hooks.
 */
import type { ShardLayout } from '@ikegate/cluster';
import type { X509Certificate } from 'node:crypto';
import type { IkeSaContext, IkeSaPolicy, LifetimePolicy, RetransmitPolicy } from '@ikegate/ikev2';
import type { Ipv4Range } from './ipv4.js';

/** Where inner packets go and come from: a TUN device in production. */
export interface PacketDevice {
  write(packet: Uint8Array): boolean;
}

/** One configured peer (or class of peers) as the worker needs it. */
export interface PeerSettings {
  readonly name: string;
  readonly psk?: Uint8Array;
  /** Traffic selectors for this peer's child SAs; `remoteTs` of a pool peer is narrowed to its VIP. */
  readonly localTs: IkeSaPolicy['localTs'];
  readonly remoteTs: IkeSaPolicy['remoteTs'];
  readonly pool?: AddressPoolLike;
  /**
   * The CAs a certificate presented for this peer's identity must chain to; empty: certificates
   * never authenticate it (a PSK peer). Absent: the worker's global `trustAnchors` (tests).
   */
  readonly trustAnchors?: readonly X509Certificate[];
  /** Overrides of the worker's policy once this peer is authenticated (issue #10 peer fields). */
  readonly espProposals?: IkeSaPolicy['espProposals'];
  readonly lifetimes?: LifetimePolicy;
  /** 0 disables liveness checks for this peer. */
  readonly dpdMs?: number;
  readonly reconnectWaitSeconds?: number;
}

export interface AddressPoolLike {
  readonly name: string;
  /** `shard`: the SA's shard (a cluster-wide pool splits its addresses by shard). */
  allocate(key: string, shard?: number): Uint8Array | undefined;
  release(key: string): void;
  /** Marks `address` as held by `key` (an SA taken over from another worker). */
  claim?(key: string, address: Uint8Array): void;
  readonly dns?: readonly Uint8Array[];
  readonly inUse: number;
}

export interface WorkerSettings {
  readonly provider: IkeSaContext['provider'];
  /** The base policy; each peer's selectors replace localTs/remoteTs once it is authenticated. */
  readonly policy: IkeSaPolicy;
  /** Finds the peer settings for an authenticated identity (exact ids before wildcards). */
  readonly matchPeer: (peerId: string) => PeerSettings | undefined;
  /**
   * Every CA some peer names, read when an SA starts (its CERTREQ); a function because peers
   * change at run time. Takes precedence over `trustAnchors`.
   */
  readonly currentTrustAnchors?: () => readonly X509Certificate[];
  /** The cluster's wait-for-reconnect time now (policies/failover), for peers without their own. */
  readonly currentReconnectWaitSeconds?: () => number;
  readonly certificate?: IkeSaContext['certificate'];
  readonly trustAnchors?: IkeSaContext['trustAnchors'];
  readonly layout: ShardLayout;
  /** Lifetimes: rekeyed at lifetime minus a random part of the margin (RFC 7296 §2.8 jitter). */
  readonly ikeLifetimeSeconds: number;
  readonly childLifetimeSeconds: number;
  readonly rekeyMarginSeconds: number;
  /** Liveness check (RFC 7296 §2.4) after this long without inbound traffic; 0 disables. */
  readonly dpdSeconds: number;
  /**
   * TCP: how long an SA whose stream closed waits for its peer to come back on a new stream
   * (failover policy wait-for-reconnect) before it is deleted and counted (`connection-lost`).
   * Default 30 s.
   */
  readonly reconnectWaitSeconds?: number;
  readonly retransmit?: RetransmitPolicy;
  readonly halfOpenTimeoutMs?: number;
  /** Demand COOKIEs (RFC 7296 §2.6) once this many half-open SAs are held. */
  readonly cookieThreshold?: number;
  /** Hard cap on IKE SAs held (bounded memory); new IKE_SA_INITs past it are dropped. */
  readonly maxIkeSas?: number;
  /** Hard caps on half-open SAs, in total and per peer address. */
  readonly maxHalfOpen?: number;
  readonly maxHalfOpenPerAddress?: number;
  /**
   * Established SAs held as objects at most; the least recently used idle ones beyond it are held
   * encoded (~1.7 KB less each) and rebuilt on their next event (libs/ikev2 endpoint/cold.ts).
   */
  readonly maxHotSas?: number;
  /**
   * A child SA that carried no ESP packet for this long (up to twice it) lets its ESP objects go
   * and keeps only its keys and counters, rebuilt on its next packet (data-plane.ts, cold
   * children). Default 60 s; 0 never.
   */
  readonly coldChildAfterMs?: number;
  /** Told about SA lifecycle events (the `connect` client configures its TUN from these). */
  readonly observer?: WorkerObserver;
  /** Write-through: told when an established SA changed (take a snapshot) or is gone. */
  readonly persistence?: Persistence;
  /**
   * A virtual IP starts (true) or stops (false) being routed to one of our child SAs: a cluster
   * worker points a host route at its own TUN for it, so return traffic reaches this worker.
   */
  readonly onVirtualIp?: (address: string, present: boolean) => void;
  /** In a cluster: whether we hold the shard's lease; frames for other shards are bounced. */
  readonly ownsShard?: (shard: number) => boolean;
  /** This worker's id in a cluster, shown with its SAs. */
  readonly workerId?: string;
  /** The lease epoch under which this worker holds `shard` (cluster), shown with its SAs. */
  readonly shardEpoch?: (shard: number) => number | undefined;
  /**
   * The clock (ms) every IKE deadline is on. Wall-clock by default: deadlines are stored with the
   * SA and another worker resumes them after a takeover.
   */
  readonly clock?: () => number;
}

export interface Persistence {
  dirty(spi: string, shard: number): void;
  gone(spi: string, shard: number): void;
  /**
   * Resolves once the SA's state as of this call is in the store (undefined: nothing pending).
   * IKE messages of the SA wait for it, so that a peer never sees a state a takeover would not
   * find (write-ahead). Never rejects; it resolves after a bounded wait when the store is down.
   */
  durable?(spi: string): Promise<void> | undefined;
}

export interface ChildInfo {
  readonly ikeSpi: string;
  readonly inboundSpi: number;
  /** The address the responder assigned us (initiator with CFG_REQUEST), dotted quad. */
  readonly virtualIp?: string;
  readonly weInitiated: boolean;
  readonly tsLocal: readonly Ipv4Range[];
  readonly tsRemote: readonly Ipv4Range[];
}

export interface WorkerObserver {
  established?(ikeSpi: string, peerId: string): void;
  childInstalled?(child: ChildInfo): void;
  /**
   * A child SA we asked for was refused; the IKE SA lives on. `notify` is the peer's error notify
   * (e.g. 36 INTERNAL_ADDRESS_FAILURE: the gateway has no address left, RFC 7296 §3.15.4).
   */
  childFailed?(ikeSpi: string, reason: string, notify: number | undefined): void;
  ikeSaDeleted?(ikeSpi: string, reason: string): void;
}

/** What `Worker.initiate` needs: our policy toward one server and the PSK we share with it. */
export interface InitiateOptions {
  readonly policy: IkeSaPolicy;
  readonly psk: Uint8Array;
  /** The identity the responder must prove (RFC 7296 §2.15); the SA is deleted otherwise. */
  readonly remoteId: string;
  readonly path: import('@ikegate/cluster').PeerPath;
}

/** What the control API shows for one IKE SA. */
export interface SaSummary {
  readonly spi: string;
  readonly status: string;
  readonly peerId?: string;
  readonly peer?: string;
  readonly shard: number;
  /** The worker holding the SA (cluster) and its lease epoch of the shard. */
  readonly worker?: string;
  readonly epoch?: number;
  /** The edge the peer is reached through (cluster). */
  readonly edge?: string;
  readonly transport: string;
  readonly remote: string;
  readonly virtualIp?: string;
  readonly createdAt: string;
  readonly establishedAt?: string;
  /** The last authenticated message or ESP packet from the peer. */
  readonly lastActivity?: string;
  readonly children: readonly {
    inboundSpi: string;
    outboundSpi: string;
    packetsIn: number;
    packetsOut: number;
    bytesIn: number;
    bytesOut: number;
  }[];
}
