/**
 * The IKE SA contexts a worker gives the engine (libs/ikev2 IkeSaContext): crypto and randomness,
 * SPIs that carry the SA's shard (ARCHITECTURE.md routing rule), the policy, PSK lookup, and once
 * the peer is authenticated its own selectors and address pool (RFC 7296 §3.15). Inbound ESP SPIs
 * handed out and not installed yet are remembered, so two SAs never get the same one.
 */
import type { ShardSpiAllocator } from '@ikegate/cluster';
import type { RandomBytes } from '@ikegate/crypto';
import type { AddressAssignment, IkeSaContext, IkeSaPolicy } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { ipv4ToNumber } from './ipv4.js';
import type { SaRecord } from './records.js';
import type { WorkerSettings } from './types.js';

export class SaContexts {
  readonly #settings: WorkerSettings;
  readonly #policy: IkeSaPolicy;
  readonly #allocator: ShardSpiAllocator;
  readonly #metrics: Metrics;
  readonly #log: Logger;
  readonly #espSpiTaken: (spi: number) => boolean;
  readonly #random: RandomBytes;
  readonly #pendingChildSpis = new Set<number>();

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
    const s = this.#settings;
    const anchors = s.currentTrustAnchors?.() ?? s.trustAnchors;
    const base: IkeSaContext = {
      provider: s.provider,
      random: this.#random,
      allocateIkeSpi: () => this.#allocator.ikeSpi(rec.shard, () => false),
      allocateChildSpi: () => {
        const spi = this.#allocator.espSpi(
          rec.shard,
          (c) => this.#espSpiTaken(c) || this.#pendingChildSpis.has(c),
        );
        this.#pendingChildSpis.add(spi);
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, spi);
        return b;
      },
      policy: this.#policy,
      psk: (peerId) => s.matchPeer(peerId)?.psk,
      ...(s.certificate ? { certificate: s.certificate } : {}),
      ...(anchors ? { trustAnchors: anchors, now: Date.now() } : {}),
      // Only the CA of the peer an identity belongs to authenticates it (none for a PSK peer).
      trustAnchorsFor: (peerId) => {
        const peer = s.matchPeer(peerId);
        return peer ? (peer.trustAnchors ?? anchors ?? []) : [];
      },
    };
    return { ...base, forPeer: (peerId) => this.#peer(rec, base, peerId) };
  }

  /** The context once `peerId` is authenticated: its selectors and its pool (RFC 7296 §3.15). */
  #peer(rec: SaRecord, base: IkeSaContext, peerId: string): IkeSaContext {
    const peer = this.#settings.matchPeer(peerId);
    rec.peer = peer;
    rec.peerId = peerId;
    if (!peer) return base;
    const poolKey = (rec.poolKey ??= `${peerId}#${rec.id}`);
    const wait = peer.reconnectWaitSeconds ?? this.#settings.currentReconnectWaitSeconds?.();
    const { dpdMs: _globalDpd, ...inherited } = base.policy;
    const dpdMs = peer.dpdMs ?? base.policy.dpdMs ?? 0;
    return {
      ...base,
      policy: {
        ...inherited,
        localTs: peer.localTs,
        remoteTs: peer.remoteTs,
        ...(peer.espProposals ? { espProposals: peer.espProposals } : {}),
        ...(peer.lifetimes ? { lifetimes: peer.lifetimes } : {}),
        ...(dpdMs > 0 ? { dpdMs } : {}),
        ...(wait !== undefined ? { reconnectWaitMs: wait * 1000 } : {}),
      },
      // A PSK is shared: our AUTH (RFC 7296 §2.15) uses the same key as the peer's.
      psk: () => peer.psk,
      assignAddress: (): AddressAssignment | undefined => {
        const pool = peer.pool;
        if (!pool) return undefined;
        const address = pool.allocate(poolKey, rec.shard);
        this.#metrics.poolAddresses.set({ pool: pool.name }, pool.inUse);
        if (!address) {
          this.#metrics.hot(this.#metrics.drops, 'pool', 'exhausted').inc();
          this.#log.warn({ pool: pool.name, peerId, inUse: pool.inUse }, 'pool-exhausted');
          return undefined;
        }
        rec.virtualIp = address;
        return { address, ...(pool.dns ? { dns: pool.dns } : {}) };
      },
    };
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
