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
import { espSuite, InboundSa, OutboundSa } from '@ikegate/esp';
import type { InstallChildAction, TrafficSelector } from '@ikegate/ikev2';
import type { Logger, Metrics } from '@ikegate/telemetry';
import { type Ipv4Range, ipv4Ranges, ipv4Text, ipv4ToNumber, numberToIpv4, packetMatches } from './ipv4.js';
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
}

const random = (n: number) => new Uint8Array(randomBytes(n));

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
  }

  attachDevice(device: PacketDevice): void {
    this.#device = device;
  }

  get childCount(): number {
    return this.#byEspSpi.size;
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

  /** Builds the ESP SAs of a child and indexes it; `adopted` continues from a snapshot's counters. */
  add(rec: SaRecord, c: ChildSpec, adopted: boolean): ChildRecord {
    const provider = this.#settings.provider;
    const alg = {
      encryption: c.encryption.id,
      keyBits: c.encryption.keyBits,
      ...(c.integrity ? { integrity: c.integrity } : {}),
    };
    const esn = c.esn ?? false;
    // Every field in the literal, none spread in: spread fields land outside the object in a
    // separate array (issue #14, memory per SA). Absent optional fields are `undefined`.
    const child: ChildRecord = {
      encryption: c.encryption,
      integrity: c.integrity || undefined,
      esn,
      tsLocalRaw: c.tsLocal,
      tsRemoteRaw: c.tsRemote,
      inbound: new InboundSa({
        spi: c.inboundSpi,
        suite: espSuite(provider, alg, c.inKeys),
        esn,
        ...(adopted ? { highestSequence: c.seqIn } : {}),
      }),
      outbound: new OutboundSa({
        spi: c.outboundSpi,
        suite: espSuite(provider, alg, c.outKeys),
        esn,
        random,
        // RFC 6311 §4.3 spirit: never reuse a sequence number the old owner may have sent.
        ...(adopted ? { lastSequence: c.seqOut + TAKEOVER_SEQUENCE_MARGIN } : {}),
      }),
      sa: rec,
      inboundSpi: c.inboundSpi,
      outboundSpi: c.outboundSpi,
      tsRemote: rangesOf(c.tsRemote),
      tsLocal: rangesOf(c.tsLocal),
      virtualIp: c.virtualIp,
      rekeyRequested: false,
      checkpointedIn: adopted ? c.seqIn : 0n,
      packetsIn: 0,
      packetsOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
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

  /** Takes a child out of the data plane; `why` is logged. Returns whether it was there. */
  remove(rec: SaRecord, inboundSpi: number, why: string, quiet = false): boolean {
    const child = childOf(rec, inboundSpi);
    if (!child) return false;
    rec.children = withoutChild(rec.children, child);
    if (this.#byEspSpi.get(inboundSpi) === child) this.#byEspSpi.delete(inboundSpi);
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
    const r = child.inbound.decapsulate(p);
    if (r.kind !== 'inner') return this.#drop('esp', r.reason);
    const rec = child.sa;
    rec.lastEspInbound = this.#clock();
    // An authenticated packet on a new path (RFC 9329 §6 reconnect, NAT rebinding): the SA follows.
    if (rec.path.connection !== frame.path.connection) this.#hooks.pathChanged(rec, frame.path);
    // RFC 4301 §5.2: the inner source must be inside the child SA's remote selectors.
    if (r.nextHeader !== 4 || !packetMatches(r.packet, child.tsRemote, 'src'))
      return this.#drop('esp', 'ts_violation');
    child.packetsIn++;
    child.bytesIn += r.packet.length;
    this.#inboundMoved(child);
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
    // Ownership: the ESP packet is handed to the edge link, and the link may keep it past send()
    // (dgram holds a datagram until its send completes, a relay or a test link queues frames), so
    // it cannot be a buffer reused for the next packet, unless the link says it copies it
    // (espCopied: a stream). Otherwise a fresh allocation, but without the zero-fill (every octet
    // up to the packet's end is written by encapsulate; the view handed on ends there) and, below
    // 4 KiB, a slice of node's buffer pool rather than an ArrayBuffer each.
    const espLength = child.outbound.packetLength(packet.length);
    if (this.#edge.espCongested?.(child.sa.path, espLength)) return this.#drop('esp-out', 'congested');
    const out = this.#edge.espCopied?.(child.sa.path)
      ? this.#espScratch(espLength)
      : Buffer.allocUnsafe(espLength);
    const r = child.outbound.encapsulate(packet, out);
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
    for (const child of rec.children) if (child.outbound.skipTo(counter)) moved++;
    return moved;
  }

  /** Schedules (or, past INBOUND_CHECKPOINT_PACKETS, writes at once) the inbound high-water mark. */
  #inboundMoved(child: ChildRecord): void {
    if (child.inbound.highestSequence - child.checkpointedIn >= INBOUND_CHECKPOINT_PACKETS) {
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
    child.checkpointedIn = child.inbound.highestSequence;
    this.#hooks.checkpoint(child.sa);
  }

  /** Stops the checkpoint timer (the worker is closing). */
  stop(): void {
    clearTimeout(this.#seqTimer);
    this.#seqTimer = undefined;
    this.#seqDirty.clear();
  }

  #drop(layer: string, reason: string): void {
    this.#metrics.hot(this.#metrics.drops, layer, reason).inc();
  }
}

export function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}
