/**
 * The relay's messages (proto/ikegate/v1/relay.proto) in protobuf wire format, written and read by
 * hand for the per-frame path instead of by @grpc/proto-loader's reflection (issue #14, the relay
 * hop). The encoding is protobuf's (proto3: zero and empty fields left out, where proto-loader
 * writes them): a peer of an older release, which uses proto-loader, reads ours and we read its
 * (codec.test.ts checks both ways against proto-loader with generated messages).
 *
 * What it saves per frame: the PeerPath (connection name, transport, two addresses and ports) is
 * the same on every frame of a peer, so its encoding is kept per path object, and a decoded one is
 * looked up by its octets (a bounded cache, oldest out) and shared by every frame that carries the
 * same octets.
 *
 * Decoding follows protobuf: fields in any order, unknown fields skipped by wire type, the last
 * value of a non-repeated field wins, absent fields take their defaults. Malformed input (a
 * truncated varint or length, a wire type 3/4/6/7) throws RelayCodecError; gRPC then ends the
 * stream, as it did when protobufjs threw.
 */
import type {
  EdgeMessage,
  WireEndpoint,
  WireFrame,
  WireKind,
  WirePath,
  WireTransport,
  WorkerMessage,
} from './wire.js';

export class RelayCodecError extends Error {
  override readonly name = 'RelayCodecError';
}

const TRANSPORT_NUMBER: Record<WireTransport, number> = {
  TRANSPORT_UNSPECIFIED: 0,
  TRANSPORT_UDP: 1,
  TRANSPORT_TCP: 2,
  TRANSPORT_TLS: 3,
};
const TRANSPORT_NAME: readonly WireTransport[] = [
  'TRANSPORT_UNSPECIFIED',
  'TRANSPORT_UDP',
  'TRANSPORT_TCP',
  'TRANSPORT_TLS',
];
const KIND_NUMBER: Record<WireKind, number> = {
  FRAME_KIND_UNSPECIFIED: 0,
  FRAME_KIND_IKE: 1,
  FRAME_KIND_ESP: 2,
};
const KIND_NAME: readonly WireKind[] = ['FRAME_KIND_UNSPECIFIED', 'FRAME_KIND_IKE', 'FRAME_KIND_ESP'];

/**
 * Entries of the decoded-path cache (~250 B each); past it the oldest entry goes (a Map keeps
 * insertion order). Beyond this many live peer paths per process, some frames' paths are decoded
 * again: the cost before the cache, not an error.
 */
export const PATH_CACHE_MAX = 16_384;

/**
 * Frames, bounced frames and closed paths in one message, at most: senders batch 256
 * (MAX_BATCH) and a burst of closed connections; far more is a broken sender, refused before an
 * 8-MB message of empty frames turns into millions of objects (a review found +344 MB).
 */
export const MAX_MESSAGE_ENTRIES = 65_536;

// --- encoding -------------------------------------------------------------------------------------

function varintSize(v: number): number {
  if (v < 0x80) return 1;
  if (v < 0x4000) return 2;
  if (v < 0x200000) return 3;
  if (v < 0x10000000) return 4;
  return 5;
}

/** A uint32 (or a non-negative enum) as a varint at `o`; returns the next offset. */
function putVarint(b: Buffer, o: number, v: number): number {
  while (v >= 0x80) {
    b[o++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  b[o++] = v;
  return o;
}

/**
 * tag + value of a uint32/enum field that is not 0 (proto3 leaves defaults out). The value is
 * taken as uint32 (`>>> 0`, as proto-loader does): a negative, fractional, NaN or out-of-range
 * number must not make the size computed here differ from the octets written.
 */
function uintFieldSize(v: number): number {
  v >>>= 0;
  return v === 0 ? 0 : 1 + varintSize(v);
}

function putUintField(b: Buffer, o: number, field: number, v: number): number {
  v >>>= 0;
  if (v === 0) return o;
  b[o++] = field << 3;
  return putVarint(b, o, v);
}

function lenFieldSize(len: number): number {
  return 1 + varintSize(len) + len;
}

function putBytesField(b: Buffer, o: number, field: number, v: Uint8Array): number {
  b[o++] = (field << 3) | 2;
  o = putVarint(b, o, v.length);
  b.set(v, o);
  return o + v.length;
}

function stringFieldSize(s: string): number {
  if (s.length === 0) return 0;
  return lenFieldSize(Buffer.byteLength(s, 'utf8'));
}

function putStringField(b: Buffer, o: number, field: number, s: string): number {
  if (s.length === 0) return o;
  const len = Buffer.byteLength(s, 'utf8');
  b[o++] = (field << 3) | 2;
  o = putVarint(b, o, len);
  return o + b.write(s, o, len, 'utf8');
}

function endpointBytes(e: WireEndpoint): Buffer {
  const b = Buffer.allocUnsafe(stringFieldSize(e.address) + uintFieldSize(e.port));
  putUintField(b, putStringField(b, 0, 1, e.address), 2, e.port);
  return b;
}

/** A PeerPath message's own bytes (without tag and length). */
function encodePath(p: WirePath): Buffer {
  const local = p.local ? endpointBytes(p.local) : undefined;
  const remote = p.remote ? endpointBytes(p.remote) : undefined;
  const transport = TRANSPORT_NUMBER[p.transport] ?? 0;
  const size =
    stringFieldSize(p.connection) +
    uintFieldSize(transport) +
    (local ? lenFieldSize(local.length) : 0) +
    (remote ? lenFieldSize(remote.length) : 0);
  // Its own memory: a cached slice of node's shared 8 KiB pool would keep the whole block alive.
  const b = Buffer.allocUnsafeSlow(size);
  let o = putStringField(b, 0, 1, p.connection);
  o = putUintField(b, o, 2, transport);
  if (local) o = putBytesField(b, o, 3, local);
  if (remote) putBytesField(b, o, 4, remote);
  return b;
}

/**
 * Encoded paths by WirePath object: pathToWire makes one per PeerPath, and every sender keeps one
 * PeerPath per peer path (an SA's path, an edge's stream, the edge's UDP 4-tuple cache), so a
 * peer's frames find their bytes by identity. Freed with the path; no size cap needed.
 */
const encodedPaths = new WeakMap<WirePath, Buffer>();

function pathBytes(p: WirePath): Buffer {
  let bytes = encodedPaths.get(p);
  if (bytes === undefined) encodedPaths.set(p, (bytes = encodePath(p)));
  return bytes;
}

/** A Frame's own bytes' length, given its path's bytes. */
function frameSize(f: WireFrame, path: Buffer | undefined): number {
  return (
    uintFieldSize(KIND_NUMBER[f.kind] ?? 0) +
    (path ? lenFieldSize(path.length) : 0) +
    (f.data.length > 0 ? lenFieldSize(f.data.length) : 0) +
    uintFieldSize(f.shard) +
    uintFieldSize(f.attempt) +
    stringFieldSize(f.closeAfter)
  );
}

function putFrameBody(b: Buffer, o: number, f: WireFrame, path: Buffer | undefined, size: number): number {
  o = putVarint(b, o, size);
  o = putUintField(b, o, 1, KIND_NUMBER[f.kind] ?? 0);
  if (path) o = putBytesField(b, o, 2, path);
  if (f.data.length > 0) o = putBytesField(b, o, 3, f.data);
  o = putUintField(b, o, 4, f.shard);
  o = putUintField(b, o, 5, f.attempt);
  return putStringField(b, o, 6, f.closeAfter);
}

/** Sizes and path bytes of a list of frames (one pass), and their total as length-delimited fields. */
function measureFrames(frames: readonly WireFrame[], sizes: number[], paths: (Buffer | undefined)[]): number {
  let total = 0;
  for (const f of frames) {
    const path = f.path ? pathBytes(f.path) : undefined;
    const size = frameSize(f, path);
    paths.push(path);
    sizes.push(size);
    total += lenFieldSize(size);
  }
  return total;
}

function putFrames(
  b: Buffer,
  o: number,
  field: number,
  frames: readonly WireFrame[],
  sizes: readonly number[],
  paths: readonly (Buffer | undefined)[],
  first: number,
): number {
  for (let i = 0; i < frames.length; i++) {
    b[o++] = (field << 3) | 2;
    o = putFrameBody(b, o, frames[i]!, paths[first + i], sizes[first + i]!);
  }
  return o;
}

export function encodeEdgeMessage(m: EdgeMessage): Buffer {
  const sizes: number[] = [];
  const paths: (Buffer | undefined)[] = [];
  const closed = m.closed.map(pathBytes);
  let size = stringFieldSize(m.edgeId) + measureFrames(m.frames, sizes, paths) + uintFieldSize(m.credit);
  for (const c of closed) size += lenFieldSize(c.length);
  const b = Buffer.allocUnsafe(size);
  let o = putStringField(b, 0, 1, m.edgeId);
  o = putFrames(b, o, 2, m.frames, sizes, paths, 0);
  for (const c of closed) o = putBytesField(b, o, 3, c);
  o = putUintField(b, o, 4, m.credit);
  return o === size ? b : b.subarray(0, o);
}

export function encodeWorkerMessage(m: WorkerMessage): Buffer {
  const sizes: number[] = [];
  const paths: (Buffer | undefined)[] = [];
  const bounced = m.bounced ?? [];
  const size =
    stringFieldSize(m.workerId) +
    measureFrames(m.frames, sizes, paths) +
    uintFieldSize(m.credit) +
    measureFrames(bounced, sizes, paths);
  const b = Buffer.allocUnsafe(size);
  let o = putStringField(b, 0, 1, m.workerId);
  o = putFrames(b, o, 2, m.frames, sizes, paths, 0);
  o = putUintField(b, o, 3, m.credit);
  o = putFrames(b, o, 4, bounced, sizes, paths, m.frames.length);
  return o === size ? b : b.subarray(0, o);
}

// --- decoding -------------------------------------------------------------------------------------

/** A cursor over one message's octets (a sub-message gets its own `end`). */
class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): number {
    let v = 0;
    let shift = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new RelayCodecError('relay message: truncated varint');
      const byte = this.buf[this.pos++]!;
      // uint32/enum semantics (as protobufjs): the low 32 bits; bytes past the 5th carry none.
      if (shift < 32) v |= (byte & 0x7f) << shift;
      shift += 7;
      if (byte < 0x80) return v >>> 0;
    }
    throw new RelayCodecError('relay message: varint longer than 10 bytes');
  }

  #entries = 0;

  /** span() of a repeated entry of the message, counted against MAX_MESSAGE_ENTRIES. */
  entry(): [number, number] {
    if (++this.#entries > MAX_MESSAGE_ENTRIES)
      throw new RelayCodecError(`relay message: more than ${MAX_MESSAGE_ENTRIES} frames and paths`);
    return this.span();
  }

  /** A length-delimited field's [start, end). */
  span(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (len > this.end - start) throw new RelayCodecError('relay message: length past the end');
    this.pos = start + len;
    return [start, this.pos];
  }

  skip(wireType: number): void {
    switch (wireType) {
      case 0:
        this.varint();
        return;
      case 1:
        this.#advance(8);
        return;
      case 2:
        this.span();
        return;
      case 5:
        this.#advance(4);
        return;
      default:
        throw new RelayCodecError(`relay message: wire type ${wireType}`);
    }
  }

  #advance(n: number): void {
    if (n > this.end - this.pos) throw new RelayCodecError('relay message: truncated field');
    this.pos += n;
  }

  string([start, end]: [number, number]): string {
    return this.buf.toString('utf8', start, end);
  }
}

function decodeEndpoint(buf: Buffer, start: number, end: number): WireEndpoint {
  const r = new Reader(buf, start, end);
  let address = '';
  let port = 0;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) address = r.string(r.span());
    else if (field === 2 && wt === 0) port = r.varint();
    else r.skip(wt);
  }
  return { address, port };
}

function decodePathUncached(buf: Buffer, start: number, end: number): WirePath {
  const r = new Reader(buf, start, end);
  let connection = '';
  let transport = 0;
  let local: WireEndpoint | null = null;
  let remote: WireEndpoint | null = null;
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (field === 1 && wt === 2) connection = r.string(r.span());
    else if (field === 2 && wt === 0) transport = r.varint();
    else if ((field === 3 || field === 4) && wt === 2) {
      const [s, e] = r.span();
      if (field === 3) local = decodeEndpoint(buf, s, e);
      else remote = decodeEndpoint(buf, s, e);
    } else r.skip(wt);
  }
  // An enum value this release does not know reads as unspecified (the caller refuses the path).
  return { connection, transport: TRANSPORT_NAME[transport] ?? 'TRANSPORT_UNSPECIFIED', local, remote };
}

/**
 * Decoded paths by their octets: every frame of a peer carries the same bytes and gets the same
 * (read-only) object, so pathFromWire's cache finds it by identity.
 */
const decodedPaths = new Map<string, WirePath>();

function decodePath(buf: Buffer, start: number, end: number): WirePath {
  if (end - start > 512) return decodePathUncached(buf, start, end);
  const key = buf.toString('latin1', start, end);
  let p = decodedPaths.get(key);
  if (p === undefined) {
    p = decodePathUncached(buf, start, end);
    if (decodedPaths.size >= PATH_CACHE_MAX) decodedPaths.delete(decodedPaths.keys().next().value!);
    decodedPaths.set(key, p);
  }
  return p;
}

const EMPTY = Buffer.alloc(0);

function decodeFrame(buf: Buffer, start: number, end: number): WireFrame {
  const r = new Reader(buf, start, end);
  let kind = 0;
  let path: WirePath | null = null;
  let data: Uint8Array = EMPTY;
  let shard = 0;
  let attempt = 0;
  let closeAfter = '';
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === 0 && field === 1) kind = r.varint();
    else if (wt === 2 && field === 2) {
      const [s, e] = r.span();
      path = decodePath(buf, s, e);
    } else if (wt === 2 && field === 3) {
      const [s, e] = r.span();
      data = buf.subarray(s, e);
    } else if (wt === 0 && field === 4) shard = r.varint();
    else if (wt === 0 && field === 5) attempt = r.varint();
    else if (wt === 2 && field === 6) closeAfter = r.string(r.span());
    else r.skip(wt);
  }
  return { kind: KIND_NAME[kind] ?? 'FRAME_KIND_UNSPECIFIED', path, data, shard, attempt, closeAfter };
}

export function decodeEdgeMessage(buf: Buffer): EdgeMessage {
  const r = new Reader(buf, 0, buf.length);
  const m: EdgeMessage = { edgeId: '', frames: [], closed: [], credit: 0 };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === 2 && field === 1) m.edgeId = r.string(r.span());
    else if (wt === 2 && field === 2) m.frames.push(decodeFrame(buf, ...r.entry()));
    else if (wt === 2 && field === 3) m.closed.push(decodePath(buf, ...r.entry()));
    else if (wt === 0 && field === 4) m.credit = r.varint();
    else r.skip(wt);
  }
  return m;
}

export function decodeWorkerMessage(buf: Buffer): WorkerMessage {
  const r = new Reader(buf, 0, buf.length);
  const m: WorkerMessage = { workerId: '', frames: [], credit: 0, bounced: [] };
  while (r.pos < r.end) {
    const tag = r.varint();
    const field = tag >>> 3;
    const wt = tag & 7;
    if (wt === 2 && field === 1) m.workerId = r.string(r.span());
    else if (wt === 2 && field === 2) m.frames.push(decodeFrame(buf, ...r.entry()));
    else if (wt === 0 && field === 3) m.credit = r.varint();
    else if (wt === 2 && field === 4) m.bounced.push(decodeFrame(buf, ...r.entry()));
    else r.skip(wt);
  }
  return m;
}
