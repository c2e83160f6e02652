/**
 * The IKE SA contexts a worker gives the engine (libs/ikev2 IkeSaContext): crypto and randomness,
 * SPIs that carry the SA's shard (ARCHITECTURE.md routing rule), the policy, PSK lookup, and once
 * the peer is authenticated its own selectors and address pool (RFC 7296 §3.15). Inbound ESP SPIs
 * handed out and not installed yet are remembered, so two SAs never get the same one.
 *
 * Memory (issue #14, docs/performance.md "What one held SA consists of"): a held SA keeps its
 * context for its whole life, so a context is one small object (`SaContext`: the owner, the SA's
 * record, its peer and the peer's policy) whose functions are methods on the prototype, not a set
 * of closures and spread copies per SA (those were ~3 KB per SA). A peer's policy is one object
 * shared by all of its SAs (cached per peer entry and reconnect wait).
 */
import type { ShardSpiAllocator } from '@ikegate/cluster';
import type { RandomBytes } from '@ikegate/crypto';
import type { AddressAssignment, IkeSaContext, IkeSaPolicy } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { ipv4ToNumber } from './ipv4.js';
import type { SaRecord } from './records.js';
import type { PeerSettings, WorkerSettings } from './types.js';

/** What an initiator SA uses instead of the worker's responder policy and PSK lookup. */
export interface InitiatorOverrides {
  readonly policy: IkeSaPolicy;
  readonly psk: Uint8Array;
  readonly remoteId: string;
}

export class SaContexts {
  readonly #settings: WorkerSettings;
  readonly #policy: IkeSaPolicy;
  readonly #allocator: ShardSpiAllocator;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #espSpiTaken: (spi: number) => boolean;
  readonly #random: RandomBytes;
  readonly #pendingChildSpis = new Set<number>();
  /** A peer entry's policy, by the reconnect wait (s) it was made with; entries go with the peer. */
  readonly #peerPolicies = new WeakMap<PeerSettings, Map<number | undefined, IkeSaPolicy>>();

  constructor(
    settings: WorkerSettings,
    policy: IkeSaPolicy,
    allocator: ShardSpiAllocator,
    metrics: Metrics,
    log: Logger,
    espSpiTaken: (spi: number) => boolean,
    /** The worker's randomness (one pooled source per worker, @ikegate/crypto RandomPool). */
    random: RandomBytes,
  ) {
    this.#settings = settings;
    this.#policy = policy;
    this.#allocator = allocator;
    this.#metrics = metrics;
    this.#log = log;
    this.#espSpiTaken = espSpiTaken;
    this.#random = random;
  }

  /** A child SA with this inbound SPI is installed (its SPI is in the data plane's index now). */
  installed(inboundSpi: Uint8Array): void {
    this.#pendingChildSpis.delete(ipv4ToNumber(inboundSpi));
  }

  /** `rec` is gone: the child SPIs it allocated and never installed are free again. */
  released(rec: SaRecord): void {
    for (const spi of this.#pendingOf(rec)) this.#pendingChildSpis.delete(spi);
  }

  /** The configured peer an identity belongs to now. */
  peerFor(peerId: string) {
    return this.#settings.matchPeer(peerId);
  }

  /** The context of an SA before its peer is authenticated (`forPeer` gives the peer's own). */
  base(rec: SaRecord): IkeSaContext {
    return new SaContext(this, rec, undefined, this.#policy);
  }

  /** The context of an SA we initiate toward a responder that must prove `o.remoteId`. */
  initiator(rec: SaRecord, o: InitiatorOverrides): IkeSaContext {
    return new InitiatorContext(this, rec, o);
  }

  /** The context of `rec` once `peerId` is authenticated; `rec` learns its peer. */
  forPeer(rec: SaRecord, peerId: string, unmatched: IkeSaContext): IkeSaContext {
    const peer = this.learnPeer(rec, peerId);
    if (!peer) return unmatched;
    // join, not a template: one flat string, not a tree of three, for as long as the SA (issue #14).
    rec.poolKey ??= [peerId, rec.id].join('#');
    return new SaContext(this, rec, peer, this.#peerPolicy(peer));
  }

  /** Records on `rec` the identity its peer authenticated as, and the peer entry it belongs to. */
  learnPeer(rec: SaRecord, peerId: string): PeerSettings | undefined {
    const peer = this.#settings.matchPeer(peerId);
    rec.peer = peer;
    rec.peerId = peerId;
    return peer;
  }

  /** `peer`'s selectors, proposals, lifetimes, DPD and reconnect wait over the worker's policy. */
  #peerPolicy(peer: PeerSettings): IkeSaPolicy {
    const wait = peer.reconnectWaitSeconds ?? this.#settings.currentReconnectWaitSeconds?.();
    let byWait = this.#peerPolicies.get(peer);
    const cached = byWait?.get(wait);
    if (cached) return cached;
    const { dpdMs: _globalDpd, ...inherited } = this.#policy;
    const dpdMs = peer.dpdMs ?? this.#policy.dpdMs ?? 0;
    const policy: IkeSaPolicy = {
      ...inherited,
      localTs: peer.localTs,
      remoteTs: peer.remoteTs,
      ...(peer.espProposals ? { espProposals: peer.espProposals } : {}),
      ...(peer.lifetimes ? { lifetimes: peer.lifetimes } : {}),
      ...(dpdMs > 0 ? { dpdMs } : {}),
      ...(wait !== undefined ? { reconnectWaitMs: wait * 1000 } : {}),
    };
    if (!byWait) this.#peerPolicies.set(peer, (byWait = new Map()));
    byWait.set(wait, policy);
    return policy;
  }

  // --- what SaContext's methods call -----------------------------------------------------------

  get settings(): WorkerSettings {
    return this.#settings;
  }

  get random(): RandomBytes {
    return this.#random;
  }

  trustAnchors() {
    return this.#settings.currentTrustAnchors?.() ?? this.#settings.trustAnchors;
  }

  ikeSpi(rec: SaRecord): Uint8Array {
    return this.#allocator.ikeSpi(rec.shard, () => false);
  }

  childSpi(rec: SaRecord): Uint8Array {
    const spi = this.#allocator.espSpi(
      rec.shard,
      (c) => this.#espSpiTaken(c) || this.#pendingChildSpis.has(c),
    );
    this.#pendingChildSpis.add(spi);
    // Octet by octet: a DataView would move the octets into a backing store outside the heap (~380 B of RSS).
    return Uint8Array.of(spi >>> 24, (spi >>> 16) & 0xff, (spi >>> 8) & 0xff, spi & 0xff);
  }

  /** An address from `peer`'s pool for `rec` (RFC 7296 §3.15), or undefined when it is exhausted. */
  assignAddress(rec: SaRecord, peer: PeerSettings, peerId: string): AddressAssignment | undefined {
    const pool = peer.pool;
    if (!pool) return undefined;
    const address = pool.allocate(rec.poolKey ?? `${peerId}#${rec.id}`, rec.shard);
    this.#metrics.poolAddresses.set({ pool: pool.name }, pool.inUse);
    if (!address) {
      this.#metrics.hot(this.#metrics.drops, 'pool', 'exhausted').inc();
      this.#log.warn({ pool: pool.name, peerId, inUse: pool.inUse }, 'pool-exhausted');
      return undefined;
    }
    rec.virtualIp = address;
    return { address, ...(pool.dns ? { dns: pool.dns } : {}) };
  }

  /** Child SPIs `rec` allocated and never installed (an IKE_AUTH or rekey that did not complete). */
  #pendingOf(rec: SaRecord): number[] {
    const s = rec.entry.state;
    const out: number[] = [];
    for (const core of [s.current, s.previous, s.collision]) {
      const t = core?.outstanding?.task;
      if (t?.kind === 'ike-auth') out.push(ipv4ToNumber(t.childSpi));
      if (t?.kind === 'rekey-child') out.push(ipv4ToNumber(t.newSpi));
    }
    return out;
  }
}

/**
 * One SA's context. Before authentication (`peer` undefined) it has `forPeer`; after, `psk` and
 * `assignAddress` are the peer's own. Function members the engine passes around as values
 * (`random`) are the worker's shared functions; the others are methods, called on the context.
 */
class SaContext implements IkeSaContext {
  readonly #owner: SaContexts;
  readonly #rec: SaRecord;
  readonly #peer: PeerSettings | undefined;
  readonly policy: IkeSaPolicy;

  constructor(owner: SaContexts, rec: SaRecord, peer: PeerSettings | undefined, policy: IkeSaPolicy) {
    this.#owner = owner;
    this.#rec = rec;
    this.#peer = peer;
    this.policy = policy;
  }

  get provider() {
    return this.#owner.settings.provider;
  }

  get random(): RandomBytes {
    return this.#owner.random;
  }

  get certificate() {
    return this.#owner.settings.certificate;
  }

  get trustAnchors() {
    return this.#owner.trustAnchors();
  }

  /** Certificates are checked against the time they are checked at. */
  get now(): number | undefined {
    return this.#owner.trustAnchors() ? Date.now() : undefined;
  }

  allocateIkeSpi(): Uint8Array {
    return this.#owner.ikeSpi(this.#rec);
  }

  allocateChildSpi(): Uint8Array {
    return this.#owner.childSpi(this.#rec);
  }

  // A PSK is shared: our AUTH (RFC 7296 §2.15) uses the same key as the peer's.
  psk(peerId: string): Uint8Array | undefined {
    return this.#peer ? this.#peer.psk : this.#owner.settings.matchPeer(peerId)?.psk;
  }

  // Only the CA of the peer an identity belongs to authenticates it (none for a PSK peer).
  trustAnchorsFor(peerId: string) {
    const peer = this.#owner.settings.matchPeer(peerId);
    return peer ? (peer.trustAnchors ?? this.#owner.trustAnchors() ?? []) : [];
  }

  get forPeer(): ((peerId: string) => IkeSaContext) | undefined {
    if (this.#peer) return undefined;
    return (peerId) => this.#owner.forPeer(this.#rec, peerId, this);
  }

  get assignAddress(): ((peerId: string) => AddressAssignment | undefined) | undefined {
    const peer = this.#peer;
    if (!peer) return undefined;
    return (peerId) => this.#owner.assignAddress(this.#rec, peer, peerId);
  }
}

/**
 * An SA we initiate: its own policy and PSK, and the identity the responder must prove. Once the
 * responder is authenticated the record learns its peer entry, and the SA keeps this context.
 */
class InitiatorContext extends SaContext {
  readonly #owner: SaContexts;
  readonly #rec: SaRecord;
  readonly #psk: Uint8Array;
  readonly expectedPeerId: string;

  constructor(owner: SaContexts, rec: SaRecord, o: InitiatorOverrides) {
    super(owner, rec, undefined, o.policy);
    this.#owner = owner;
    this.#rec = rec;
    this.#psk = o.psk;
    this.expectedPeerId = o.remoteId;
  }

  override get forPeer(): (peerId: string) => IkeSaContext {
    return (peerId) => {
      this.#owner.learnPeer(this.#rec, peerId);
      return this;
    };
  }

  override psk(): Uint8Array {
    return this.#psk;
  }
}
