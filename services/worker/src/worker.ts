/**
 * A worker: runs IKEv2 (libs/ikev2's sans-IO state machine) and ESP (libs/esp) for the shards it
 * owns, and moves inner packets between ESP and a packet device (the TUN). It receives frames from
 * edges through `WorkerLink` and sends through `EdgeLink` (libs/cluster frames.ts), so it never
 * touches a socket: in `ikegate up` the edge calls it directly, in a cluster gRPC carries the same
 * frames.
 *
 * Indexes, all bounded by the SAs held:
 * - our IKE SPI -> SA (the edge routing rule: ARCHITECTURE.md, RFC 7296 §2.6), plus half-open SAs
 *   by (initiator SPI, peer address) so a retransmitted IKE_SA_INIT finds its SA;
 * - our inbound ESP SPI -> child SA;
 * - virtual IP -> child SA (road warriors), and a list of site-to-site child SAs matched by their
 *   traffic selectors.
 *
 * Drops are counted by reason, never thrown (STYLE.md rule 7): a peer's bad input touches only the
 * SA its SPI names, and only after the state machine authenticated it.
 */
import { randomBytes } from 'node:crypto';
import type { CryptoProvider } from '@ikegate/crypto';
import { espSuite, InboundSa, OutboundSa } from '@ikegate/esp';
import {
  createIkeSa,
  type IkeSaAction,
  type IkeSaCommand,
  type IkeSaContext,
  type IkeSaEvent,
  type IkeSaPolicy,
  type IkeSaState,
  type InstallChildAction,
  step,
  type AddressAssignment,
} from '@ikegate/ikev2';
import {
  type EdgeLink,
  type InboundFrame,
  type PeerPath,
  ShardSpiAllocator,
  type ShardLayout,
  type WorkerLink,
} from '@ikegate/cluster';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { type ChildSnapshot, type SaSnapshot } from './snapshot.js';
import {
  type Ipv4Range,
  ipv4Ranges,
  ipv4Text,
  ipv4ToNumber,
  numberToIpv4,
  packetMatches,
  parseIpv4,
} from './ipv4.js';

const IKE_HEADER_LENGTH = 28;
const FLAG_INITIATOR = 0x08;
const FLAG_RESPONSE = 0x20;
const EXCHANGE_IKE_SA_INIT = 34;
const EXCHANGE_NAMES: Record<number, string> = {
  34: 'IKE_SA_INIT',
  35: 'IKE_AUTH',
  36: 'CREATE_CHILD_SA',
  37: 'INFORMATIONAL',
  43: 'IKE_INTERMEDIATE',
};
/** Old IKE SPIs kept routable after IKE SA rekeys (the old SA is deleted right after). */
const MAX_SPIS_PER_SA = 3;

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
  readonly provider: CryptoProvider;
  /** The base policy; each peer's selectors replace localTs/remoteTs once it is authenticated. */
  readonly policy: IkeSaPolicy;
  /** Finds the peer settings for an authenticated identity (exact ids before wildcards). */
  readonly matchPeer: (peerId: string) => PeerSettings | undefined;
  readonly certificate?: IkeSaContext['certificate'];
  readonly trustAnchors?: IkeSaContext['trustAnchors'];
  readonly layout: ShardLayout;
  /** Lifetimes: rekeyed at lifetime minus a random part of the margin (RFC 7296 §2.8 jitter). */
  readonly ikeLifetimeSeconds: number;
  readonly childLifetimeSeconds: number;
  readonly rekeyMarginSeconds: number;
  /** Liveness check (RFC 7296 §2.4) after this long without inbound traffic; 0 disables. */
  readonly dpdSeconds: number;
  readonly halfOpenTimeoutMs?: number;
  /** Demand COOKIEs (RFC 7296 §2.6) once this many half-open SAs are held. */
  readonly cookieThreshold?: number;
  /** Hard cap on IKE SAs held (bounded memory); new IKE_SA_INITs past it are dropped. */
  readonly maxIkeSas?: number;
  /** Told about SA lifecycle events (the `connect` client configures its TUN from these). */
  readonly observer?: WorkerObserver;
  /** Write-through: told when an established SA changed (take a snapshot) or is gone. */
  readonly persistence?: Persistence;
  /**
   * A virtual IP starts (true) or stops (false) being routed to one of our child SAs: a cluster
   * worker points a host route at its own TUN for it, so return traffic reaches this worker.
   */
  readonly onVirtualIp?: (address: string, present: boolean) => void;
  /** In a cluster: whether we hold the shard's lease; frames for other shards are dropped. */
  readonly ownsShard?: (shard: number) => boolean;
}

export interface Persistence {
  dirty(spi: string, shard: number): void;
  gone(spi: string, shard: number): void;
}

/** Outbound ESP sequence numbers skipped on takeover: more than are sent between checkpoints. */
export const TAKEOVER_SEQUENCE_MARGIN = 1n << 20n;
const CHECKPOINT_EVERY_PACKETS = 1 << 16;

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
  ikeSaDeleted?(ikeSpi: string, reason: string): void;
}

/** What `Worker.initiate` needs: our policy toward one server and the PSK we share with it. */
export interface InitiateOptions {
  readonly policy: IkeSaPolicy;
  readonly psk: Uint8Array;
  /** The identity the responder must prove (RFC 7296 §2.15); the SA is deleted otherwise. */
  readonly remoteId: string;
  readonly path: PeerPath;
}

interface ChildRecord {
  readonly encryption: { readonly id: number; readonly keyBits: number };
  readonly integrity?: number;
  readonly inKeys: Uint8Array;
  readonly outKeys: Uint8Array;
  readonly tsLocalRaw: InstallChildAction['tsLocal'];
  readonly tsRemoteRaw: InstallChildAction['tsRemote'];
  readonly inbound: InboundSa;
  readonly outbound: OutboundSa;
  readonly sa: SaRecord;
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  readonly inboundSpiBytes: Uint8Array;
  readonly tsRemote: readonly Ipv4Range[];
  readonly tsLocal: readonly Ipv4Range[];
  readonly virtualIp?: number;
  readonly installedAt: number;
  timer?: NodeJS.Timeout;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
}

interface SaRecord {
  readonly id: number;
  state: IkeSaState;
  ctx: IkeSaContext;
  /** The newest authenticated path to the peer: IKE requests and ESP go there. */
  path: PeerPath;
  readonly timers: Map<string, NodeJS.Timeout>;
  /** Our IKE SPIs (hex), newest last. */
  readonly spis: string[];
  halfOpenKey?: string;
  /** SPIs this SA allocated (hex); tells which of a rekeyed pair is ours. */
  readonly allocated: Set<string>;
  readonly children: Map<number, ChildRecord>;
  readonly shard: number;
  peer?: PeerSettings;
  peerId?: string;
  virtualIp?: Uint8Array;
  lastInbound: number;
  readonly createdAt: number;
  establishedAt?: number;
  /** Initiator: the identity the responder must authenticate as. */
  expectedPeerId?: string;
  poolKey?: string;
}

/** What the control API shows for one IKE SA. */
export interface SaSummary {
  readonly spi: string;
  readonly status: string;
  readonly peerId?: string;
  readonly peer?: string;
  readonly shard: number;
  readonly transport: string;
  readonly remote: string;
  readonly virtualIp?: string;
  readonly establishedAt?: string;
  readonly children: readonly {
    inboundSpi: string;
    outboundSpi: string;
    packetsIn: number;
    packetsOut: number;
    bytesIn: number;
    bytesOut: number;
  }[];
}

const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');

function endpointBytes(address: string): Uint8Array {
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  if (a.includes('.')) return parseIpv4(a);
  return new Uint8Array(16);
}

export class Worker implements WorkerLink {
  readonly #settings: WorkerSettings;
  readonly #edge: EdgeLink;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  #device: PacketDevice | undefined;
  readonly #allocator: ShardSpiAllocator;
  readonly #byOurSpi = new Map<string, SaRecord>();
  readonly #halfOpen = new Map<string, SaRecord>();
  readonly #byEspSpi = new Map<number, ChildRecord>();
  readonly #byVirtualIp = new Map<number, ChildRecord>();
  readonly #siteChildren = new Set<ChildRecord>();
  readonly #records = new Set<SaRecord>();
  readonly #cookieSecret = new Uint8Array(randomBytes(32));
  #nextId = 1;
  #closed = false;

  constructor(settings: WorkerSettings, edge: EdgeLink, log: Logger, metrics: Metrics) {
    this.#settings = settings;
    this.#edge = edge;
    this.#log = log;
    this.#metrics = metrics;
    this.#allocator = new ShardSpiAllocator(settings.layout, (n) => new Uint8Array(randomBytes(n)));
  }

  /** Attaches the packet device decrypted inner packets are written to. */
  attachDevice(device: PacketDevice): void {
    this.#device = device;
  }

  get ikeSaCount(): number {
    return this.#records.size;
  }

  get childSaCount(): number {
    return this.#byEspSpi.size;
  }

  // --- frames from the edge ----------------------------------------------------------------------

  deliver(frame: InboundFrame): void {
    if (this.#closed) return;
    // A stale edge route (the lease just moved): never create or touch SAs in a shard not ours.
    if (this.#settings.ownsShard && !this.#settings.ownsShard(frame.shard)) {
      this.#drop('worker', 'not_owner');
      this.#edge.bounce?.(frame);
      return;
    }
    if (frame.kind === 'esp') this.#onEsp(frame);
    else this.#onIke(frame);
  }

  connectionClosed(path: PeerPath): void {
    // RFC 9329 §6: the responder does not reconnect; it keeps the SA and waits for the initiator to
    // come back on a new connection (or for DPD / lifetimes to end the SA).
    for (const rec of this.#records) {
      if (rec.path.connection === path.connection) {
        this.#log.info(
          { spi: rec.spis.at(-1), peerId: rec.peerId, connection: path.connection },
          'peer-connection-closed',
        );
      }
    }
  }

  #onIke(frame: InboundFrame): void {
    const m = frame.bytes;
    if (m.length < IKE_HEADER_LENGTH) return this.#drop('ike', 'short');
    const exchange = m[18]!;
    const flags = m[19]!;
    this.#metrics.ikeMessages.inc({ direction: 'in', exchange: EXCHANGE_NAMES[exchange] ?? 'other' });
    const fromInitiator = (flags & FLAG_INITIATOR) !== 0;
    const ours = fromInitiator ? m.subarray(8, 16) : m.subarray(0, 8);
    let rec: SaRecord | undefined;
    if (fromInitiator && isZero(ours)) {
      if (exchange !== EXCHANGE_IKE_SA_INIT || (flags & FLAG_RESPONSE) !== 0)
        return this.#drop('ike', 'zero_spi');
      const key = `${hex(m.subarray(0, 8))}/${frame.path.remote.address}`;
      rec = this.#halfOpen.get(key);
      if (!rec) {
        if (this.#settings.maxIkeSas !== undefined && this.#records.size >= this.#settings.maxIkeSas)
          return this.#drop('ike', 'sa_limit');
        rec = this.#newResponder(frame, key);
      }
    } else {
      rec = this.#byOurSpi.get(hex(ours));
      if (!rec) return this.#drop('ike', 'unknown_spi');
    }
    const now = Date.now();
    const event: IkeSaEvent = {
      kind: 'message',
      bytes: m,
      transport: frame.path.transport === 'udp' ? 'udp' : 'tcp',
      now,
    };
    const previous = rec.path;
    rec.path = frame.path;
    rec.ctx = withEndpoints(rec.ctx, frame.path);
    const dropped = this.#step(rec, event, frame.path);
    if (dropped) {
      rec.path = previous; // only an authenticated message moves the SA (RFC 7296 §2.23)
      rec.ctx = withEndpoints(rec.ctx, previous);
    } else {
      rec.lastInbound = now;
    }
  }

  #newResponder(frame: InboundFrame, halfOpenKey: string): SaRecord {
    const now = Date.now();
    const rec: SaRecord = {
      id: this.#nextId++,
      state: createIkeSa(frame.path.transport === 'udp' ? 'udp' : 'tcp'),
      ctx: undefined as unknown as IkeSaContext,
      path: frame.path,
      timers: new Map(),
      spis: [],
      allocated: new Set(),
      children: new Map(),
      shard: frame.shard,
      lastInbound: now,
      createdAt: now,
      halfOpenKey,
    };
    rec.ctx = this.#context(rec, frame.path);
    this.#records.add(rec);
    this.#halfOpen.set(halfOpenKey, rec);
    this.#updateGauges();
    return rec;
  }

  #context(rec: SaRecord, path: PeerPath): IkeSaContext {
    const s = this.#settings;
    const base: IkeSaContext = {
      provider: s.provider,
      random: (n) => new Uint8Array(randomBytes(n)),
      allocateIkeSpi: () => {
        const spi = this.#allocator.ikeSpi(rec.shard, (c) => this.#byOurSpi.has(hex(c)));
        const h = hex(spi);
        rec.allocated.add(h);
        this.#indexSpi(rec, h);
        return spi;
      },
      allocateChildSpi: () => {
        const spi = this.#allocator.espSpi(rec.shard, (c) => this.#byEspSpi.has(c));
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, spi);
        return b;
      },
      policy: s.policy,
      psk: (peerId) => s.matchPeer(peerId)?.psk,
      local: { address: endpointBytes(path.local.address), port: path.local.port },
      remote: { address: endpointBytes(path.remote.address), port: path.remote.port },
      cookieSecret: this.#cookieSecret,
      requireCookie: () => this.#halfOpen.size >= (s.cookieThreshold ?? Number.POSITIVE_INFINITY),
      ...(s.halfOpenTimeoutMs !== undefined ? { halfOpenTimeoutMs: s.halfOpenTimeoutMs } : {}),
      ...(s.certificate ? { certificate: s.certificate } : {}),
      ...(s.trustAnchors ? { trustAnchors: s.trustAnchors, now: Date.now() } : {}),
    };
    return {
      ...base,
      forPeer: (peerId) => this.#peerContext(rec, base, peerId),
    };
  }

  /** The context once `peerId` is authenticated: its selectors and its pool (RFC 7296 §3.15). */
  #peerContext(rec: SaRecord, base: IkeSaContext, peerId: string): IkeSaContext {
    const peer = this.#settings.matchPeer(peerId);
    rec.peer = peer;
    rec.peerId = peerId;
    if (!peer) return base;
    const poolKey = (rec.poolKey ??= `${peerId}#${rec.id}`);
    return {
      ...base,
      policy: { ...base.policy, localTs: peer.localTs, remoteTs: peer.remoteTs },
      // A PSK is shared: our AUTH (RFC 7296 §2.15) uses the same key as the peer's.
      psk: () => peer.psk,
      assignAddress: (): AddressAssignment | undefined => {
        const pool = peer.pool;
        if (!pool) return undefined;
        const address = pool.allocate(poolKey, rec.shard);
        if (!address) {
          this.#drop('pool', 'exhausted');
          return undefined;
        }
        rec.virtualIp = address;
        this.#metrics.poolAddresses.set({ pool: pool.name }, pool.inUse);
        return { address, ...(pool.dns ? { dns: pool.dns } : {}) };
      },
    };
  }

  #indexSpi(rec: SaRecord, h: string): void {
    this.#byOurSpi.set(h, rec);
    rec.spis.push(h);
    while (rec.spis.length > MAX_SPIS_PER_SA) {
      const old = rec.spis.shift()!;
      if (this.#byOurSpi.get(old) === rec) this.#byOurSpi.delete(old);
    }
  }

  /** Steps the machine and runs its actions; returns whether the machine dropped the event. */
  #step(rec: SaRecord, event: IkeSaEvent, replyPath: PeerPath): boolean {
    let result;
    const started = process.hrtime.bigint();
    try {
      result = step(rec.state, event, rec.ctx);
    } catch (e) {
      // A bug, not bad input (the machine turns bad input into drops); keep serving other SAs.
      this.#log.error({ err: e, spi: rec.spis.at(-1), peerId: rec.peerId }, 'ike-step-failed');
      this.#drop('ike', 'internal_error');
      return true;
    }
    this.#metrics.exchangeSeconds.observe(Number(process.hrtime.bigint() - started) / 1e9);
    rec.state = result.state;
    let dropped = false;
    for (const a of result.actions) if (this.#act(rec, a, replyPath)) dropped = true;
    if (rec.ctx.forPeer && rec.peerId !== undefined && rec.state.status === 'established') {
      // Keep stepping this SA with the peer's own context (types.ts forPeer).
      rec.ctx = rec.ctx.forPeer(rec.peerId);
    }
    if (!dropped && rec.state.status === 'established' && this.#records.has(rec)) this.#dirty(rec);
    return dropped;
  }

  #act(rec: SaRecord, a: IkeSaAction, replyPath: PeerPath): boolean {
    switch (a.kind) {
      case 'send': {
        const r = this.#edge.send({ kind: 'ike', path: replyPath, bytes: a.bytes });
        this.#metrics.ikeMessages.inc({
          direction: 'out',
          exchange: EXCHANGE_NAMES[a.bytes[18] ?? 0] ?? 'other',
        });
        if (r !== 'sent') this.#drop('ike-out', r);
        return false;
      }
      case 'arm-timer':
        this.#armTimer(rec, a.id, a.at);
        return false;
      case 'install-child':
        this.#installChild(rec, a);
        return false;
      case 'remove-child':
        this.#removeChild(rec, ipv4ToNumber(a.inboundSpi), 'removed');
        return false;
      case 'established':
        this.#established(rec, a.peerId);
        return false;
      case 'rekeyed-ike': {
        const mine = [a.newInitiatorSpi, a.newResponderSpi].map(hex).find((h) => rec.allocated.has(h));
        this.#metrics.ikeSaEvents.inc({ event: 'rekeyed', reason: '' });
        this.#log.info({ spi: mine, peerId: rec.peerId }, 'ike-sa-rekeyed');
        this.#armIkeRekey(rec);
        return false;
      }
      case 'deleted':
        this.#deleted(rec, a.reason);
        return false;
      case 'persist':
      case 'close-connection':
        return false;
      case 'dropped':
        this.#drop('ike', a.reason);
        return true;
      default:
        return false;
    }
  }

  #established(rec: SaRecord, peerId: string): void {
    if (rec.expectedPeerId !== undefined && rec.expectedPeerId.toLowerCase() !== peerId.toLowerCase()) {
      // RFC 7296 §2.15: authenticated, but not as whom we wanted to reach.
      this.#log.warn({ spi: rec.spis.at(-1), peerId, expected: rec.expectedPeerId }, 'ike-sa-wrong-peer-id');
      this.#drop('ike', 'wrong_peer_id');
      queueMicrotask(() => this.#command(rec, { kind: 'delete-ike' }));
    }
    rec.peerId = peerId;
    rec.establishedAt = Date.now();
    if (rec.halfOpenKey) {
      this.#halfOpen.delete(rec.halfOpenKey);
      rec.halfOpenKey = undefined;
    }
    this.#metrics.ikeSaEvents.inc({ event: 'established', reason: '' });
    this.#log.info(
      {
        spi: rec.spis.at(-1),
        peerId,
        peer: rec.peer?.name,
        transport: rec.path.transport,
        remote: `${rec.path.remote.address}:${rec.path.remote.port}`,
        virtualIp: rec.virtualIp ? ipv4Text(rec.virtualIp) : undefined,
      },
      'ike-sa-established',
    );
    this.#armIkeRekey(rec);
    this.#armDpd(rec);
    this.#updateGauges();
    this.#settings.observer?.established?.(rec.spis.at(-1) ?? '', peerId);
  }

  #deleted(rec: SaRecord, reason: string): void {
    for (const t of rec.timers.values()) clearTimeout(t);
    rec.timers.clear();
    for (const spi of [...rec.children.keys()]) this.#removeChild(rec, spi, 'ike-deleted');
    for (const h of rec.spis) if (this.#byOurSpi.get(h) === rec) this.#byOurSpi.delete(h);
    if (rec.halfOpenKey) this.#halfOpen.delete(rec.halfOpenKey);
    if (rec.virtualIp && rec.peer?.pool && rec.peerId !== undefined) {
      rec.peer.pool.release(rec.poolKey ?? `${rec.peerId}#${rec.id}`);
      this.#metrics.poolAddresses.set({ pool: rec.peer.pool.name }, rec.peer.pool.inUse);
    }
    this.#records.delete(rec);
    if (rec.spis.length > 0) this.#settings.persistence?.gone(rec.spis.at(-1)!, rec.shard);
    this.#metrics.ikeSaEvents.inc({ event: 'deleted', reason });
    this.#log.info({ spi: rec.spis.at(-1), peerId: rec.peerId, reason }, 'ike-sa-deleted');
    this.#updateGauges();
    this.#settings.observer?.ikeSaDeleted?.(rec.spis.at(-1) ?? '', reason);
  }

  #armTimer(rec: SaRecord, id: string, at: number): void {
    clearTimeout(rec.timers.get(id));
    const t = setTimeout(
      () => {
        rec.timers.delete(id);
        if (!this.#records.has(rec)) return;
        this.#step(rec, { kind: 'timer', id, now: Date.now() }, rec.path);
      },
      Math.max(0, at - Date.now()),
    );
    t.unref();
    rec.timers.set(id, t);
  }

  /** Runs a command on an SA from a local timer or the control API. */
  #command(rec: SaRecord, command: IkeSaCommand): void {
    if (!this.#records.has(rec)) return;
    this.#step(rec, { kind: 'command', command, now: Date.now() }, rec.path);
  }

  #localTimer(rec: SaRecord, id: string, delayMs: number, fn: () => void): void {
    clearTimeout(rec.timers.get(id));
    const t = setTimeout(() => {
      rec.timers.delete(id);
      if (this.#records.has(rec)) fn();
    }, delayMs);
    t.unref();
    rec.timers.set(id, t);
  }

  #rekeyDelayMs(lifetimeSeconds: number): number {
    const margin = Math.min(this.#settings.rekeyMarginSeconds, lifetimeSeconds / 2);
    // RFC 7296 §2.8: randomize so both ends do not rekey at once.
    return Math.max(1000, (lifetimeSeconds - margin * (0.5 + Math.random() * 0.5)) * 1000);
  }

  #armIkeRekey(rec: SaRecord): void {
    this.#localTimer(rec, 'local:ike-rekey', this.#rekeyDelayMs(this.#settings.ikeLifetimeSeconds), () =>
      this.#command(rec, { kind: 'rekey-ike' }),
    );
  }

  #armDpd(rec: SaRecord): void {
    const seconds = this.#settings.dpdSeconds;
    if (seconds <= 0) return;
    this.#localTimer(rec, 'local:dpd', seconds * 1000, () => {
      if (Date.now() - rec.lastInbound >= seconds * 1000) this.#command(rec, { kind: 'liveness' });
      this.#armDpd(rec);
    });
  }

  // --- child SAs and the data plane --------------------------------------------------------------

  #installChild(rec: SaRecord, a: InstallChildAction): void {
    // libs/esp takes one key material: the cipher key, then the integrity key (RFC 7296 §2.17 order).
    const keymat = (encr: Uint8Array, integ: Uint8Array) =>
      integ.length === 0 ? Uint8Array.from(encr) : new Uint8Array(Buffer.concat([encr, integ]));
    const inboundSpi = ipv4ToNumber(a.inboundSpi);
    const outboundSpi = ipv4ToNumber(a.outboundSpi);
    const child = this.#addChild(
      rec,
      {
        inboundSpi,
        outboundSpi,
        encryption: { id: a.encryption.id, keyBits: a.encryption.keyBits },
        ...(a.integrity ? { integrity: a.integrity } : {}),
        inKeys: a.weInitiated ? keymat(a.keys.encrR, a.keys.integR) : keymat(a.keys.encrI, a.keys.integI),
        outKeys: a.weInitiated ? keymat(a.keys.encrI, a.keys.integI) : keymat(a.keys.encrR, a.keys.integR),
        tsLocal: a.tsLocal,
        tsRemote: a.tsRemote,
        // Responder role: the VIP we assigned routes to this child. Initiator role: it is our own address.
        ...(a.virtualIp && rec.expectedPeerId === undefined ? { virtualIp: ipv4ToNumber(a.virtualIp) } : {}),
        seqOut: 0n,
        seqIn: 0n,
      },
      false,
    );
    child.timer = setTimeout(
      () => this.#command(rec, { kind: 'rekey-child', spi: child.inboundSpiBytes }),
      this.#rekeyDelayMs(this.#settings.childLifetimeSeconds),
    );
    child.timer.unref();
    this.#metrics.childSaEvents.inc({ event: 'installed' });
    this.#log.info(
      {
        spi: rec.spis.at(-1),
        peerId: rec.peerId,
        inboundSpi: inboundSpi.toString(16).padStart(8, '0'),
        outboundSpi: outboundSpi.toString(16).padStart(8, '0'),
        virtualIp: a.virtualIp ? ipv4Text(a.virtualIp) : undefined,
      },
      'child-sa-installed',
    );
    this.#updateGauges();
    this.#settings.observer?.childInstalled?.({
      ikeSpi: rec.spis.at(-1) ?? '',
      inboundSpi,
      ...(a.virtualIp && rec.expectedPeerId !== undefined ? { virtualIp: ipv4Text(a.virtualIp) } : {}),
      weInitiated: a.weInitiated,
      tsLocal: child.tsLocal,
      tsRemote: child.tsRemote,
    });
  }

  /** Builds the ESP SAs of a child and indexes it; `adopted` continues from a snapshot's counters. */
  #addChild(rec: SaRecord, c: ChildSnapshot, adopted: boolean): ChildRecord {
    const provider = this.#settings.provider;
    const alg = {
      encryption: c.encryption.id,
      keyBits: c.encryption.keyBits,
      ...(c.integrity ? { integrity: c.integrity } : {}),
    };
    const random = (n: number) => new Uint8Array(randomBytes(n));
    const child: ChildRecord = {
      encryption: c.encryption,
      ...(c.integrity ? { integrity: c.integrity } : {}),
      inKeys: c.inKeys,
      outKeys: c.outKeys,
      tsLocalRaw: c.tsLocal,
      tsRemoteRaw: c.tsRemote,
      inbound: new InboundSa({
        spi: c.inboundSpi,
        suite: espSuite(provider, alg, c.inKeys),
        ...(adopted ? { highestSequence: c.seqIn } : {}),
      }),
      outbound: new OutboundSa({
        spi: c.outboundSpi,
        suite: espSuite(provider, alg, c.outKeys),
        random,
        // RFC 6311 §4.3 spirit: never reuse a sequence number the old owner may have sent.
        ...(adopted ? { lastSequence: c.seqOut + TAKEOVER_SEQUENCE_MARGIN } : {}),
      }),
      sa: rec,
      inboundSpi: c.inboundSpi,
      outboundSpi: c.outboundSpi,
      inboundSpiBytes: Uint8Array.from([
        c.inboundSpi >>> 24,
        (c.inboundSpi >>> 16) & 255,
        (c.inboundSpi >>> 8) & 255,
        c.inboundSpi & 255,
      ]),
      tsRemote: ipv4Ranges(c.tsRemote),
      tsLocal: ipv4Ranges(c.tsLocal),
      ...(c.virtualIp !== undefined ? { virtualIp: c.virtualIp } : {}),
      installedAt: Date.now(),
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    rec.children.set(c.inboundSpi, child);
    this.#byEspSpi.set(c.inboundSpi, child);
    if (child.virtualIp !== undefined) {
      if (!this.#byVirtualIp.has(child.virtualIp))
        this.#settings.onVirtualIp?.(numberToIpv4(child.virtualIp), true);
      this.#byVirtualIp.set(child.virtualIp, child);
    } else this.#siteChildren.add(child);
    return child;
  }

  #removeChild(rec: SaRecord, inboundSpi: number, why: string): void {
    const child = rec.children.get(inboundSpi);
    if (!child) return;
    clearTimeout(child.timer);
    rec.children.delete(inboundSpi);
    if (this.#byEspSpi.get(inboundSpi) === child) this.#byEspSpi.delete(inboundSpi);
    if (child.virtualIp !== undefined && this.#byVirtualIp.get(child.virtualIp) === child) {
      // A rekey installs the new child before removing the old one: route to the newest left.
      this.#byVirtualIp.delete(child.virtualIp);
      for (const other of rec.children.values())
        if (other.virtualIp === child.virtualIp) this.#byVirtualIp.set(other.virtualIp, other);
      if (!this.#byVirtualIp.has(child.virtualIp))
        this.#settings.onVirtualIp?.(numberToIpv4(child.virtualIp), false);
    }
    this.#siteChildren.delete(child);
    this.#metrics.childSaEvents.inc({ event: 'removed' });
    this.#log.info(
      { spi: rec.spis.at(-1), peerId: rec.peerId, inboundSpi: inboundSpi.toString(16).padStart(8, '0'), why },
      'child-sa-removed',
    );
    this.#updateGauges();
  }

  #onEsp(frame: InboundFrame): void {
    const p = frame.bytes;
    if (p.length < 8) return this.#drop('esp', 'short');
    const spi = ipv4ToNumber(p);
    const child = this.#byEspSpi.get(spi);
    if (!child) return this.#drop('esp', 'unknown_spi');
    const r = child.inbound.decapsulate(p);
    if (r.kind !== 'inner') return this.#drop('esp', r.reason);
    const rec = child.sa;
    rec.lastInbound = Date.now();
    if (rec.path.connection !== frame.path.connection) {
      // An authenticated packet on a new path (RFC 9329 §6 reconnect, NAT rebinding): follow it.
      rec.path = frame.path;
      rec.ctx = withEndpoints(rec.ctx, frame.path);
      this.#dirty(rec);
    }
    // RFC 4301 §5.2: the inner source must be inside the child SA's remote selectors.
    if (r.nextHeader !== 4 || !packetMatches(r.packet, child.tsRemote, 'src'))
      return this.#drop('esp', 'ts_violation');
    child.packetsIn++;
    child.bytesIn += r.packet.length;
    this.#metrics.hot(this.#metrics.espPackets, 'in').inc();
    this.#metrics.hot(this.#metrics.espBytes, 'in').inc(r.packet.length);
    if (!this.#device) return this.#drop('esp', 'no_device');
    if (!this.#device.write(r.packet)) this.#drop('tun', 'write_failed');
  }

  /** An inner packet from the TUN device: find its child SA and send it as ESP. */
  fromDevice(packet: Uint8Array): void {
    if (packet.length < 20 || packet[0]! >> 4 !== 4)
      return this.#drop('tun', packet.length >= 1 && packet[0]! >> 4 === 6 ? 'ipv6_unsupported' : 'not_ipv4');
    const dst = ipv4ToNumber(packet, 16);
    let child = this.#byVirtualIp.get(dst);
    if (!child) {
      for (const c of this.#siteChildren) {
        if (packetMatches(packet, c.tsRemote, 'dst') && packetMatches(packet, c.tsLocal, 'src')) {
          child = c;
          break;
        }
      }
    }
    if (!child) return this.#drop('tun', 'no_route');
    const out = new Uint8Array(child.outbound.packetLength(packet.length));
    const r = child.outbound.encapsulate(packet, out);
    if (r.kind !== 'packet') {
      if (r.kind === 'rekey_required')
        this.#command(child.sa, { kind: 'rekey-child', spi: child.inboundSpiBytes });
      return this.#drop('esp-out', r.kind === 'drop' ? r.reason : 'rekey_required');
    }
    child.packetsOut++;
    child.bytesOut += packet.length;
    if (child.packetsOut % CHECKPOINT_EVERY_PACKETS === 0) this.#dirty(child.sa);
    this.#metrics.hot(this.#metrics.espPackets, 'out').inc();
    this.#metrics.hot(this.#metrics.espBytes, 'out').inc(packet.length);
    const sent = this.#edge.send({ kind: 'esp', path: child.sa.path, bytes: r.packet });
    if (sent !== 'sent') this.#drop('esp-out', sent);
  }

  #drop(layer: string, reason: string): void {
    this.#metrics.hot(this.#metrics.drops, layer, reason).inc();
  }

  #updateGauges(): void {
    let established = 0;
    for (const r of this.#records) if (r.state.status === 'established') established++;
    this.#metrics.ikeSas.set({ status: 'established' }, established);
    this.#metrics.ikeSas.set({ status: 'other' }, this.#records.size - established);
    this.#metrics.childSas.set(this.#byEspSpi.size);
  }

  // --- initiator ---------------------------------------------------------------------------------

  /** Starts an IKE SA toward a responder (RFC 7296 §1.2); returns our IKE SPI (hex). */
  initiate(o: InitiateOptions): string {
    const now = Date.now();
    const rec: SaRecord = {
      id: this.#nextId++,
      state: createIkeSa(o.path.transport === 'udp' ? 'udp' : 'tcp'),
      ctx: undefined as unknown as IkeSaContext,
      path: o.path,
      timers: new Map(),
      spis: [],
      allocated: new Set(),
      children: new Map(),
      shard: 0,
      lastInbound: now,
      createdAt: now,
      expectedPeerId: o.remoteId,
    };
    const { forPeer: _unused, ...base } = this.#context(rec, o.path);
    void _unused;
    rec.ctx = { ...base, policy: o.policy, psk: () => o.psk };
    this.#records.add(rec);
    this.#command(rec, { kind: 'initiate' });
    return rec.spis.at(-1) ?? '';
  }

  /**
   * The stream to the peer was re-established on `path` (RFC 9329 §6: the initiator reconnects
   * and retransmits every outstanding request on the new connection).
   */
  restore(spi: string, path: PeerPath): boolean {
    const rec = this.#byOurSpi.get(spi.toLowerCase());
    if (!rec) return false;
    rec.path = path;
    rec.ctx = withEndpoints(rec.ctx, path);
    this.#command(rec, { kind: 'connection-restored' });
    return true;
  }

  // --- write-through and takeover (issue #5) -----------------------------------------------------

  #dirty(rec: SaRecord): void {
    const spi = rec.spis.at(-1);
    if (spi !== undefined) this.#settings.persistence?.dirty(spi, rec.shard);
  }

  /** The storable form of the SA our SPI `spi` names (undefined if gone). */
  snapshot(spi: string): SaSnapshot | undefined {
    const rec = this.#byOurSpi.get(spi);
    if (!rec || !this.#records.has(rec)) return undefined;
    return {
      version: 1,
      spis: [...rec.spis],
      shard: rec.shard,
      state: rec.state,
      path: rec.path,
      ...(rec.peerId !== undefined ? { peerId: rec.peerId } : {}),
      ...(rec.peer ? { peerName: rec.peer.name } : {}),
      ...(rec.expectedPeerId !== undefined ? { expectedPeerId: rec.expectedPeerId } : {}),
      ...(rec.virtualIp ? { virtualIp: rec.virtualIp } : {}),
      ...(rec.poolKey ? { poolKey: rec.poolKey } : {}),
      ...(rec.establishedAt ? { establishedAt: rec.establishedAt } : {}),
      children: [...rec.children.values()].map((c) => ({
        inboundSpi: c.inboundSpi,
        outboundSpi: c.outboundSpi,
        encryption: c.encryption,
        ...(c.integrity ? { integrity: c.integrity } : {}),
        inKeys: c.inKeys,
        outKeys: c.outKeys,
        tsLocal: c.tsLocalRaw,
        tsRemote: c.tsRemoteRaw,
        ...(c.virtualIp !== undefined ? { virtualIp: c.virtualIp } : {}),
        seqOut: c.outbound.lastSequence,
        seqIn: c.inbound.highestSequence,
      })),
    };
  }

  /**
   * Takes over an SA another worker held (its shard's lease moved here): indexes it, rebuilds its
   * ESP SAs past the old owner's counters, re-arms its timers, and, when the peer supports it,
   * starts an RFC 6311 Message ID sync so a request the old owner answered but did not write
   * through cannot desynchronize the peer. The peer does not re-authenticate.
   */
  adopt(snap: SaSnapshot): boolean {
    if (snap.spis.some((h) => this.#byOurSpi.has(h))) return false;
    const now = Date.now();
    const rec: SaRecord = {
      id: this.#nextId++,
      state: snap.state,
      ctx: undefined as unknown as IkeSaContext,
      path: snap.path,
      timers: new Map(),
      spis: [],
      allocated: new Set(snap.spis),
      children: new Map(),
      shard: snap.shard,
      lastInbound: now,
      createdAt: now,
      ...(snap.peerId !== undefined ? { peerId: snap.peerId } : {}),
      ...(snap.virtualIp ? { virtualIp: snap.virtualIp } : {}),
      ...(snap.poolKey ? { poolKey: snap.poolKey } : {}),
      ...(snap.establishedAt ? { establishedAt: snap.establishedAt } : {}),
      ...(snap.expectedPeerId !== undefined ? { expectedPeerId: snap.expectedPeerId } : {}),
    };
    const base = this.#context(rec, snap.path);
    rec.ctx = snap.peerId !== undefined && base.forPeer ? base.forPeer(snap.peerId) : base;
    if (snap.virtualIp && rec.peer?.pool && rec.poolKey) rec.peer.pool.claim?.(rec.poolKey, snap.virtualIp);
    for (const h of snap.spis) this.#indexSpi(rec, h);
    this.#records.add(rec);
    for (const c of snap.children) this.#addChild(rec, c, true);
    for (const c of rec.children.values()) {
      c.timer = setTimeout(
        () => this.#command(rec, { kind: 'rekey-child', spi: c.inboundSpiBytes }),
        this.#rekeyDelayMs(this.#settings.childLifetimeSeconds),
      );
      c.timer.unref();
    }
    this.#armIkeRekey(rec);
    this.#armDpd(rec);
    this.#metrics.ikeSaEvents.inc({ event: 'adopted', reason: '' });
    this.#log.info(
      { spi: rec.spis.at(-1), peerId: rec.peerId, shard: rec.shard, children: rec.children.size },
      'ike-sa-adopted',
    );
    if (rec.state.status === 'established' && rec.state.peerMessageIdSync) {
      try {
        this.#command(rec, { kind: 'mid-sync' });
      } catch {
        // an exchange already outstanding: the sync is not needed then
      }
    }
    this.#updateGauges();
    return true;
  }

  /** Forgets every SA of `shard` without telling peers (its lease moved to another worker). */
  dropShard(shard: number): number {
    let n = 0;
    for (const rec of [...this.#records]) {
      if (rec.shard !== shard) continue;
      n++;
      for (const t of rec.timers.values()) clearTimeout(t);
      for (const c of rec.children.values()) {
        clearTimeout(c.timer);
        if (this.#byEspSpi.get(c.inboundSpi) === c) this.#byEspSpi.delete(c.inboundSpi);
        if (c.virtualIp !== undefined && this.#byVirtualIp.get(c.virtualIp) === c) {
          this.#byVirtualIp.delete(c.virtualIp);
          this.#settings.onVirtualIp?.(numberToIpv4(c.virtualIp), false);
        }
        this.#siteChildren.delete(c);
      }
      for (const h of rec.spis) if (this.#byOurSpi.get(h) === rec) this.#byOurSpi.delete(h);
      if (rec.halfOpenKey) this.#halfOpen.delete(rec.halfOpenKey);
      this.#records.delete(rec);
    }
    if (n > 0) this.#log.info({ shard, sas: n }, 'shard-dropped');
    this.#updateGauges();
    return n;
  }

  /** Our SPIs of the established SAs in `shard`. */
  sasInShard(shard: number): string[] {
    const out: string[] = [];
    for (const r of this.#records)
      if (r.shard === shard && r.state.status === 'established' && r.spis.length > 0)
        out.push(r.spis.at(-1)!);
    return out;
  }

  // --- control API -------------------------------------------------------------------------------

  list(): SaSummary[] {
    return [...this.#records].map((r) => this.#summary(r));
  }

  get(spi: string): SaSummary | undefined {
    const rec = this.#byOurSpi.get(spi.toLowerCase());
    return rec ? this.#summary(rec) : undefined;
  }

  /** Starts an exchange on the SA our SPI `spi` names; false if there is no such SA. */
  command(spi: string, command: 'delete' | 'rekey-ike' | 'rekey-children' | 'liveness'): boolean {
    const rec = this.#byOurSpi.get(spi.toLowerCase());
    if (!rec) return false;
    if (command === 'delete') this.#command(rec, { kind: 'delete-ike' });
    else if (command === 'rekey-ike') this.#command(rec, { kind: 'rekey-ike' });
    else if (command === 'liveness') this.#command(rec, { kind: 'liveness' });
    else
      for (const c of [...rec.children.values()])
        this.#command(rec, { kind: 'rekey-child', spi: c.inboundSpiBytes });
    return true;
  }

  #summary(r: SaRecord): SaSummary {
    return {
      spi: r.spis.at(-1) ?? '',
      status: r.state.status,
      ...(r.peerId !== undefined ? { peerId: r.peerId } : {}),
      ...(r.peer ? { peer: r.peer.name } : {}),
      shard: r.shard,
      transport: r.path.transport,
      remote: `${r.path.remote.address}:${r.path.remote.port}`,
      ...(r.virtualIp ? { virtualIp: ipv4Text(r.virtualIp) } : {}),
      ...(r.establishedAt ? { establishedAt: new Date(r.establishedAt).toISOString() } : {}),
      children: [...r.children.values()].map((c) => ({
        inboundSpi: c.inboundSpi.toString(16).padStart(8, '0'),
        outboundSpi: c.outboundSpi.toString(16).padStart(8, '0'),
        packetsIn: c.packetsIn,
        packetsOut: c.packetsOut,
        bytesIn: c.bytesIn,
        bytesOut: c.bytesOut,
      })),
    };
  }

  /** Sends DELETE for every SA (RFC 7296 §1.4.1) and stops taking frames. */
  async close(graceMs = 500): Promise<void> {
    for (const rec of [...this.#records])
      if (rec.state.status === 'established') this.#command(rec, { kind: 'delete-ike' });
    if (this.#records.size > 0) await new Promise((r) => setTimeout(r, graceMs).unref());
    this.#closed = true;
    for (const rec of this.#records) for (const t of rec.timers.values()) clearTimeout(t);
    for (const c of this.#byEspSpi.values()) clearTimeout(c.timer);
  }
}

function isZero(b: Uint8Array): boolean {
  for (const x of b) if (x !== 0) return false;
  return true;
}

function withEndpoints(ctx: IkeSaContext, path: PeerPath): IkeSaContext {
  return {
    ...ctx,
    local: { address: endpointBytes(path.local.address), port: path.local.port },
    remote: { address: endpointBytes(path.remote.address), port: path.remote.port },
  };
}
