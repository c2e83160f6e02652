/**
 * proto/ikegate/v1/relay.proto loaded at run time (@grpc/proto-loader) and the mapping between its
 * messages and libs/cluster's frame shapes. The TypeScript shapes below are checked against the
 * loaded schema by wire.test.ts, so the .proto and this file cannot drift apart silently.
 */
import { fileURLToPath } from 'node:url';
import { makeClientConstructor, type ServiceClientConstructor, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type PackageDefinition } from '@grpc/proto-loader';
import type { InboundFrame, OutboundFrame, PeerPath, PeerTransport } from '@ikegate/cluster';
import { decodeEdgeMessage, decodeWorkerMessage, encodeEdgeMessage, encodeWorkerMessage } from './codec.js';

export const PROTO_PATH = fileURLToPath(new URL('../../../proto/ikegate/v1/relay.proto', import.meta.url));

export const LOADER_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
} as const;

export type WireTransport = 'TRANSPORT_UNSPECIFIED' | 'TRANSPORT_UDP' | 'TRANSPORT_TCP' | 'TRANSPORT_TLS';
export type WireKind = 'FRAME_KIND_UNSPECIFIED' | 'FRAME_KIND_IKE' | 'FRAME_KIND_ESP';

export interface WireEndpoint {
  address: string;
  port: number;
}
export interface WirePath {
  connection: string;
  transport: WireTransport;
  local: WireEndpoint | null;
  remote: WireEndpoint | null;
}
export interface WireFrame {
  kind: WireKind;
  path: WirePath | null;
  data: Uint8Array;
  shard: number;
  attempt: number;
  /** Worker -> edge: OutboundFrame.closeAfter, '' for none. */
  closeAfter: string;
}
export interface EdgeMessage {
  edgeId: string;
  frames: WireFrame[];
  closed: WirePath[];
  credit: number;
}
export interface WorkerMessage {
  workerId: string;
  frames: WireFrame[];
  credit: number;
  bounced: WireFrame[];
}

let definition: PackageDefinition | undefined;

export function relayDefinition(): PackageDefinition {
  definition ??= loadSync(PROTO_PATH, LOADER_OPTIONS);
  return definition;
}

let service: ServiceDefinition | undefined;

/**
 * The FrameRelay service as loaded from the .proto, with its messages written and read by
 * codec.ts (the same protobuf encoding, without proto-loader's per-frame reflection).
 */
export function relayService(): ServiceDefinition {
  if (service) return service;
  const loaded = relayDefinition()['ikegate.v1.FrameRelay'] as unknown as ServiceDefinition;
  const relay = loaded.Relay!;
  service = {
    Relay: {
      ...relay,
      requestSerialize: (m: EdgeMessage) => encodeEdgeMessage(m),
      requestDeserialize: (b: Buffer) => decodeEdgeMessage(b),
      responseSerialize: (m: WorkerMessage) => encodeWorkerMessage(m),
      responseDeserialize: (b: Buffer) => decodeWorkerMessage(b),
    },
  };
  return service;
}

export function relayClientConstructor(): ServiceClientConstructor {
  return makeClientConstructor(relayService(), 'ikegate.v1.FrameRelay');
}

const TRANSPORTS: Record<PeerTransport, WireTransport> = {
  udp: 'TRANSPORT_UDP',
  tcp: 'TRANSPORT_TCP',
  tls: 'TRANSPORT_TLS',
};

/** Wire paths by PeerPath object: a peer's frames share one, and the codec finds its bytes by identity. */
const toWire = new WeakMap<PeerPath, WirePath>();

export function pathToWire(p: PeerPath): WirePath {
  let w = toWire.get(p);
  if (w === undefined) toWire.set(p, (w = pathToWireUncached(p)));
  return w;
}

function pathToWireUncached(p: PeerPath): WirePath {
  return {
    connection: p.connection,
    transport: TRANSPORTS[p.transport],
    local: { address: p.local.address, port: p.local.port },
    remote: { address: p.remote.address, port: p.remote.port },
  };
}

/** PeerPaths made from a decoded WirePath: the codec shares one per path, so frames share these. */
const fromWire = new WeakMap<WirePath, PeerPath>();

/** Undefined for a message that does not name a usable path (counted as a bad frame by callers). */
export function pathFromWire(p: WirePath | null): PeerPath | undefined {
  if (!p) return undefined;
  const known = fromWire.get(p);
  if (known) return known;
  if (!p.local || !p.remote || !p.connection) return undefined;
  const transport =
    p.transport === 'TRANSPORT_UDP'
      ? 'udp'
      : p.transport === 'TRANSPORT_TCP'
        ? 'tcp'
        : p.transport === 'TRANSPORT_TLS'
          ? 'tls'
          : undefined;
  if (!transport) return undefined;
  const path: PeerPath = {
    connection: p.connection,
    transport,
    local: { address: p.local.address, port: p.local.port },
    remote: { address: p.remote.address, port: p.remote.port },
  };
  fromWire.set(p, path);
  return path;
}

export function frameToWire(f: InboundFrame | OutboundFrame): WireFrame {
  return {
    kind: f.kind === 'ike' ? 'FRAME_KIND_IKE' : 'FRAME_KIND_ESP',
    path: pathToWire(f.path),
    data: f.bytes,
    shard: 'shard' in f ? f.shard : 0,
    attempt: 'attempt' in f ? (f.attempt ?? 0) : 0,
    closeAfter: 'closeAfter' in f ? (f.closeAfter ?? '') : '',
  };
}

export function frameFromWire(w: WireFrame): InboundFrame | undefined {
  const path = pathFromWire(w.path);
  const kind = w.kind === 'FRAME_KIND_IKE' ? 'ike' : w.kind === 'FRAME_KIND_ESP' ? 'esp' : undefined;
  if (!path || !kind || !(w.data instanceof Uint8Array)) return undefined;
  return { kind, path, bytes: w.data, shard: w.shard, attempt: w.attempt };
}

/** A frame a worker asks an edge to send; undefined for one that does not name a usable path. */
export function outboundFrameFromWire(w: WireFrame): OutboundFrame | undefined {
  const f = frameFromWire(w);
  if (!f) return undefined;
  const frame: OutboundFrame = { kind: f.kind, path: f.path, bytes: f.bytes };
  return w.closeAfter ? { ...frame, closeAfter: w.closeAfter } : frame;
}
