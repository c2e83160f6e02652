/**
 * An edge: the listeners peers connect to. It holds no SA state: every frame is routed by its SPI
 * (libs/cluster routing.ts, the ARCHITECTURE.md rule) to the worker that owns the shard, and the
 * worker's answers come back through `send`. Listeners:
 *
 * - UDP 500 (IKE) and 4500 (NAT-T, RFC 3948: IKE behind a non-ESP marker, ESP, 0xFF keepalives);
 * - TCP 4500 (RFC 9329: "IKETCP" prefix, then 16-bit length-framed IKE and ESP);
 * - TLS 443 carrying the same RFC 9329 stream (RFC 9329 §8).
 *
 * The sockets are binds (@ikegate/transport): the real ones from `settings.listen` by default, or
 * whatever the constructor is given (in-memory ones in edge.test.ts). Every TCP/TLS stream is an
 * IketcpStream (the one RFC 9329 implementation), as responder.
 *
 * Abuse bounds (PROTOCOL.md, RFC 9329 §3/§5): a stream closes on a bad prefix, an oversize or
 * garbage length, or when the prefix does not arrive within `prefixTimeoutMs`; an idle stream closes
 * after `idleTimeoutMs`; connections are capped in total and per peer address (counted from the TCP
 * accept, so a TLS handshake counts too); each stream buffers at most one frame of input (the
 * decoder), `maxWriteBuffer` octets of output past which ESP is dropped, and `maxIkeBuffer` octets of
 * unread IKE output past which it is closed (`ike_output_overflow`: a peer repeating IKE_SA_INIT
 * without reading cannot grow our memory). A worker's `closeAfter` (RFC 9329 §6.3, after a COOKIE)
 * writes the frame, then ends the stream.
 */
import {
  type EdgeLink,
  type InboundFrame,
  type OutboundFrame,
  type PeerPath,
  type PeerTransport,
  routeEspPacket,
  routeIkeMessage,
  type SendResult,
  type ShardLayout,
  type WorkerLink,
} from '@ikegate/cluster';
import { parseIp } from '@ikegate/config';
import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import { espFrameLength, ikeFrameLength } from '@ikegate/iketcp';
import { randomBytes } from 'node:crypto';
import { exchangeLabel, type Logger, type Metrics, RejectionLog, tlsFailureReason } from '@ikegate/telemetry';
import {
  type AcceptedStream,
  type DatagramBind,
  type Endpoint,
  type IketcpCloseOrigin,
  IketcpStream,
  type IketcpStreamEvent,
  NodeTcpListener,
  NodeTlsListener,
  NodeUdpBind,
  type ResponderBinds,
  type StreamAcceptor,
  type StreamTransport,
} from '@ikegate/transport';

export interface EdgeListenSettings {
  readonly udp?: {
    readonly address: string;
    readonly ikePort: number;
    readonly natTPort: number;
    /** SO_RCVBUF of both ports (default DEFAULT_UDP_RECEIVE_BUFFER; 0: the kernel's). */
    readonly receiveBufferBytes?: number;
  };
  readonly tcp?: { readonly address: string; readonly port: number };
  readonly tls?: {
    readonly address: string;
    readonly port: number;
    readonly certificate: string;
    readonly key: string;
    /** Append TLS secrets in NSS key log format here (for decrypting captures in tests). */
    readonly keylogFile?: string;
  };
}

export interface EdgeSettings {
  /** What to listen on; used only when the constructor is given no binds. */
  readonly listen: EdgeListenSettings;
  readonly layout: ShardLayout;
  /** Cluster-wide key for the IKE_SA_INIT shard hash (libs/cluster initialRequestShard). */
  readonly initialHashKey: Uint8Array;
  /** The worker owning a shard, or undefined while the shard has no owner. */
  readonly route: (shard: number) => WorkerLink | undefined;
  /** Every worker this edge relays to (told when a stream closes, RFC 9329 §6). */
  readonly workers: () => Iterable<WorkerLink>;
  /** A frame whose shard has no owner right now (cluster: retried after the lease table moves). */
  readonly unrouted?: (frame: InboundFrame) => void;
  readonly maxConnections?: number;
  readonly maxConnectionsPerAddress?: number;
  readonly prefixTimeoutMs?: number;
  readonly idleTimeoutMs?: number;
  /** Queued output octets per stream past which ESP is dropped ('congested'). */
  readonly maxWriteBuffer?: number;
  /** Unread IKE output octets per stream past which the stream is closed (ike_output_overflow). */
  readonly maxIkeBuffer?: number;
  /**
   * Count IKE messages relayed in `ikegate_ike_messages_total` (a cluster edge's own metrics);
   * off where the worker shares this process's metrics (`ikegate up`), so nothing counts twice.
   */
  readonly countIkeMessages?: boolean;
}

export interface BoundPorts {
  readonly ike?: number;
  readonly natT?: number;
  readonly tcp?: number;
  readonly tls?: number;
}

interface StreamConnection {
  readonly path: PeerPath;
  readonly stream: IketcpStream;
}

const DEFAULTS = {
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  prefixTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxWriteBuffer: 1 << 20,
  maxIkeBuffer: 256 * 1024,
};

/** The real binds for `listen`: UDP 500/4500, TCP and TLS (handshake within the prefix timeout). */
export function edgeBindsFromSettings(settings: EdgeSettings): ResponderBinds {
  const { udp, tcp, tls } = settings.listen;
  return {
    ...(udp
      ? {
          ike: new NodeUdpBind(udp.address, udp.ikePort, udp.receiveBufferBytes),
          natT: new NodeUdpBind(udp.address, udp.natTPort, udp.receiveBufferBytes),
        }
      : {}),
    ...(tcp ? { tcp: new NodeTcpListener(tcp.address, tcp.port) } : {}),
    ...(tls
      ? {
          tls: new NodeTlsListener({
            address: tls.address,
            port: tls.port,
            certificate: tls.certificate,
            key: tls.key,
            // A TLS handshake must finish within the prefix timeout; caps apply from the TCP accept on.
            handshakeTimeoutMs: settings.prefixTimeoutMs ?? DEFAULTS.prefixTimeoutMs,
            ...(tls.keylogFile ? { keylogFile: tls.keylogFile } : {}),
          }),
        }
      : {}),
  };
}

/** UDP peer paths kept (one object per 4-tuple); past it the cache starts again empty. */
export const UDP_PATHS_MAX = 32_768;

export class Edge implements EdgeLink {
  readonly #s: EdgeSettings;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  readonly #binds: ResponderBinds;
  #ikeLocal: Endpoint | undefined;
  #natTLocal: Endpoint | undefined;
  readonly #streams = new Map<string, StreamConnection>();
  readonly #perAddress = new Map<string, number>();
  /**
   * UDP peer paths by local endpoint, remote address and port: one PeerPath per 4-tuple instead of
   * one per datagram, so the worker and the relay find a peer's path by identity (their per-path
   * caches) and no connection name is built per datagram (issue #14). Bounded: spoofed sources
   * empty it at UDP_PATHS_MAX, they cannot grow it.
   */
  readonly #udpPaths = new Map<Endpoint, Map<string, Map<number, PeerPath>>>();
  #udpPathCount = 0;
  #admitted = 0;
  #nextConnection = 1;
  /**
   * This process's incarnation, in every stream's name (`tcp:<incarnation>:<n>`): a restarted edge
   * never reuses a dead stream's name, so no SA sends to another peer's stream, and workers can
   * tell that the streams of an earlier incarnation are gone (RelayServer).
   */
  readonly incarnation = randomBytes(4).toString('hex');
  #ports: BoundPorts = {};
  #draining = false;
  readonly #drainTimers: NodeJS.Timeout[] = [];
  /** A log line per rejection reason (at most one per 10 s each): the metrics count every one. */
  readonly #rejected: RejectionLog;
  /** Stops following the UDP binds' kernel counters (Metrics.follow), at close(). */
  readonly #unfollow: (() => void)[] = [];

  /**
   * `binds` default to the real sockets of `settings.listen`; a test passes in-memory ones
   * (@ikegate/transport/testing). The edge opens them in start() and closes them in close().
   */
  constructor(settings: EdgeSettings, log: Logger, metrics: Metrics, binds?: ResponderBinds) {
    this.#s = settings;
    this.#log = log;
    this.#metrics = metrics;
    this.#rejected = new RejectionLog(log);
    this.#binds = binds ?? edgeBindsFromSettings(settings);
  }

  /** A drop: counted always, logged at most once per 10 s per reason (RejectionLog). */
  #drop(layer: string, reason: string, path?: PeerPath): void {
    this.#metrics.drops.inc({ layer, reason });
    this.#rejected.note(layer, reason, () =>
      path ? { transport: path.transport, remote: `${path.remote.address}:${path.remote.port}` } : {},
    );
  }

  get ports(): BoundPorts {
    return this.#ports;
  }

  get connectionCount(): number {
    return this.#streams.size;
  }

  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Drains this edge (POST /v1/edges/{id}/drain): stops accepting TCP/TLS streams at once, then
   * closes the open ones (reason `drain`) spread evenly over `graceMs`, so their peers reconnect
   * through another edge a few at a time (RFC 9329 §6: the initiator re-establishes the stream;
   * the worker holds each SA for it under the wait-for-reconnect policy). UDP stays open: its
   * peers move when the address they use leads elsewhere. Idempotent.
   */
  async drain(graceMs: number): Promise<number> {
    if (this.#draining) return this.#streams.size;
    this.#draining = true;
    const { tcp, tls } = this.#binds;
    await Promise.all([tcp?.close(), tls?.close()]);
    const streams = [...this.#streams.values()];
    const step = streams.length > 0 ? graceMs / streams.length : 0;
    streams.forEach((c, i) => {
      const t = setTimeout(() => c.stream.close('drain'), Math.floor(i * step));
      t.unref();
      this.#drainTimers.push(t);
    });
    this.#log.info({ streams: streams.length, graceMs }, 'edge-draining');
    return streams.length;
  }

  async start(): Promise<BoundPorts> {
    const { ike, natT, tcp, tls } = this.#binds;
    const ports: { -readonly [K in keyof BoundPorts]: BoundPorts[K] } = {};
    let address: string | undefined;
    if (ike) {
      this.#ikeLocal = await ike.open((d, a, p) => this.#onUdp(d, a, p, this.#ikeLocal!, false));
      this.#watchUdp(ike, this.#ikeLocal);
      ports.ike = this.#ikeLocal.port;
      address ??= this.#ikeLocal.address;
    }
    if (natT) {
      this.#natTLocal = await natT.open((d, a, p) => this.#onUdp(d, a, p, this.#natTLocal!, true));
      this.#watchUdp(natT, this.#natTLocal);
      ports.natT = this.#natTLocal.port;
      address ??= this.#natTLocal.address;
    }
    for (const transport of [...(tcp ? ['tcp'] : []), ...(tls ? ['tls'] : [])])
      this.#zeroStreamSeries(transport);
    if (tcp) {
      const local = await tcp.listen(this.#acceptor('tcp'));
      ports.tcp = local.port;
      address ??= local.address;
    }
    if (tls) {
      const local = await tls.listen(this.#acceptor('tls'));
      ports.tls = local.port;
      // The series a dashboard shows exist from the start (at 0).
      this.#metrics.tlsHandshakes.inc({ result: 'ok', version: 'TLSv1.3', reason: '' }, 0);
      for (const reason of ['timeout', 'protocol'])
        this.#metrics.tlsHandshakes.inc({ result: 'failed', version: '', reason }, 0);
      address ??= local.address;
    }
    this.#ports = ports;
    this.#log.info({ ...ports, address }, 'edge-listening');
    return ports;
  }

  // --- UDP ---------------------------------------------------------------------------------------

  /**
   * Logs the receive buffer the kernel gave a real UDP port (warns when it is less than asked: capped
   * by net.core.rmem_max), and counts the datagrams the kernel drops there, which the process never
   * sees, as `ikegate_drops_total{layer="udp",reason="receive_buffer_full"}` (issue #14).
   */
  #watchUdp(bind: DatagramBind, local: Endpoint): void {
    const stats = bind.stats?.();
    if (!stats) return;
    const fields = {
      port: local.port,
      requested: stats.requestedReceiveBuffer,
      granted: stats.receiveBuffer,
      receivePath: stats.receivePath,
      ...(bind instanceof NodeUdpBind && bind.dgramBecause !== undefined
        ? { dgramBecause: bind.dgramBecause }
        : {}),
    };
    // Linux reports twice the size it set (its own bookkeeping included).
    const expected = stats.requestedReceiveBuffer * (process.platform === 'linux' ? 2 : 1);
    if (stats.receiveBuffer < expected)
      this.#log.warn(
        { ...fields, hint: 'raise net.core.rmem_max to listen.udp.receiveBufferBytes' },
        'udp-receive-buffer-capped',
      );
    else this.#log.info(fields, 'udp-receive-buffer');
    this.#unfollow.push(
      this.#metrics.follow(this.#metrics.drops, ['udp', 'receive_buffer_full'], () => bind.stats?.()?.drops),
    );
    // The batched path drops a datagram the kernel will not take now (dgram would queue it).
    if (stats.sendErrors !== undefined)
      this.#unfollow.push(
        this.#metrics.follow(this.#metrics.drops, ['udp', 'send_failed'], () => bind.stats?.()?.sendErrors),
      );
  }

  #udpPath(local: Endpoint, address: string, port: number): PeerPath {
    let byAddress = this.#udpPaths.get(local);
    if (!byAddress) this.#udpPaths.set(local, (byAddress = new Map()));
    let byPort = byAddress.get(address);
    const known = byPort?.get(port);
    if (known) return known;
    if (this.#udpPathCount >= UDP_PATHS_MAX) {
      this.#udpPaths.clear();
      this.#udpPathCount = 0;
      return this.#udpPath(local, address, port);
    }
    if (!byPort) byAddress.set(address, (byPort = new Map()));
    const path: PeerPath = {
      // join, not a template: one flat string instead of a tree of four, held as long as the path
      // (and by the worker's SA as its path id; issue #14, memory per SA).
      connection: ['udp', local.port, address, port].join(':'),
      transport: 'udp',
      local,
      remote: { address, port },
    };
    byPort.set(port, path);
    this.#udpPathCount++;
    return path;
  }

  #onUdp(bytes: Uint8Array, address: string, port: number, local: Endpoint, natT: boolean): void {
    if (port === 0) {
      // No reply can go to port 0 (dgram refuses to send there): a forged source, dropped here
      // before it makes a path or reaches a worker.
      this.#rejected.note('udp', 'source_port_zero', () => ({ remote: address }));
      return this.#metrics.hot(this.#metrics.drops, 'udp', 'source_port_zero').inc();
    }
    const path = this.#udpPath(local, address, port);
    this.#metrics.hot(this.#metrics.frameBytes, 'udp', 'in').inc(bytes.length);
    if (!natT) return this.#routeIke(bytes, path);
    const c = classifyUdpPayload(bytes);
    switch (c.kind) {
      case 'ike':
        return this.#routeIke(c.message, path);
      case 'esp':
        return this.#routeEsp(c.packet, path);
      case 'keepalive':
        this.#metrics.hot(this.#metrics.frames, 'udp', 'keepalive', 'in').inc();
        return;
      case 'drop':
        return this.#drop('udp', c.reason, path);
    }
  }

  // --- TCP and TLS (RFC 9329) --------------------------------------------------------------------

  #acceptor(transport: StreamTransport): StreamAcceptor {
    return {
      admit: (remote) => this.#admit(remote.address, transport),
      accepted: (s) => {
        if (transport === 'tls')
          this.#metrics.tlsHandshakes.inc({ result: 'ok', version: s.tlsVersion ?? 'unknown', reason: '' });
        this.#onStream(s, transport);
      },
      handshakeFailed: (message, code) => {
        const reason = tlsFailureReason(code, message);
        this.#metrics.tlsHandshakes.inc({ result: 'failed', version: '', reason });
        this.#metrics.drops.inc({ layer: 'tls', reason: 'handshake_failed' });
        this.#log.debug({ err: message, code, reason }, 'tls-handshake-failed');
      },
      released: (remote) => this.#release(remote.address),
    };
  }

  /**
   * Connection caps (total and per peer address), applied when TCP accepts: a TLS peer counts
   * from its first SYN, not from the end of its handshake. `#release` gives the slot back.
   */
  #admit(remote: string, transport: StreamTransport): boolean {
    const address = connectionKey(remote);
    const perAddress = this.#perAddress.get(address) ?? 0;
    const max = this.#s.maxConnections ?? DEFAULTS.maxConnections;
    const maxPer = this.#s.maxConnectionsPerAddress ?? DEFAULTS.maxConnectionsPerAddress;
    if (this.#admitted >= max || perAddress >= maxPer) {
      this.#metrics.connectionEvents.inc({ transport, event: 'refused', reason: 'connection_limit' });
      this.#rejected.note('edge', 'connection_limit', {
        transport,
        remote,
        ...(this.#admitted >= max ? { limit: 'maxConnections' } : { limit: 'maxConnectionsPerAddress' }),
      });
      return false;
    }
    this.#admitted++;
    this.#perAddress.set(address, perAddress + 1);
    return true;
  }

  #release(remote: string): void {
    const address = connectionKey(remote);
    this.#admitted--;
    const n = (this.#perAddress.get(address) ?? 1) - 1;
    if (n <= 0) this.#perAddress.delete(address);
    else this.#perAddress.set(address, n);
  }

  #onStream(accepted: AcceptedStream, transport: StreamTransport): void {
    const id = `${transport}:${this.incarnation}:${this.#nextConnection++}`;
    const path: PeerPath = { connection: id, transport, local: accepted.local, remote: accepted.remote };
    const bytesIn = this.#metrics.hot(this.#metrics.frameBytes, transport, 'in');
    const stream = new IketcpStream(accepted.duplex, {
      role: 'responder',
      prefixTimeoutMs: this.#s.prefixTimeoutMs ?? DEFAULTS.prefixTimeoutMs,
      idleTimeoutMs: this.#s.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
      maxEspBuffer: this.#s.maxWriteBuffer ?? DEFAULTS.maxWriteBuffer,
      maxIkeBuffer: this.#s.maxIkeBuffer ?? DEFAULTS.maxIkeBuffer,
      onOctetsIn: (n) => bytesIn.inc(n),
      onEvent: (e) => this.#onStreamEvent(path, e),
    });
    this.#streams.set(id, { path, stream });
    this.#metrics.connections.inc({ transport });
    this.#metrics.connectionEvents.inc({ transport, event: 'opened', reason: '' });
    this.#log.debug(
      { connection: id, remote: `${path.remote.address}:${path.remote.port}` },
      'connection-opened',
    );
    // Accepted as the drain began (a TLS handshake that ended after it): not one this edge keeps.
    if (this.#draining) stream.close('drain');
  }

  /** Views in `e` are valid during this call only; routing copies what outlives it (#unrouted). */
  #onStreamEvent(path: PeerPath, e: IketcpStreamEvent): void {
    switch (e.kind) {
      case 'ike':
        return this.#routeIke(e.message, path);
      case 'esp':
        return this.#routeEsp(e.packet, path);
      case 'keepalive':
        // RFC 9329 §3: NAT keepalives have no place on a stream; the frame is dropped.
        this.#metrics.drops.inc({ layer: 'iketcp', reason: 'keepalive' });
        return;
      case 'drop':
        return this.#drop('iketcp', e.reason, path);
      case 'close':
        return this.#onStreamClosed(path, e.reason, e.origin);
    }
  }

  /**
   * The stream series a dashboard or an alert waits for exist from the start (at 0): a first
   * event before the first scrape still shows in rate() and increase().
   */
  #zeroStreamSeries(transport: string): void {
    for (const reason of ['bad_prefix', 'prefix_timeout', 'idle', 'peer_closed'])
      this.#metrics.connectionEvents.inc({ transport, event: 'closed', reason }, 0);
    this.#metrics.connectionEvents.inc({ transport, event: 'opened', reason: '' }, 0);
    this.#metrics.connectionEvents.inc({ transport, event: 'refused', reason: 'connection_limit' }, 0);
    for (const reason of ['bad_prefix', 'prefix_timeout'])
      this.#metrics.drops.inc({ layer: 'iketcp', reason }, 0);
  }

  #onStreamClosed(path: PeerPath, reason: string, origin: IketcpCloseOrigin): void {
    const transport = path.transport;
    if (origin !== 'peer') {
      // Our decision (PROTOCOL.md reason): logged and counted as 'closing' before 'closed'.
      this.#log.info(
        { connection: path.connection, remote: path.remote.address, reason },
        'connection-closing',
      );
      this.#metrics.connectionEvents.inc({ transport, event: 'closing', reason });
    }
    if (origin === 'protocol') this.#metrics.drops.inc({ layer: 'iketcp', reason });
    if (reason === 'ike_output_overflow') this.#metrics.drops.inc({ layer: 'edge', reason });
    if (!this.#streams.delete(path.connection)) return;
    this.#metrics.connections.dec({ transport });
    this.#metrics.connectionEvents.inc({ transport, event: 'closed', reason });
    this.#log.debug({ connection: path.connection, reason }, 'connection-closed');
    for (const w of this.#s.workers()) w.connectionClosed(path);
  }

  // --- routing -----------------------------------------------------------------------------------

  #routeIke(message: Uint8Array, path: PeerPath): void {
    this.#metrics.hot(this.#metrics.frames, path.transport, 'ike', 'in').inc();
    if (this.#s.countIkeMessages)
      this.#metrics.ikeMessages.inc({ direction: 'in', exchange: exchangeLabel(message) });
    const d = routeIkeMessage(message, path.remote.address, this.#s.initialHashKey, this.#s.layout);
    if (d.kind === 'drop') return this.#drop('edge', `ike_${d.reason}`, path);
    const worker = this.#s.route(d.shard);
    const frame: InboundFrame = { kind: 'ike', path, bytes: message, shard: d.shard };
    if (worker) worker.deliver(frame);
    else this.#unrouted(frame);
  }

  #routeEsp(packet: Uint8Array, path: PeerPath): void {
    this.#metrics.hot(this.#metrics.frames, path.transport, 'esp', 'in').inc();
    const d = routeEspPacket(packet, this.#s.layout);
    if (d.kind === 'drop') return this.#drop('edge', `esp_${d.reason}`, path);
    const worker = this.#s.route(d.shard);
    const frame: InboundFrame = { kind: 'esp', path, bytes: packet, shard: d.shard };
    if (worker) worker.deliver(frame);
    else this.#unrouted(frame);
  }

  #unrouted(frame: InboundFrame): void {
    if (!this.#s.unrouted) return this.#drop('edge', 'no_owner', frame.path);
    // The frame outlives this turn (it waits for a new owner): copy it out of the decoder's buffer.
    // `slice()` copies a plain Uint8Array (a frame reassembled in that reused buffer) and is a
    // view of a Buffer (a datagram or a stream chunk, fresh memory per read, never reused).
    this.#s.unrouted({ ...frame, bytes: frame.bytes.slice() });
  }

  // --- sending -----------------------------------------------------------------------------------

  send(frame: OutboundFrame): SendResult {
    const { path } = frame;
    this.#metrics.hot(this.#metrics.frames, path.transport, frame.kind, 'out').inc();
    if (frame.kind === 'ike' && this.#s.countIkeMessages)
      this.#metrics.ikeMessages.inc({ direction: 'out', exchange: exchangeLabel(frame.bytes) });
    if (path.transport === 'udp') {
      const natT = path.local.port === this.#natTLocal?.port;
      const bind: DatagramBind | undefined =
        natT || frame.kind === 'esp' ? this.#binds.natT : this.#binds.ike;
      if (!bind) return 'no-connection';
      const bytes = frame.kind === 'ike' && natT ? encodeNonEspMarker(frame.bytes) : frame.bytes;
      if (frame.kind === 'esp' && bind.sendCoalesced)
        bind.sendCoalesced(bytes, path.remote.address, path.remote.port);
      else bind.send(bytes, path.remote.address, path.remote.port);
      this.#metrics.hot(this.#metrics.frameBytes, 'udp', 'out').inc(bytes.length);
      return 'sent';
    }
    const conn = this.#streams.get(path.connection);
    const r = !conn
      ? 'closed'
      : frame.kind === 'ike'
        ? conn.stream.sendIke(
            frame.bytes,
            frame.closeAfter !== undefined ? { closeAfter: frame.closeAfter } : undefined,
          )
        : conn.stream.sendEsp(frame.bytes);
    switch (r) {
      case 'sent': {
        const length =
          frame.kind === 'ike' ? ikeFrameLength(frame.bytes.length) : espFrameLength(frame.bytes.length);
        this.#metrics.hot(this.#metrics.frameBytes, path.transport, 'out').inc(length);
        return 'sent';
      }
      case 'congested':
        return 'congested';
      case 'closed':
        this.#drop('edge', 'no_connection', path);
        return 'no-connection';
    }
  }

  /**
   * Stream paths: IketcpStream.sendEsp copies the packet before it returns. UDP: when the NAT-T
   * bind's send has handed it to the kernel by then (the batched path).
   */
  espCopied(path: PeerPath): boolean {
    return path.transport !== 'udp' || this.#binds.natT?.sendsCopy === true;
  }

  espCongested(path: PeerPath, espLength: number): boolean {
    if (path.transport === 'udp') return false;
    return this.#streams.get(path.connection)?.stream.espCongested(espLength) ?? false;
  }

  /** Closes every stream (reason `shutdown`) and every bind. */
  async close(): Promise<void> {
    for (const t of this.#drainTimers) clearTimeout(t);
    // The binds' kernel counters: read a last time while they are open, then no more (the metrics
    // registry outlives the edge: a scrape would keep reading closed sockets and keep them alive).
    for (const unfollow of this.#unfollow.splice(0)) unfollow();
    for (const c of this.#streams.values()) c.stream.close('shutdown');
    const { ike, natT, tcp, tls } = this.#binds;
    await Promise.all([ike?.close(), natT?.close(), tcp?.close(), tls?.close()]);
  }
}

export type { PeerTransport };

/**
 * What a stream counts under for maxConnectionsPerAddress: an IPv4 address (also written
 * IPv4-mapped, ::ffff:a.b.c.d), or an IPv6 address's /64. One host is routinely given a whole
 * /64: counted per address it could take every slot of the edge from one prefix.
 */
export function connectionKey(address: string): string {
  const ip = parseIp(address.split('%')[0]!);
  if (ip === undefined || ip.length === 4) return address;
  if (ip.subarray(0, 10).every((b) => b === 0) && ip[10] === 0xff && ip[11] === 0xff)
    return ip.subarray(12).join('.');
  return `${Buffer.from(ip.subarray(0, 8)).toString('hex')}/64`;
}
