/**
 * The edge <-> worker frame relay over gRPC (proto/ikegate/v1/relay.proto): one bidirectional
 * stream per (edge, worker) pair. Each side batches frames (up to MAX_BATCH per message, flushed on
 * the next turn of the event loop) and sends only as many as the other side granted credit for;
 * the receiver grants credit back as it hands frames on. Output waiting for credit is bounded:
 * past `maxQueue` frames ESP is dropped (counted) and IKE is still kept up to twice that, so a slow
 * peer costs packets, never unbounded memory.
 *
 * Security (issue #11): with `tls`, the relay runs over mutual TLS against the cluster's relay CA.
 * A worker accepts only edges with a client certificate from that CA whose subject CN is `edge:<id>`
 * (that edge only) or `edge` (any id, bound to the certificate while its stream lives: a second
 * stream for a connected id with another certificate is refused, `edge_id_conflict`); an edge
 * accepts only a worker whose certificate's CN is `worker:<id>` for the worker it dialled, or
 * `worker`. Refusals end the stream with PERMISSION_DENIED and are logged and counted.
 *
 * Worker paths carry the edge: the relay names a peer connection `<edgeId>|<connection>` on the
 * worker side, so a worker answers through the edge that the peer's newest path runs through
 * (after a peer reconnects to another edge, its next authenticated message moves the SA there).
 */
import { X509Certificate } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type { Http2Session } from 'node:http2';
import type { PeerCertificate } from 'node:tls';
import {
  type ClientDuplexStream,
  credentials,
  type ServerDuplexStream,
  Server,
  ServerCredentials,
  status,
} from '@grpc/grpc-js';
import type {
  EdgeLink,
  InboundFrame,
  OutboundFrame,
  PeerPath,
  SendResult,
  WorkerLink,
} from '@ikegate/cluster';
import type { Logger, Metrics } from '@ikegate/telemetry';
import {
  type EdgeMessage,
  frameFromWire,
  frameToWire,
  outboundFrameFromWire,
  pathFromWire,
  pathToWire,
  relayClientConstructor,
  relayService,
  type WireFrame,
  type WorkerMessage,
} from './wire.js';

/** The relay's mutual TLS material (PEM). */
export interface RelayTls {
  /** The relay CA: the only issuer whose certificates are accepted on either end. */
  readonly ca: Buffer;
  readonly certificate: Buffer;
  readonly key: Buffer;
}

/** The subject CN of a certificate, from Node's parsed form (a string or, repeated, the first). */
function commonName(cert: PeerCertificate | undefined): string | undefined {
  const cn = cert?.subject?.CN as string | string[] | undefined;
  return Array.isArray(cn) ? cn[0] : cn;
}

/** The CN a relay certificate of ours carries (for logs and checks at start). */
export function relayCertificateName(pem: Buffer): string | undefined {
  const m = /(?:^|\n)CN=([^\n]*)/.exec(new X509Certificate(pem).subject);
  return m?.[1];
}

/** Whether a worker certificate's CN admits worker `workerId`. */
export function workerNameAdmits(cn: string | undefined, workerId: string): boolean {
  return cn === 'worker' || cn === `worker:${workerId}`;
}

export const MAX_BATCH = 256;
export const INITIAL_CREDIT = 4096;
export const DEFAULT_MAX_QUEUE = 16_384;

/**
 * The HTTP/2 flow-control window (stream and connection) each end of a relay connection grants
 * (issue #14). Node's default is 64 KiB: one edge -> worker stream then carried 64 KiB per round
 * trip between two busy event loops, and the cluster path stalled at ~480 Mbit/s with no process
 * at a full core. Memory: grpc-js reads a message whatever the window (it pauses between
 * messages), so a connection holds at most one message (max_receive_message_length) plus this.
 */
export const RELAY_FLOW_CONTROL_WINDOW = 4 << 20;

/**
 * grpc-js (1.14) reads `grpc-node.flow_control_window` on the client only (grpc/grpc-node#3058,
 * open, would add the server): a server's sessions keep Node's 64-KiB windows. Until then we set
 * them through two of its fields, before bind (the settings its HTTP/2 servers are created with)
 * and after (each new session's connection window). Returns whether those fields were there; the
 * relay tests check that a worker advertises the window.
 */
const widenServerWindow = {
  beforeBind(server: Server, bytes: number): boolean {
    const internals = server as unknown as { commonServerOptions?: { settings?: object } };
    const common = internals.commonServerOptions;
    if (typeof common !== 'object' || common === null) return false;
    common.settings = { ...common.settings, initialWindowSize: bytes };
    return true;
  },
  /** `problem` hears of a session whose windows could not be set (it then keeps Node's). */
  afterBind(server: Server, bytes: number, problem: (what: string) => void): boolean {
    const servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
    if (!(servers instanceof Map)) return false;
    for (const http2Server of servers.keys()) {
      if (widened.has(http2Server)) continue;
      widened.add(http2Server);
      // Runs inside Node's connection listener: an exception here would end the process.
      http2Server.on('session', (session: Http2Session) => {
        if (session.destroyed) return;
        try {
          session.setLocalWindowSize(bytes);
        } catch (e) {
          problem(`setLocalWindowSize: ${(e as Error).message}`);
          return;
        }
        const stream = session.localSettings?.initialWindowSize;
        if (stream !== undefined && stream !== bytes) problem(`stream window ${stream}`);
      });
    }
    return true;
  },
};
const widened = new WeakSet<EventEmitter>();
const SEPARATOR = '|';

/** `<edgeId>|<connection>`: how a worker names a peer connection that lives on an edge. */
export function qualify(edgeId: string, path: PeerPath): PeerPath {
  // join, not a template: one flat string, held by the worker's SA as its path id (issue #14).
  return { ...path, connection: [edgeId, path.connection].join(SEPARATOR) };
}

/** unqualify's answers by path object: an SA sends all its frames on one (issue #14, per frame). */
const unqualified = new WeakMap<PeerPath, { edgeId: string; path: PeerPath }>();

/** Splits a worker-side connection name back into the edge and that edge's own connection name. */
export function unqualify(path: PeerPath): { edgeId: string; path: PeerPath } | undefined {
  const known = unqualified.get(path);
  if (known) return known;
  const i = path.connection.indexOf(SEPARATOR);
  if (i <= 0) return undefined;
  const u = {
    edgeId: path.connection.slice(0, i),
    path: { ...path, connection: path.connection.slice(i + 1) },
  };
  unqualified.set(path, u);
  return u;
}

type Outgoing = { frame: WireFrame; ike: boolean; bounced?: boolean } | { closed: PeerPath };

/** Batching and credit for one direction of one stream. */
class Pipe {
  #queue: Outgoing[] = [];
  #credit = INITIAL_CREDIT;
  #grant = 0;
  #scheduled = false;
  #closed = false;

  constructor(
    private readonly write: (
      frames: WireFrame[],
      closed: PeerPath[],
      credit: number,
      bounced: WireFrame[],
    ) => void,
    private readonly maxQueue: number,
    private readonly onDrop: (reason: string) => void,
  ) {}

  push(item: Outgoing): SendResult {
    if (this.#closed) return 'no-connection';
    if ('frame' in item) {
      const limit = item.ike ? this.maxQueue * 2 : this.maxQueue;
      if (this.#queue.length >= limit) {
        this.onDrop(item.ike ? 'relay_queue_full_ike' : 'relay_queue_full');
        return 'congested';
      }
    }
    this.#queue.push(item);
    this.#schedule();
    return 'sent';
  }

  /** The other side granted `n` more frames. */
  credit(n: number): void {
    if (n > 0) {
      this.#credit += n;
      this.#schedule();
    }
  }

  /** We consumed `n` frames from the other side: grant them back on the next message. */
  consumed(n: number): void {
    this.#grant += n;
    this.#schedule();
  }

  close(): void {
    this.#closed = true;
    this.#queue = [];
  }

  /** Closes the pipe and returns what was queued and never written. */
  takeUnsent(): Outgoing[] {
    const unsent = this.#queue;
    this.close();
    return unsent;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** Whether push() of an ESP frame would be refused as congested now (queue at maxQueue). */
  get espFull(): boolean {
    return !this.#closed && this.#queue.length >= this.maxQueue;
  }

  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#closed) return;
    for (let rounds = 0; rounds < 64; rounds++) {
      const frames: WireFrame[] = [];
      const closed: PeerPath[] = [];
      const bounced: WireFrame[] = [];
      while (this.#queue.length > 0 && frames.length + bounced.length < MAX_BATCH) {
        const next = this.#queue[0]!;
        if ('frame' in next) {
          if (this.#credit <= 0) break;
          this.#credit--;
          (next.bounced ? bounced : frames).push(next.frame);
        } else {
          closed.push(next.closed);
        }
        this.#queue.shift();
      }
      if (frames.length === 0 && closed.length === 0 && bounced.length === 0 && this.#grant === 0) return;
      const grant = this.#grant;
      this.#grant = 0;
      this.write(frames, closed, grant, bounced);
      if (this.#queue.length === 0 || this.#credit <= 0) return;
    }
    this.#schedule();
  }
}

// --- worker side ---------------------------------------------------------------------------------

interface EdgeStream {
  readonly call: ServerDuplexStream<EdgeMessage, WorkerMessage>;
  readonly pipe: Pipe;
  readonly identity: EdgeIdentity;
}

export interface RelayServerOptions {
  readonly workerId: string;
  /**
   * How long an edge whose relay stream ended may take to come back before the streams of its
   * peers count as gone (default 10 s: more than the edge's 5 s reconnect back-off).
   */
  readonly edgeGraceMs?: number;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly maxQueue?: number;
  /** Mutual TLS; without it the relay is plaintext and unauthenticated (tests, a trusted network). */
  readonly tls?: RelayTls;
}

interface EdgeIdentity {
  /** SHA-256 fingerprint of the edge's certificate; '' without TLS. */
  readonly fingerprint: string;
  /** The id its certificate names (CN `edge:<id>`), or undefined for a shared `edge` certificate. */
  readonly boundId: string | undefined;
}

/**
 * The worker's end: a gRPC server edges connect to. `edgeLink` is what the Worker sends through;
 * `attach(worker)` is where frames from edges go.
 */
export class RelayServer {
  readonly #o: RelayServerOptions;
  readonly #server = new Server({
    'grpc.max_receive_message_length': 64 << 20,
    // Not read by grpc-js 1.14's server (see widenServerWindow); by one with grpc/grpc-node#3058.
    'grpc-node.flow_control_window': RELAY_FLOW_CONTROL_WINDOW,
  });
  readonly #edges = new Map<string, EdgeStream>();
  /** The incarnation each edge's streams were last named with (`tcp:<incarnation>:<n>`). */
  readonly #incarnations = new Map<string, string>();
  #lastConnection = '';
  /** Edges whose relay stream ended: their streams count as gone unless they are back in time. */
  readonly #graceTimers = new Map<string, NodeJS.Timeout>();
  #worker: WorkerLink | undefined;
  #windowSet: boolean;
  #windowProblemLogged = false;

  constructor(o: RelayServerOptions) {
    this.#o = o;
    this.#windowSet = widenServerWindow.beforeBind(this.#server, RELAY_FLOW_CONTROL_WINDOW);
    const service = relayService();
    this.#server.addService(service, {
      Relay: (call: ServerDuplexStream<EdgeMessage, WorkerMessage>) => this.#onStream(call),
    });
  }

  attach(worker: WorkerLink): void {
    this.#worker = worker;
  }

  get edgeIds(): string[] {
    return [...this.#edges.keys()];
  }

  readonly edgeLink: EdgeLink = {
    send: (frame: OutboundFrame): SendResult => {
      const u = unqualify(frame.path);
      if (!u) return 'no-connection';
      const edge = this.#edges.get(u.edgeId);
      if (!edge) return 'no-connection';
      return edge.pipe.push({ frame: frameToWire({ ...frame, path: u.path }), ike: frame.kind === 'ike' });
    },
    // The edge's stream is backed up as far as send() would refuse ESP: the worker drops the packet
    // before it encrypts it (no cipher work, no sequence number spent; issue #14, overload).
    espCongested: (path: PeerPath): boolean => {
      const u = unqualify(path);
      const edge = u && this.#edges.get(u.edgeId);
      return edge !== undefined && edge.pipe.espFull;
    },
    bounce: (frame: InboundFrame): void => {
      const u = unqualify(frame.path);
      const edge = u && this.#edges.get(u.edgeId);
      if (!u || !edge) return;
      edge.pipe.push({
        frame: frameToWire({ ...frame, path: u.path }),
        ike: frame.kind === 'ike',
        bounced: true,
      });
    },
  };

  async start(address: string, port: number): Promise<number> {
    const tls = this.#o.tls;
    const creds = tls
      ? ServerCredentials.createSsl(tls.ca, [{ cert_chain: tls.certificate, private_key: tls.key }], true)
      : ServerCredentials.createInsecure();
    return new Promise((resolve, reject) =>
      this.#server.bindAsync(`${address}:${port}`, creds, (err, bound) => {
        if (err) return reject(err);
        try {
          this.#windowSet &&= widenServerWindow.afterBind(this.#server, RELAY_FLOW_CONTROL_WINDOW, (what) =>
            this.#windowProblem(what),
          );
        } catch {
          this.#windowSet = false;
        }
        if (!this.#windowSet)
          this.#o.log.warn(
            { window: RELAY_FLOW_CONTROL_WINDOW, reason: 'grpc-js internals not found: 64-KiB windows' },
            'relay-flow-control-window-unset',
          );
        resolve(bound);
      }),
    );
  }

  /** Logged once: a session kept Node's 64-KiB windows (see widenServerWindow). */
  #windowProblem(what: string): void {
    if (this.#windowProblemLogged) return;
    this.#windowProblemLogged = true;
    this.#o.log.warn({ window: RELAY_FLOW_CONTROL_WINDOW, reason: what }, 'relay-flow-control-window-unset');
  }

  /** Who is at the other end of `call` (TLS), or why it may not be an edge. */
  #identity(call: ServerDuplexStream<EdgeMessage, WorkerMessage>): EdgeIdentity | string {
    if (!this.#o.tls) return { fingerprint: '', boundId: undefined };
    const ctx = call.getAuthContext();
    const cert = ctx?.sslPeerCertificate;
    if (!cert || !ctx.transportSecurityType) return 'no_client_certificate';
    const cn = commonName(cert);
    if (cn === 'edge') return { fingerprint: cert.fingerprint256, boundId: undefined };
    if (cn?.startsWith('edge:') && cn.length > 5)
      return { fingerprint: cert.fingerprint256, boundId: cn.slice(5) };
    return 'not_an_edge_certificate';
  }

  #refuse(call: ServerDuplexStream<EdgeMessage, WorkerMessage>, reason: string, detail: object): void {
    this.#o.metrics.drops.inc({ layer: 'relay', reason });
    this.#o.log.warn({ reason, peer: call.getPeer(), ...detail }, 'relay-edge-refused');
    call.emit('error', { code: status.PERMISSION_DENIED, details: reason });
  }

  #onStream(call: ServerDuplexStream<EdgeMessage, WorkerMessage>): void {
    let edgeId = '';
    let stream: EdgeStream | undefined;
    let refused = false;
    const { metrics, workerId } = this.#o;
    // The codec shares one PeerPath per peer path, so its qualified name is made once, not per frame.
    const qualified = new WeakMap<PeerPath, PeerPath>();
    const ours = (path: PeerPath): PeerPath => {
      let q = qualified.get(path);
      if (q === undefined) qualified.set(path, (q = qualify(edgeId, path)));
      return q;
    };
    call.on('data', (m: EdgeMessage) => {
      if (refused) return;
      if (!stream) {
        if (!m.edgeId || m.edgeId.includes(SEPARATOR)) {
          metrics.drops.inc({ layer: 'relay', reason: 'no_edge_id' });
          call.end();
          return;
        }
        const identity = this.#identity(call);
        if (typeof identity === 'string') {
          refused = true;
          return this.#refuse(call, identity, { edgeId: m.edgeId });
        }
        if (identity.boundId !== undefined && identity.boundId !== m.edgeId) {
          refused = true;
          return this.#refuse(call, 'edge_id_mismatch', {
            edgeId: m.edgeId,
            certificate: `edge:${identity.boundId}`,
          });
        }
        const current = this.#edges.get(m.edgeId);
        if (current && current.identity.fingerprint !== identity.fingerprint) {
          // Another certificate holds this id now: the connected edge keeps it (no hijack).
          refused = true;
          return this.#refuse(call, 'edge_id_conflict', { edgeId: m.edgeId });
        }
        edgeId = m.edgeId;
        const pipe = new Pipe(
          (frames, _closed, credit, bounced) => call.write({ workerId, frames, credit, bounced }),
          this.#o.maxQueue ?? DEFAULT_MAX_QUEUE,
          (reason) => metrics.drops.inc({ layer: 'relay', reason }),
        );
        stream = { call, pipe, identity };
        const old = this.#edges.get(edgeId);
        old?.pipe.close();
        this.#edges.set(edgeId, stream);
        clearTimeout(this.#graceTimers.get(edgeId));
        this.#graceTimers.delete(edgeId);
        this.#o.log.info({ edgeId }, 'relay-edge-connected');
      }
      stream.pipe.credit(m.credit);
      let n = 0;
      for (const w of m.frames) {
        n++;
        const f = frameFromWire(w);
        if (!f) {
          metrics.drops.inc({ layer: 'relay', reason: 'bad_frame' });
          continue;
        }
        if (f.path.transport !== 'udp') this.#noteIncarnation(edgeId, f.path.connection);
        (f as { path: PeerPath }).path = ours(f.path); // frameFromWire's own new object
        this.#worker?.deliver(f);
      }
      for (const p of m.closed) {
        const path = pathFromWire(p);
        if (path) this.#worker?.connectionClosed(qualify(edgeId, path));
      }
      if (n > 0) stream.pipe.consumed(n);
    });
    const gone = () => {
      if (stream && this.#edges.get(edgeId) === stream) {
        this.#edges.delete(edgeId);
        stream.pipe.close();
        this.#o.log.warn({ edgeId }, 'relay-edge-disconnected');
        const id = edgeId;
        clearTimeout(this.#graceTimers.get(id));
        const t = setTimeout(() => {
          this.#graceTimers.delete(id);
          if (this.#edges.has(id)) return;
          this.#o.log.warn({ edgeId: id }, 'relay-edge-gone');
          this.#worker?.edgeGone?.(id);
        }, this.#o.edgeGraceMs ?? 10_000);
        t.unref();
        this.#graceTimers.set(id, t);
      }
    };
    call.on('end', () => {
      gone();
      call.end();
    });
    call.on('error', gone);
    call.on('close', gone);
  }

  /** A stream name `<transport>:<incarnation>:<n>` from a new incarnation: the old one's are gone. */
  #noteIncarnation(edgeId: string, connection: string): void {
    // Per frame: the common case (the same stream as the last frame) costs one comparison.
    if (this.#lastConnection === connection) return;
    this.#lastConnection = connection;
    const a = connection.indexOf(':');
    const b = connection.indexOf(':', a + 1);
    if (a < 0 || b < 0) return;
    const incarnation = connection.slice(a + 1, b);
    const known = this.#incarnations.get(edgeId);
    if (known === incarnation) return;
    this.#incarnations.set(edgeId, incarnation);
    if (known === undefined) return;
    this.#o.log.warn({ edgeId, incarnation, was: known }, 'relay-edge-restarted');
    this.#worker?.edgeGone?.(edgeId, incarnation);
  }

  async close(): Promise<void> {
    for (const t of this.#graceTimers.values()) clearTimeout(t);
    this.#graceTimers.clear();
    for (const e of this.#edges.values()) {
      e.pipe.close();
      e.call.end();
    }
    await new Promise<void>((r) => this.#server.tryShutdown(() => r()));
  }
}

// --- edge side -----------------------------------------------------------------------------------

export interface RelayClientOptions {
  readonly edgeId: string;
  /** host:port of the worker's relay server. */
  readonly target: string;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** A frame from the worker for one of this edge's peers (connection names are this edge's own). */
  readonly onFrame: (frame: OutboundFrame) => void;
  /** A frame the worker handed back (not its shard any more): route it again. */
  readonly onBounce?: (frame: InboundFrame) => void;
  readonly maxQueue?: number;
  /** Mutual TLS: our edge certificate, and the worker's must name `workerId` (CN `worker:<id>` or `worker`). */
  readonly tls?: RelayTls;
  /** The worker we expect at `target` (checked against its certificate with `tls`). */
  readonly workerId?: string;
}

/**
 * The edge's end of one worker: a WorkerLink that relays over gRPC. Reconnects by itself (1-5 s
 * back-off) while the worker is unreachable; frames in the meantime wait in the bounded queue.
 */
export class RelayClient implements WorkerLink {
  readonly #o: RelayClientOptions;
  readonly #client: InstanceType<ReturnType<typeof relayClientConstructor>>;
  #call: ClientDuplexStream<EdgeMessage, WorkerMessage> | undefined;
  #pipe: Pipe | undefined;
  #pending: Outgoing[] = [];
  #closed = false;
  #backoffMs = 1000;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: RelayClientOptions) {
    this.#o = o;
    const Ctor = relayClientConstructor();
    const creds = o.tls
      ? credentials.createSsl(o.tls.ca, o.tls.key, o.tls.certificate, {
          // The worker is named by its certificate (pods come and go with new addresses).
          checkServerIdentity: (_host, cert) =>
            workerNameAdmits(commonName(cert), o.workerId ?? '')
              ? undefined
              : new Error(
                  `relay: the certificate at ${o.target} (CN=${commonName(cert)}) is not worker ${o.workerId}`,
                ),
        })
      : credentials.createInsecure();
    this.#client = new Ctor(o.target, creds, {
      'grpc.max_receive_message_length': 64 << 20,
      'grpc.keepalive_time_ms': 10_000,
      // Our own reconnect (below) handles a failed stream; gRPC's retry machinery would buffer and
      // track every message of this long-lived stream for a transparent retry it never needs.
      'grpc.enable_retries': 0,
      'grpc-node.flow_control_window': RELAY_FLOW_CONTROL_WINDOW,
      // The worker is checked by its certificate's CN (above), not by a host name; a fixed SNI
      // also keeps Node from sending an IP address as the server name (RFC 6066 §3).
      ...(o.tls ? { 'grpc.ssl_target_name_override': 'ikegate-relay' } : {}),
    });
    this.#open();
  }

  get connected(): boolean {
    return this.#pipe !== undefined;
  }

  #open(): void {
    if (this.#closed) return;
    const call = (
      this.#client as unknown as { Relay(): ClientDuplexStream<EdgeMessage, WorkerMessage> }
    ).Relay();
    this.#call = call;
    const { metrics, edgeId } = this.#o;
    const pipe = new Pipe(
      (frames, closed, credit) => call.write({ edgeId, frames, closed: closed.map(pathToWire), credit }),
      this.#o.maxQueue ?? DEFAULT_MAX_QUEUE,
      (reason) => metrics.drops.inc({ layer: 'relay', reason }),
    );
    // Name ourselves first, then replay what waited while disconnected.
    call.write({ edgeId, frames: [], closed: [], credit: 0 });
    call.on('data', (m: WorkerMessage) => {
      if (!this.#pipe) {
        this.#pipe = pipe;
        this.#backoffMs = 1000;
        this.#o.log.info({ target: this.#o.target, workerId: m.workerId }, 'relay-worker-connected');
      }
      pipe.credit(m.credit);
      let n = 0;
      for (const w of m.frames) {
        n++;
        const f = outboundFrameFromWire(w);
        if (!f) {
          metrics.drops.inc({ layer: 'relay', reason: 'bad_frame' });
          continue;
        }
        this.#o.onFrame(f);
      }
      for (const w of m.bounced ?? []) {
        n++;
        const f = frameFromWire(w);
        if (f) this.#o.onBounce?.(f);
      }
      if (n > 0) pipe.consumed(n);
    });
    // The worker answers the naming message with credit only; treat the stream as up at once.
    this.#pipe = pipe;
    for (const item of this.#pending.splice(0)) pipe.push(item);
    const down = (why: string) => {
      if (this.#call !== call) return;
      this.#call = undefined;
      this.#pipe = undefined;
      this.#bounceUnsent(pipe.takeUnsent());
      if (this.#closed) return;
      this.#o.log.warn(
        { target: this.#o.target, why, retryInMs: this.#backoffMs },
        'relay-worker-disconnected',
      );
      this.#timer = setTimeout(() => this.#open(), this.#backoffMs);
      this.#timer.unref();
      this.#backoffMs = Math.min(this.#backoffMs * 2, 5000);
    };
    call.on('error', (e: Error) => down(e.message));
    call.on('end', () => down('end'));
  }

  #push(item: Outgoing): SendResult {
    if (this.#pipe) return this.#pipe.push(item);
    const max = this.#o.maxQueue ?? DEFAULT_MAX_QUEUE;
    if (this.#pending.length >= max) {
      this.#o.metrics.drops.inc({ layer: 'relay', reason: 'worker_unreachable' });
      return 'congested';
    }
    this.#pending.push(item);
    return 'sent';
  }

  deliver(frame: InboundFrame): void {
    // No stream to this worker (it died or restarts): the router finds the shard's owner again,
    // rather than the frame waiting for a worker that may never come back (a TCP peer would not
    // resend it).
    if (!this.#pipe && this.#o.onBounce) return this.#o.onBounce(frame);
    // Queued until the next flush, so the octets must not change before then. `slice()` copies a
    // plain Uint8Array (a frame the RFC 9329 decoder reassembled in the buffer it reuses for split
    // frames) and is a view of a Buffer (a datagram, or a frame inside one stream chunk: memory
    // node gives each read afresh and never reuses), so only the reused memory is copied.
    this.#push({ frame: frameToWire({ ...frame, bytes: frame.bytes.slice() }), ike: frame.kind === 'ike' });
  }

  /** Frames that never reached the worker go back to the router (`onBounce`). */
  #bounceUnsent(items: readonly Outgoing[]): void {
    for (const item of items) {
      if (!('frame' in item)) continue;
      const f = this.#o.onBounce ? frameFromWire(item.frame) : undefined;
      if (f) this.#o.onBounce!(f);
    }
  }

  connectionClosed(path: PeerPath): void {
    this.#push({ closed: path });
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    if (this.#pipe) this.#bounceUnsent(this.#pipe.takeUnsent());
    this.#bounceUnsent(this.#pending.splice(0));
    this.#call?.end();
    this.#client.close();
  }
}
