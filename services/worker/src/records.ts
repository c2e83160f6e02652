/**
 * The worker's own record of each IKE SA and child SA, beside the protocol state the IKE endpoint
 * keeps (`SaEntry.state`): the peer's newest path as the edge names it, the matched peer and its
 * pool address, and the child SAs' ESP objects and counters.
 */
import type { PeerPath } from '@ikegate/cluster';
import type { InboundSa, OutboundSa } from '@ikegate/esp';
import type { SaEntry, TrafficSelector } from '@ikegate/ikev2';
import type { Ipv4Range } from './ipv4.js';
import type { KeySlab } from './key-slab.js';
import type { PeerSettings } from './types.js';

export interface ChildRecord {
  readonly encryption: { readonly id: number; readonly keyBits: number };
  readonly integrity: number | undefined;
  readonly esn: boolean;
  readonly tsLocalRaw: readonly TrafficSelector[];
  readonly tsRemoteRaw: readonly TrafficSelector[];
  /**
   * The ESP SAs, or undefined while the child is cold (idle: its keys and sequence numbers are in
   * `coldSlab` at `coldSlot`). Only the data plane reads them; it rebuilds a cold child first.
   */
  inbound: InboundSa | undefined;
  outbound: OutboundSa | undefined;
  coldSlab: KeySlab | undefined;
  coldSlot: number;
  /** packetsIn + packetsOut at the idle sweep's last visit (-1 before the first). */
  sweptPackets: number;
  readonly sa: SaRecord;
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  readonly tsRemote: readonly Ipv4Range[];
  readonly tsLocal: readonly Ipv4Range[];
  readonly virtualIp: number | undefined;
  /** Set once the outbound sequence ran out and a rekey was asked for (asked once, not per packet). */
  rekeyRequested: boolean;
  /** The inbound sequence number the last checkpoint wrote (data-plane.ts, inbound checkpoints). */
  checkpointedIn: bigint;
  packetsIn: number;
  packetsOut: number;
  bytesIn: number;
  bytesOut: number;
}

export interface SaRecord {
  /** The endpoint's SA (protocol state, SPIs); set right after the record is made. */
  entry: SaEntry<SaRecord>;
  readonly id: number;
  readonly shard: number;
  /** The newest authenticated path to the peer, as the edge names it: IKE requests and ESP go there. */
  path: PeerPath;
  /**
   * The child SAs (by inbound SPI: childOf), usually one: an array of its own length, replaced on
   * every change. A Map cost 190 B per SA for one child (issue #14, memory per SA).
   */
  children: readonly ChildRecord[];
  peer?: PeerSettings;
  peerId?: string;
  virtualIp?: Uint8Array;
  poolKey?: string;
  /** Initiator: the identity the responder must authenticate as. */
  expectedPeerId?: string;
  /** Last authenticated inbound ESP (ms on the worker clock): liveness without IKE traffic. */
  lastEspInbound?: number;
  readonly createdAt: number;
  establishedAt?: number;
  /** IKE messages waiting for the SA's state to reach the store, in order (write-ahead). */
  heldSends?: Promise<void>;
  heldCount?: number;
}

/** The child list of a record that has none yet (shared; frozen, as every list is replaced, never changed). */
export const NO_CHILDREN: readonly ChildRecord[] = Object.freeze([]);

/** The child SA of `rec` with our inbound SPI `inboundSpi`, if any. */
export function childOf(rec: SaRecord, inboundSpi: number): ChildRecord | undefined {
  for (const c of rec.children) if (c.inboundSpi === inboundSpi) return c;
  return undefined;
}

/**
 * `list` with `child` in place of the one with its inbound SPI (as Map.set: same place), else at
 * the end; an array of its own length (`[...list, child]` leaves room for 16 more).
 */
export function withChild(list: readonly ChildRecord[], child: ChildRecord): readonly ChildRecord[] {
  return list.some((c) => c.inboundSpi === child.inboundSpi)
    ? list.map((c) => (c.inboundSpi === child.inboundSpi ? child : c))
    : list.concat([child]);
}

/** `list` without `child` (NO_CHILDREN when none is left). */
export function withoutChild(list: readonly ChildRecord[], child: ChildRecord): readonly ChildRecord[] {
  const rest = list.filter((c) => c !== child);
  return rest.length === 0 ? NO_CHILDREN : rest;
}

/** Our newest IKE SPI (hex) of a record: what the API, the store and the logs name it by. */
export function spiOf(rec: SaRecord): string {
  return rec.entry.spis[0] ?? '';
}
