/**
 * What a worker writes to the store for one IKE SA, and reads back on takeover: the state
 * machine's plain-data state, the peer's newest path (through which edge), the matched peer and
 * virtual IP, and every child SA with its ESP keys and sequence checkpoints. JSON with octets as
 * {"$u8": hex} and 64-bit counters as {"$big": decimal}; the store seals it with the KEK.
 * Octets as {"$b": base64} (a third smaller per SA, issue #14) are read too, but not written yet:
 * a worker of an earlier release reads only hex and would take a base64 snapshot for garbage
 * during a rolling upgrade. Writing base64 is for the release after every worker reads it.
 */
import type { PeerPath } from '@ikegate/cluster';
import type { IkeSaState, TrafficSelector } from '@ikegate/ikev2';

export interface ChildSnapshot {
  readonly inboundSpi: number;
  readonly outboundSpi: number;
  readonly encryption: { readonly id: number; readonly keyBits: number };
  readonly integrity?: number;
  /** RFC 4303 extended sequence numbers (absent: no ESN). */
  readonly esn?: boolean;
  readonly inKeys: Uint8Array;
  readonly outKeys: Uint8Array;
  readonly tsLocal: readonly TrafficSelector[];
  readonly tsRemote: readonly TrafficSelector[];
  readonly virtualIp?: number;
  /** Outbound sequence number when written; a new owner continues well past it (RFC 6311 §4.3). */
  readonly seqOut: bigint;
  /** Highest inbound sequence number seen; the new owner's replay window starts there. */
  readonly seqIn: bigint;
}

/**
 * Version 2: the IKE SA state of the endpoint/task-manager engine (deadlines and paths inside the
 * state). Version 1 snapshots (the earlier engine) are refused with a clear error.
 */
export interface SaSnapshot {
  readonly version: 2;
  readonly spis: readonly string[];
  readonly shard: number;
  readonly state: IkeSaState;
  readonly path: PeerPath;
  readonly peerId?: string;
  readonly peerName?: string;
  readonly expectedPeerId?: string;
  readonly virtualIp?: Uint8Array;
  readonly poolKey?: string;
  readonly establishedAt?: number;
  readonly children: readonly ChildSnapshot[];
}

export function encodeSnapshot(s: SaSnapshot): Uint8Array {
  // `this[k]` is the value before toJSON: a Buffer (a Uint8Array) would otherwise arrive as {type, data}.
  const json = JSON.stringify(s, function (this: Record<string, unknown>, k: string, v: unknown) {
    const raw = this[k];
    if (raw instanceof Uint8Array)
      return { $u8: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex') };
    return typeof v === 'bigint' ? { $big: v.toString() } : v;
  });
  return new TextEncoder().encode(json);
}

/** Throws on anything that is not a version-2 snapshot (the store returned someone else's bytes). */
export function decodeSnapshot(bytes: Uint8Array): SaSnapshot {
  const s = JSON.parse(new TextDecoder().decode(bytes), (_k, v: unknown) => {
    if (v !== null && typeof v === 'object') {
      if ('$b' in v && typeof v.$b === 'string') return Uint8Array.from(Buffer.from(v.$b, 'base64'));
      if ('$u8' in v && typeof v.$u8 === 'string') return Uint8Array.from(Buffer.from(v.$u8, 'hex'));
      if ('$big' in v && typeof v.$big === 'string') return BigInt(v.$big);
    }
    return v;
  }) as SaSnapshot;
  if (s?.version !== 2 || !Array.isArray(s.spis) || typeof s.shard !== 'number' || !s.state || !s.path)
    throw new Error(
      (s as { version?: unknown } | null)?.version === 1
        ? 'an ikegate SA snapshot of version 1 (an earlier engine): not adoptable by this worker'
        : 'not an ikegate SA snapshot (version 2)',
    );
  return s;
}
