/**
 * The worker's data plane: child SAs as ESP objects (libs/esp), indexed by inbound SPI, by the
 * virtual IP they carry (road warriors) and, for site-to-site children, by their selectors.
 *
 * - Inbound: an ESP frame is found by SPI, decapsulated (anti-replay before ICV, RFC 4303 §3.4.3),
 *   its inner source checked against the child's remote selectors (RFC 4301 §5.2) and written to
 *   the packet device. An authenticated packet on a new path is reported (the IKE SA follows it).
 * - Outbound: a packet from the device is matched by destination to a child and sent as ESP on the
 *   IKE SA's newest path. Sequence exhaustion asks for one rekey, not one per packet.
 * Drops are counted by reason, never thrown (STYLE.md rule 7).
 */
import { randomBytes } from 'node:crypto';
import type { EdgeLink, InboundFrame, PeerPath } from '@ikegate/cluster';
import {
  espShape,
  espSuite,
  type EspTransformIds,
  InboundSa,
  LocalUsageError,
  minimumEspLength,
  OutboundSa,
  skipTarget,
} from '@ikegate/esp';
import type { InstallChildAction, TrafficSelector } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import {
  type Ipv4Range,
  ipv4Ranges,
  ipv4Text,
  ipv4ToNumber,
  numberToIpv4,
  packetMatches,
  TS_IPV4_ADDR_RANGE,
} from './ipv4.js';
import { KeySlab } from './key-slab.js';
import { type ChildRecord, childOf, type SaRecord, spiOf, withChild, withoutChild } from './records.js';
import type { ChildSnapshot } from './snapshot.js';
import type { PacketDevice, WorkerSettings } from './types.js';

/** Outbound ESP sequence numbers skipped on takeover: more than are sent between checkpoints. */
export const TAKEOVER_SEQUENCE_MARGIN = 1n << 20n;
const CHECKPOINT_EVERY_PACKETS = 1 << 16;
/**
 * Inbound anti-replay survives a takeover only as far as its last checkpoint (issue #11): the new
 * owner refuses every sequence number at or below it. So the inbound high-water mark is written
 * through at most this many packets and this long after it moved; a replay of anything older is
 * refused after a takeover, and only the packets of the last interval stay exposed.
 */
export const INBOUND_CHECKPOINT_PACKETS = 1024n;
export const INBOUND_CHECKPOINT_MS = 250;
/**
 * RFC 6311 §4.3: with a peer that announced IPSEC_REPLAY_COUNTER_SYNC_SUPPORTED, the new owner
 * restarts its inbound windows this far past the stored checkpoint (far more than can arrive
 * between checkpoints, writes in flight included) and tells the peer to continue above it: then
 * nothing the failed owner accepted, checkpointed or not, can be replayed.
 */
export const REPLAY_SYNC_MARGIN = 1n << 20n;

/** Where an adopted SA's inbound windows restart when the peer syncs replay counters (§4.3). */
export function replaySyncPoint(children: readonly ChildSpec[]): { value: bigint; esn: boolean } {
  const esn = children.length > 0 && children.every((c) => c.esn === true);
  const max = esn ? 0xffff_ffff_ffff_ffffn : 0xffff_ffffn;
  let top = 0n;
  for (const c of children) if (c.seqIn > top) top = c.seqIn;
  const value = top + REPLAY_SYNC_MARGIN;
  return { value: value > max ? max : value, esn };
}

/** A child SA as stored and restored (snapshot.ts); `seqOut`/`seqIn` continue a taken-over SA. */
export type ChildSpec = ChildSnapshot;

export interface DataPlaneHooks {
  /** An authenticated ESP packet of `rec` came on `path`, not the SA's path. */
  readonly pathChanged: (rec: SaRecord, path: PeerPath) => void;
  /** The child's outbound sequence numbers are running out (asked once per child). */
  readonly rekeyNeeded: (rec: SaRecord, child: ChildRecord) => void;
  /** A checkpoint of the sequence numbers is due (write-through). */
  readonly checkpoint: (rec: SaRecord) => void;
  /** A child left the data plane (its counters are final). */
  readonly childGone?: (rec: SaRecord, child: ChildRecord) => void;
  /**
   * A cold child's state did not rebuild, so the data plane dropped it: the IKE SA should delete
   * it (RFC 7296 §1.4.1), or the peer keeps sending into an SPI that is gone.
   */
  readonly childLost?: (rec: SaRecord, child: ChildRecord) => void;
}

const random = (n: number) => new Uint8Array(randomBytes(n));

/** The negotiated transforms of a child, as @ikegate/esp takes them. */
function transformIds(child: ChildRecord): EspTransformIds {
  return {
    encryption: child.encryption.id,
    keyBits: child.encryption.keyBits,
    ...(child.integrity ? { integrity: child.integrity } : {}),
  };
}

/**
 * Cold children (issue #14, memory per SA): a child that carried no ESP packet between two visits
 * of the idle sweep lets its ESP objects go (two AEAD transforms, two key objects with their
 * native handles, the replay window: ~1 KB) and keeps its keys and sequence numbers in a slot of
 * a KeySlab; its next packet, either way, rebuilds them. The sweep visits every child once per
 * `coldChildAfterMs`, a share of them per tick, so a child goes cold after one to two of those of
 * silence, and no packet pays for it: the sweep compares the packet counters the child keeps anyway.
 * A new or adopted child starts cold (unless `coldChildAfterMs` is 0): its first packet builds it.
 *
 * Slot layout: the inbound highest sequence number (8 octets, big-endian), the outbound last one
 * (8), the shortest ESP packet the inbound SA opens (2), then the inbound and the outbound key
 * material (RFC 7296 §2.17 order each, same length).
 */
const SLOT_HEADER = 18;
/** The slot's two counters and the inbound minimum length. */
const counters = (slot: Uint8Array) => new DataView(slot.buffer, slot.byteOffset, SLOT_HEADER);
/** Default `coldChildAfterMs` (`dataplane.coldChildAfterSeconds`). */
export const DEFAULT_COLD_CHILD_AFTER_MS = 60_000;

/**
 * How many children the sweep visits per tick so that a pass over `size` children takes `afterMs`:
 * the fractions carry over, so a handful of children are visited once per pass too, not once per
 * tick (which would make them cold after two ticks).
 */
export class SweepQuota {
  #credit = 0;
  constructor(
    readonly tickMs: number,
    readonly afterMs: number,
  ) {}

  next(size: number): number {
    this.#credit = Math.min(this.#credit + (size * this.tickMs) / this.afterMs, size);
    const n = Math.floor(this.#credit);
    this.#credit -= n;
    return n;
  }
}

/** A child whose ESP objects are there (not cold). */
type HotChild = ChildRecord & { inbound: InboundSa; outbound: OutboundSa };

/** A child's keys (copies) and counters, as its snapshot holds them. */
export interface ChildEsp {
  readonly inKeys: Uint8Array;
  readonly outKeys: Uint8Array;
  readonly seqIn: bigint;
  readonly seqOut: bigint;
}

/**
 * The IPv4 ranges of a selector list, made once per list: child SAs whose selectors are the
 * policy's own (not narrowed) share the list, and so share its ranges (issue #14: memory per SA).
 */
const RANGES = new WeakMap<readonly TrafficSelector[], readonly Ipv4Range[]>();

function rangesOf(selectors: readonly TrafficSelector[]): readonly Ipv4Range[] {
  let r = RANGES.get(selectors);
  if (!r) RANGES.set(selectors, (r = ipv4Ranges(selectors)));
  return r;
}

/**
 * A road warrior's remote selectors: its virtual IP alone, any protocol, any port. The data plane
 * compares the inner source with the child's address instead of holding ranges of its own for it
 * (the list, its range and their cache entry: ~150 B per child; issue #14, memory per SA).
 */
const ITS_VIRTUAL_IP: readonly Ipv4Range[] = Object.freeze([]);

function remoteRangesOf(
  selectors: readonly TrafficSelector[],
  virtualIp: number | undefined,
): readonly Ipv4Range[] {
  const [s, more] = selectors;
  if (
    virtualIp !== undefined &&
    s !== undefined &&
    more === undefined &&
    s.tsType === TS_IPV4_ADDR_RANGE &&
    s.ipProtocol === 0 &&
    s.startPort === 0 &&
    s.endPort === 65535 &&
    s.startAddress.length === 4 &&
    s.endAddress.length === 4 &&
    ipv4ToNumber(s.startAddress) === virtualIp &&
    ipv4ToNumber(s.endAddress) === virtualIp
  )
    return ITS_VIRTUAL_IP;
  return rangesOf(selectors);
}

/** The IPv4 ranges of a child's remote selectors (made, for a road warrior, from its selectors). */
export function remoteRanges(child: ChildRecord): readonly Ipv4Range[] {
  return child.tsRemote === ITS_VIRTUAL_IP ? ipv4Ranges(child.tsRemoteRaw) : child.tsRemote;
}

/** Whether an inner packet's source is inside the child's remote selectors (RFC 4301 §5.2). */
function fromRemote(packet: Uint8Array, child: ChildRecord): boolean {
  if (child.tsRemote !== ITS_VIRTUAL_IP) return packetMatches(packet, child.tsRemote, 'src');
  return packet.length >= 20 && packet[0]! >> 4 === 4 && ipv4ToNumber(packet, 12) === child.virtualIp;
}

export class DataPlane {
  readonly #settings: WorkerSettings;
  readonly #edge: EdgeLink;
  /** See #espScratch. */
  #scratch: Uint8Array = Buffer.allocUnsafe(0);
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #hooks: DataPlaneHooks;
  readonly #clock: () => number;
  readonly #byEspSpi = new Map<number, ChildRecord>();
  readonly #byVirtualIp = new Map<number, ChildRecord>();
  readonly #siteChildren = new Set<ChildRecord>();
  /** Children whose inbound sequence moved since their last checkpoint (written on a timer). */
  readonly #seqDirty = new Set<ChildRecord>();
  #seqTimer: NodeJS.Timeout | undefined;
  #device: PacketDevice | undefined;
  /** Cold children's slots, one slab per slot size (key length). */
  readonly #slabs = new Map<number, KeySlab>();
  #coldCount = 0;
  /** Where the idle sweep goes on (a live iterator: children added later are visited too). */
  #sweepAt: Iterator<ChildRecord> | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  /** Children go cold when idle (`coldChildAfterMs` > 0); then a new one also starts cold. */
  readonly #coldFromStart: boolean;

  constructor(
    settings: WorkerSettings,
    edge: EdgeLink,
    log: Logger,
    metrics: Metrics,
    hooks: DataPlaneHooks,
    clock: () => number,
  ) {
    this.#settings = settings;
    this.#edge = edge;
    this.#log = log;
    this.#metrics = metrics;
    this.#hooks = hooks;
    this.#clock = clock;
    const after = settings.coldChildAfterMs ?? DEFAULT_COLD_CHILD_AFTER_MS;
    this.#coldFromStart = after > 0 && Number.isFinite(after);
    if (this.#coldFromStart) {
      // A share of the children per tick, so that one pass takes `after`: no tick freezes them all.
      const tick = Math.min(1000, Math.max(20, after / 10));
      const quota = new SweepQuota(tick, after);
      this.#sweepTimer = setInterval(() => this.sweepIdle(quota.next(this.#byEspSpi.size)), tick);
      this.#sweepTimer.unref();
    }
  }

  attachDevice(device: PacketDevice): void {
    this.#device = device;
  }

  get childCount(): number {
    return this.#byEspSpi.size;
  }

  /** Children held cold (their ESP objects let go). */
  get coldCount(): number {
    return this.#coldCount;
  }

  /** Whether an inbound SPI is in use here (SPI allocation avoids it). */
  hasSpi(spi: number): boolean {
    return this.#byEspSpi.has(spi);
  }

  // --- installing ----------------------------------------------------------------------------------

  /** A child SA the IKE SA negotiated (RFC 7296 §2.17 key order: cipher key, then integrity key). */
  install(rec: SaRecord, a: InstallChildAction): ChildRecord {
    // Both directions' keys, only while the ESP SAs import them: the child keeps no raw copy (its
    // snapshot exports them from the key objects, ha.ts), and the buffer is wiped below.
    const [inE, inI, outE, outI] = a.weInitiated
      ? [a.keys.encrR, a.keys.integR, a.keys.encrI, a.keys.integI]
      : [a.keys.encrI, a.keys.integI, a.keys.encrR, a.keys.integR];
    const inLength = inE.length + inI.length;
    const keys = new Uint8Array(inLength + outE.length + outI.length);
    keys.set(inE, 0);
    keys.set(inI, inE.length);
    keys.set(outE, inLength);
    keys.set(outI, inLength + outE.length);
    let child: ChildRecord;
    try {
      child = this.add(
        rec,
        {
          inboundSpi: ipv4ToNumber(a.inboundSpi),
          outboundSpi: ipv4ToNumber(a.outboundSpi),
          // The negotiated suite's object, shared by every child of that suite (proposals.ts internSuite).
          encryption: a.encryption,
          ...(a.integrity ? { integrity: a.integrity } : {}),
          esn: a.esn,
          inKeys: keys.subarray(0, inLength),
          outKeys: keys.subarray(inLength),
          tsLocal: a.tsLocal,
          tsRemote: a.tsRemote,
          // Responder role: the VIP we assigned routes to this child. Initiator role: it is our own address.
          ...(a.virtualIp && rec.expectedPeerId === undefined
            ? { virtualIp: ipv4ToNumber(a.virtualIp) }
            : {}),
          seqOut: 0n,
          seqIn: 0n,
        },
        false,
      );
    } finally {
      keys.fill(0);
    }
    this.#metrics.childSaEvents.inc({ event: 'installed' });
    this.#log.info(
      {
        spi: spiOf(rec),
        peerId: rec.peerId,
        inboundSpi: hex32(child.inboundSpi),
        outboundSpi: hex32(child.outboundSpi),
        virtualIp: a.virtualIp ? ipv4Text(a.virtualIp) : undefined,
        replaces: a.replaces ? hex32(ipv4ToNumber(a.replaces)) : undefined,
      },
      'child-sa-installed',
    );
    return child;
  }

  /**
   * Indexes a child, its ESP SAs built or (children going cold) its keys in a slot; `adopted`
   * continues from a snapshot's counters. A child already holding the inbound SPI is removed first
   * (its slot zeroed and given back); SPI allocation and adoption avoid that case.
   */
  add(rec: SaRecord, c: ChildSpec, adopted: boolean): ChildRecord {
    const previous = this.#byEspSpi.get(c.inboundSpi);
    if (previous) this.remove(previous.sa, previous.inboundSpi, 'replaced');
    // Every field in the literal, none spread in: spread fields land outside the object in a
    // separate array (issue #14, memory per SA). Absent optional fields are `undefined`.
    const child: ChildRecord = {
      encryption: c.encryption,
      integrity: c.integrity || undefined,
      esn: c.esn ?? false,
      tsLocalRaw: c.tsLocal,
      tsRemoteRaw: c.tsRemote,
      inbound: undefined,
      outbound: undefined,
      coldSlab: undefined,
      coldSlot: -1,
      sweptPackets: -1,
      sa: rec,
      inboundSpi: c.inboundSpi,
      outboundSpi: c.outboundSpi,
      tsRemote: remoteRangesOf(c.tsRemote, c.virtualIp),
      tsLocal: rangesOf(c.tsLocal),
      virtualIp: c.virtualIp,
      rekeyRequested: false,
      checkpointedIn: adopted ? c.seqIn : 0n,
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    // A new child starts at 0 both ways; an adopted one continues past what the old owner used
    // (RFC 6311 §4.3 spirit: never reuse a sequence number the old owner may have sent).
    const seqIn = adopted ? c.seqIn : 0n;
    const seqOut = adopted ? c.seqOut + TAKEOVER_SEQUENCE_MARGIN : 0n;
    if (this.#coldFromStart) {
      // Cold from the start (issue #14): its ESP objects (two key imports, ~35 us, and ~1 KB) are
      // made by its first packet, so an SA that stays idle, or a shard taken over, never pays for
      // them. The suite and the key lengths are checked now, as a build would.
      const shape = espShape(this.#settings.provider, transformIds(child));
      if (c.inKeys.length !== shape.keyLength || c.outKeys.length !== shape.keyLength)
        throw new LocalUsageError(
          'IKEGATE_ERR_ESP_BAD_KEY_LENGTH',
          `ESP key material must be ${shape.keyLength} octets each way, got ${c.inKeys.length} and ${c.outKeys.length}`,
        );
      this.#keepCold(child, c.inKeys, c.outKeys, seqIn, seqOut, minimumEspLength(shape));
    } else this.#build(child, c.inKeys, c.outKeys, seqIn, seqOut);
    rec.children = withChild(rec.children, child);
    this.#byEspSpi.set(c.inboundSpi, child);
    if (child.virtualIp !== undefined) {
      if (!this.#byVirtualIp.has(child.virtualIp))
        this.#settings.onVirtualIp?.(numberToIpv4(child.virtualIp), true);
      this.#byVirtualIp.set(child.virtualIp, child);
    } else this.#siteChildren.add(child);
    this.#metrics.childSas.set(this.#byEspSpi.size);
    return child;
  }

  /** Makes the child's ESP SAs from its keys and counters (a new, adopted or cold child). */
  #build(
    child: ChildRecord,
    inKeys: Uint8Array,
    outKeys: Uint8Array,
    seqIn: bigint,
    seqOut: bigint,
  ): HotChild {
    const provider = this.#settings.provider;
    const alg = transformIds(child);
    const esn = child.esn;
    child.inbound = new InboundSa({
      spi: child.inboundSpi,
      suite: espSuite(provider, alg, inKeys),
      esn,
      // Everything at or below it counts as seen (replay.ts): a cold child forgot which packets
      // inside its window it had, so it refuses them all; they are at least an idle period old.
      highestSequence: seqIn,
    });
    child.outbound = new OutboundSa({
      spi: child.outboundSpi,
      suite: espSuite(provider, alg, outKeys),
      esn,
      random,
      // Exactly where it stopped: the AEAD nonce is the sequence number (RFC 4106 §3.1).
      lastSequence: seqOut,
    });
    return child as HotChild;
  }

  /**
   * The child's ESP SAs, rebuilt if it is cold; undefined if its slot does not rebuild (then the
   * child is removed, logged as `esp-state-unreadable`).
   */
  #hot(child: ChildRecord): HotChild | undefined {
    if (child.inbound !== undefined) return child as HotChild;
    const slab = child.coldSlab!;
    const slot = child.coldSlot;
    const v = slab.view(slot);
    const k = (v.length - SLOT_HEADER) / 2;
    const view = counters(v);
    child.coldSlab = undefined;
    child.coldSlot = -1;
    this.#coldCount--;
    this.#metrics.espColdChildren.set(this.#coldCount);
    this.#metrics.espChildThaws.inc();
    try {
      return this.#build(
        child,
        v.subarray(SLOT_HEADER, SLOT_HEADER + k),
        v.subarray(SLOT_HEADER + k),
        view.getBigUint64(0),
        view.getBigUint64(8),
      );
    } catch (e) {
      child.inbound = undefined;
      child.outbound = undefined;
      this.#log.error(
        { spi: spiOf(child.sa), inboundSpi: hex32(child.inboundSpi), err: e },
        'esp-state-unreadable',
      );
      if (this.remove(child.sa, child.inboundSpi, 'esp-state-unreadable'))
        this.#hooks.childLost?.(child.sa, child);
      return undefined;
    } finally {
      slab.release(slot); // zeroed: it held the keys
    }
  }

  /** Lets the child's ESP objects go, its keys and counters kept in a slot. */
  #freeze(child: HotChild): void {
    const inKeys = child.inbound.exportKeyMaterial();
    const outKeys = child.outbound.exportKeyMaterial();
    try {
      if (inKeys.length !== outKeys.length) return; // one suite both ways: cannot happen; stays hot
      const { highestSequence, minimumLength } = child.inbound;
      this.#keepCold(child, inKeys, outKeys, highestSequence, child.outbound.lastSequence, minimumLength);
      (child as ChildRecord).inbound = undefined;
      (child as ChildRecord).outbound = undefined;
    } finally {
      inKeys.fill(0);
      outKeys.fill(0);
    }
  }

  /** Copies a child's keys and counters into a slot of the slab of their size: it is cold now. */
  #keepCold(
    child: ChildRecord,
    inKeys: Uint8Array,
    outKeys: Uint8Array,
    seqIn: bigint,
    seqOut: bigint,
    minimumLength: number,
  ): void {
    const size = SLOT_HEADER + 2 * inKeys.length;
    let slab = this.#slabs.get(size);
    if (!slab) this.#slabs.set(size, (slab = new KeySlab(size)));
    const slot = slab.alloc();
    const v = slab.view(slot);
    const view = counters(v);
    view.setBigUint64(0, seqIn);
    view.setBigUint64(8, seqOut);
    view.setUint16(16, minimumLength);
    v.set(inKeys, SLOT_HEADER);
    v.set(outKeys, SLOT_HEADER + inKeys.length);
    child.coldSlab = slab;
    child.coldSlot = slot;
    this.#coldCount++;
    this.#metrics.espColdChildren.set(this.#coldCount);
  }

  /**
   * The idle sweep: visits up to `visits` children (each at most once per call), going on where
   * the last call stopped; one that carried no packet since its last visit goes cold. Returns how
   * many went cold.
   */
  sweepIdle(visits: number): number {
    const n = Math.min(visits, this.#byEspSpi.size);
    let frozen = 0;
    for (let i = 0; i < n; i++) {
      let next = this.#sweepAt?.next();
      if (next === undefined || next.done === true) {
        this.#sweepAt = this.#byEspSpi.values();
        next = this.#sweepAt.next();
        if (next.done === true) break;
      }
      const child = next.value;
      const seen = child.packetsIn + child.packetsOut;
      if (seen === child.sweptPackets && child.inbound !== undefined) {
        this.#freeze(child as HotChild);
        frozen++;
      }
      child.sweptPackets = seen;
    }
    return frozen;
  }

  /**
   * The child's keys (copies, RFC 7296 §2.17 order) and counters, for its snapshot: read from the
   * slot of a cold child, which stays cold (a checkpoint must not rebuild it).
   */
  exportEsp(child: ChildRecord): ChildEsp {
    if (child.inbound !== undefined && child.outbound !== undefined)
      return {
        inKeys: child.inbound.exportKeyMaterial(),
        outKeys: child.outbound.exportKeyMaterial(),
        seqIn: child.inbound.highestSequence,
        seqOut: child.outbound.lastSequence,
      };
    const v = child.coldSlab!.view(child.coldSlot);
    const k = (v.length - SLOT_HEADER) / 2;
    const view = counters(v);
    return {
      inKeys: v.slice(SLOT_HEADER, SLOT_HEADER + k),
      outKeys: v.slice(SLOT_HEADER + k),
      seqIn: view.getBigUint64(0),
      seqOut: view.getBigUint64(8),
    };
  }

  /** Takes a child out of the data plane; `why` is logged. Returns whether it was there. */
  remove(rec: SaRecord, inboundSpi: number, why: string, quiet = false): boolean {
    const child = childOf(rec, inboundSpi);
    if (!child) return false;
    rec.children = withoutChild(rec.children, child);
    if (this.#byEspSpi.get(inboundSpi) === child) this.#byEspSpi.delete(inboundSpi);
    this.#seqDirty.delete(child);
    if (child.virtualIp !== undefined && this.#byVirtualIp.get(child.virtualIp) === child) {
      // A rekey installs the new child before removing the old one: route to the newest left.
      this.#byVirtualIp.delete(child.virtualIp);
      for (const other of rec.children)
        if (other.virtualIp === child.virtualIp) this.#byVirtualIp.set(other.virtualIp, other);
      if (!this.#byVirtualIp.has(child.virtualIp))
        this.#settings.onVirtualIp?.(numberToIpv4(child.virtualIp), false);
    }
    this.#siteChildren.delete(child);
    this.#metrics.childSas.set(this.#byEspSpi.size);
    this.#hooks.childGone?.(rec, child);
    // Last, once the child is out of every index: release refuses a slot not in use (a bug).
    const slab = child.coldSlab;
    if (slab !== undefined) {
      child.coldSlab = undefined;
      this.#coldCount--;
      this.#metrics.espColdChildren.set(this.#coldCount);
      slab.release(child.coldSlot); // zeroed: it held the keys
      child.coldSlot = -1;
    }
    if (quiet) return true;
    this.#metrics.childSaEvents.inc({ event: 'removed' });
    this.#log.info(
      { spi: spiOf(rec), peerId: rec.peerId, inboundSpi: hex32(inboundSpi), why },
      'child-sa-removed',
    );
    return true;
  }

  // --- packets -------------------------------------------------------------------------------------

  /** An ESP frame from an edge. */
  inbound(frame: InboundFrame): void {
    const p = frame.bytes;
    if (p.length < 8) return this.#drop('esp', 'short');
    const child = this.#byEspSpi.get(ipv4ToNumber(p));
    if (!child) return this.#drop('esp', 'unknown_spi');
    // A replay (or a packet in flight since before it went cold) is refused without a rebuild: a
    // cold child counts everything at or below its highest sequence number as seen (RFC 4303
    // §3.4.3; with ESN the high half would be inferred first, so that case rebuilds).
    // So is a frame too short to open: junk or a forgery must not make it build the SA first.
    if (child.coldSlab !== undefined) {
      const cold = counters(child.coldSlab.view(child.coldSlot));
      if (p.length < cold.getUint16(16)) return this.#drop('esp', 'short');
      if (!child.esn && ipv4ToNumber(p, 4) <= Number(cold.getBigUint64(0)))
        return this.#drop('esp', 'replay');
    }
    const inbound = child.inbound ?? this.#hot(child)?.inbound;
    if (!inbound) return this.#drop('esp', 'cold_state');
    const r = inbound.decapsulate(p);
    if (r.kind !== 'inner') return this.#drop('esp', r.reason);
    const rec = child.sa;
    rec.lastEspInbound = this.#clock();
    // An authenticated packet on a new path (RFC 9329 §6 reconnect, NAT rebinding): the SA follows.
    if (rec.path.connection !== frame.path.connection) this.#hooks.pathChanged(rec, frame.path);
    // RFC 4301 §5.2: the inner source must be inside the child SA's remote selectors.
    if (r.nextHeader !== 4 || !fromRemote(r.packet, child)) return this.#drop('esp', 'ts_violation');
    child.packetsIn++;
    child.bytesIn += r.packet.length;
    this.#inboundMoved(child, inbound.highestSequence);
    this.#metrics.hot(this.#metrics.espPackets, 'in').inc();
    this.#metrics.hot(this.#metrics.espBytes, 'in').inc(r.packet.length);
    if (!this.#device) return this.#drop('esp', 'no_device');
    if (!this.#device.write(r.packet)) this.#drop('tun', 'write_failed');
  }

  /**
   * An inner packet from the device: find its child SA and send it as ESP. `packet` is only read
   * during the call. The ESP packet sent (`OutboundFrame.bytes`) belongs to the edge link from
   * then on: this class never writes to it again, so the link may keep it (queue, async send).
   */
  outbound(packet: Uint8Array): void {
    if (packet.length < 20 || packet[0]! >> 4 !== 4)
      return this.#drop('tun', packet.length >= 1 && packet[0]! >> 4 === 6 ? 'ipv6_unsupported' : 'not_ipv4');
    let child = this.#byVirtualIp.get(ipv4ToNumber(packet, 16));
    if (!child) {
      for (const c of this.#siteChildren) {
        if (packetMatches(packet, c.tsRemote, 'dst') && packetMatches(packet, c.tsLocal, 'src')) {
          child = c;
          break;
        }
      }
    }
    if (!child) return this.#drop('tun', 'no_route');
    const esp = child.outbound ?? this.#hot(child)?.outbound;
    if (!esp) return this.#drop('esp-out', 'cold_state');
    // Ownership: the ESP packet is handed to the edge link, and the link may keep it past send()
    // (dgram holds a datagram until its send completes, a relay or a test link queues frames), so
    // it cannot be a buffer reused for the next packet, unless the link says it copies it
    // (espCopied: a stream). Otherwise a fresh allocation, but without the zero-fill (every octet
    // up to the packet's end is written by encapsulate; the view handed on ends there) and, below
    // 4 KiB, a slice of node's buffer pool rather than an ArrayBuffer each.
    const espLength = esp.packetLength(packet.length);
    if (this.#edge.espCongested?.(child.sa.path, espLength)) return this.#drop('esp-out', 'congested');
    const out = this.#edge.espCopied?.(child.sa.path)
      ? this.#espScratch(espLength)
      : Buffer.allocUnsafe(espLength);
    const r = esp.encapsulate(packet, out);
    if (r.kind !== 'packet') {
      if (r.kind === 'rekey_required' && !child.rekeyRequested) {
        child.rekeyRequested = true;
        this.#hooks.rekeyNeeded(child.sa, child);
      }
      return this.#drop('esp-out', r.kind === 'drop' ? r.reason : 'rekey_required');
    }
    child.packetsOut++;
    child.bytesOut += packet.length;
    if (child.packetsOut % CHECKPOINT_EVERY_PACKETS === 0) this.#hooks.checkpoint(child.sa);
    this.#metrics.hot(this.#metrics.espPackets, 'out').inc();
    this.#metrics.hot(this.#metrics.espBytes, 'out').inc(packet.length);
    const sent = this.#edge.send({ kind: 'esp', path: child.sa.path, bytes: r.packet });
    if (sent !== 'sent') this.#drop('esp-out', sent);
  }

  /**
   * A buffer of at least `length` octets reused for every outbound ESP packet whose link copies it
   * before `send` returns (EdgeLink.espCopied: RFC 9329 streams): no allocation per packet there.
   * Grown to the largest packet seen (at most a 65535-octet inner packet plus ESP overhead).
   */
  #espScratch(length: number): Uint8Array {
    if (this.#scratch.length < length) this.#scratch = Buffer.allocUnsafe(Math.max(length, 2048));
    return this.#scratch;
  }

  /**
   * RFC 6311 §4.3, peer side: the cluster restarted its inbound windows at `counter`; every
   * outbound child of `rec` continues above it. Returns how many counters moved.
   */
  skipOutbound(rec: SaRecord, counter: bigint): number {
    let moved = 0;
    for (const child of rec.children) {
      if (child.outbound !== undefined) {
        if (child.outbound.skipTo(counter)) moved++;
        continue;
      }
      // A cold child's counter moves in its slot, as OutboundSa.skipTo's would: nothing is built.
      const view = counters(child.coldSlab!.view(child.coldSlot));
      const target = skipTarget(view.getBigUint64(8), counter, child.esn);
      if (target !== undefined) {
        view.setBigUint64(8, target);
        moved++;
      }
    }
    return moved;
  }

  /** Schedules (or, past INBOUND_CHECKPOINT_PACKETS, writes at once) the inbound high-water mark. */
  #inboundMoved(child: ChildRecord, highest: bigint): void {
    if (highest - child.checkpointedIn >= INBOUND_CHECKPOINT_PACKETS) {
      this.#seqDirty.delete(child);
      return this.#checkpointInbound(child);
    }
    if (this.#seqDirty.has(child)) return;
    this.#seqDirty.add(child);
    if (this.#seqTimer) return;
    this.#seqTimer = setTimeout(() => {
      this.#seqTimer = undefined;
      const due = [...this.#seqDirty];
      this.#seqDirty.clear();
      for (const c of due) if (childOf(c.sa, c.inboundSpi) === c) this.#checkpointInbound(c);
    }, INBOUND_CHECKPOINT_MS);
    this.#seqTimer.unref();
  }

  #checkpointInbound(child: ChildRecord): void {
    // A child can go cold while its checkpoint waits (visits less than INBOUND_CHECKPOINT_MS apart).
    child.checkpointedIn =
      child.inbound?.highestSequence ?? counters(child.coldSlab!.view(child.coldSlot)).getBigUint64(0);
    this.#hooks.checkpoint(child.sa);
  }

  /** Stops the checkpoint timer (the worker is closing). */
  stop(): void {
    clearTimeout(this.#seqTimer);
    this.#seqTimer = undefined;
    this.#seqDirty.clear();
    clearInterval(this.#sweepTimer);
    this.#sweepTimer = undefined;
  }

  #drop(layer: string, reason: string): void {
    this.#metrics.hot(this.#metrics.drops, layer, reason).inc();
  }
}

export function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
