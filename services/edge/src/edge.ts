/**
 * An edge: the listeners peers connect to. It holds no SA state: every frame is routed by its SPI
 * (libs/cluster routing.ts, the ARCHITECTURE.md rule) to the worker that owns the shard, and the
 * worker's answers come back through `send`. Listeners:
 *
 * - UDP 500 (IKE) and 4500 (NAT-T, RFC 3948: IKE behind a non-ESP marker, ESP, 0xFF keepalives);
 * - TCP 4500 (RFC 9329: "IKETCP" prefix, then 16-bit length-framed IKE and ESP);
 * - TLS 443 carrying the same RFC 9329 stream (RFC 9329 §8).
 *
 * Abuse bounds (PROTOCOL.md, RFC 9329 §3/§5): a stream closes on a bad prefix, an oversize or
 * garbage length, or when the prefix does not arrive within `prefixTimeoutMs`; an idle stream closes
 * after `idleTimeoutMs`; connections are capped in total and per peer address; each stream buffers at
 * most one frame (the decoder) and `maxWriteBuffer` octets of output, past which ESP is dropped.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { appendFileSync } from 'node:fs';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
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
import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import { encodeEspFrame, encodeIkeFrame, IketcpDecoder } from '@ikegate/iketcp';
import type { Logger, Metrics } from '@ikegate/telemetry';

export interface EdgeListenSettings {
  readonly udp?: { readonly address: string; readonly ikePort: number; readonly natTPort: number };
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
  readonly maxWriteBuffer?: number;
}

export interface BoundPorts {
  readonly ike?: number;
  readonly natT?: number;
  readonly tcp?: number;
  readonly tls?: number;
}

interface StreamConnection {
  readonly socket: Socket;
  /** Set when we close the stream ourselves (PROTOCOL.md reason); else the peer closed it. */
  closeReason?: string;
  readonly path: PeerPath;
  readonly decoder: IketcpDecoder;
  prefixTimer?: NodeJS.Timeout;
}

const DEFAULTS = {
  maxConnections: 10_000,
  maxConnectionsPerAddress: 256,
  prefixTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxWriteBuffer: 1 << 20,
};

export class Edge implements EdgeLink {
  readonly #s: EdgeSettings;
  readonly #log: Logger;
  readonly #metrics: Metrics;
  #ike: UdpSocket | undefined;
  #natT: UdpSocket | undefined;
  #tcp: Server | undefined;
  #tls: TlsServer | undefined;
  readonly #streams = new Map<string, StreamConnection>();
  readonly #perAddress = new Map<string, number>();
  #admitted = 0;
  #nextConnection = 1;
  #ports: BoundPorts = {};

  constructor(settings: EdgeSettings, log: Logger, metrics: Metrics) {
    this.#s = settings;
    this.#log = log;
    this.#metrics = metrics;
  }

  get ports(): BoundPorts {
    return this.#ports;
  }

  get connectionCount(): number {
    return this.#streams.size;
  }

  async start(): Promise<BoundPorts> {
    const { udp, tcp, tls } = this.#s.listen;
    const ports: { -readonly [K in keyof BoundPorts]: BoundPorts[K] } = {};
    if (udp) {
      this.#ike = await bindUdp(udp.address, udp.ikePort);
      this.#natT = await bindUdp(udp.address, udp.natTPort);
      this.#ike.on('message', (m, r) => this.#onUdp(m, r.address, r.port, this.#ike!, false));
      this.#natT.on('message', (m, r) => this.#onUdp(m, r.address, r.port, this.#natT!, true));
      ports.ike = this.#ike.address().port;
      ports.natT = this.#natT.address().port;
    }
    if (tcp) {
      this.#tcp = createServer({ noDelay: true }, (s) => {
        if (this.#admit(s, 'tcp')) this.#onStream(s, 'tcp');
      });
      ports.tcp = await listen(this.#tcp, tcp.address, tcp.port);
    }
    if (tls) {
      // A TLS handshake must finish within the prefix timeout; caps apply from the TCP accept on.
      this.#tls = createTlsServer(
        {
          cert: tls.certificate,
          key: tls.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: this.#s.prefixTimeoutMs ?? DEFAULTS.prefixTimeoutMs,
        },
        (s) => this.#onStream(s, 'tls'),
      );
      this.#tls.on('connection', (raw: Socket) => {
        if (!this.#admit(raw, 'tls')) raw.destroy();
      });
      this.#tls.on('tlsClientError', (err) => {
        this.#metrics.drops.inc({ layer: 'tls', reason: 'handshake_failed' });
        this.#log.debug({ err: err.message }, 'tls-handshake-failed');
      });
      if (tls.keylogFile) {
        const file = tls.keylogFile;
        this.#tls.on('keylog', (line) => appendFileSync(file, line));
      }
      ports.tls = await listen(this.#tls, tls.address, tls.port);
    }
    this.#ports = ports;
    this.#log.info({ ...ports, address: udp?.address ?? tcp?.address ?? tls?.address }, 'edge-listening');
    return ports;
  }

  // --- UDP ---------------------------------------------------------------------------------------

  #onUdp(m: Buffer, address: string, port: number, socket: UdpSocket, natT: boolean): void {
    const localPort = natT ? this.#ports.natT! : this.#ports.ike!;
    const bytes = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
    const path: PeerPath = {
      connection: `udp:${localPort}:${address}:${port}`,
      transport: 'udp',
      local: { address: socket.address().address, port: localPort },
      remote: { address, port },
    };
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
        this.#metrics.drops.inc({ layer: 'udp', reason: c.reason });
        return;
    }
  }

  // --- TCP and TLS (RFC 9329) --------------------------------------------------------------------

  /**
   * Connection caps (total and per peer address), applied when TCP accepts: a TLS peer counts
   * from its first SYN, not from the end of its handshake. Releases the slot when the socket closes.
   */
  #admit(socket: Socket, transport: 'tcp' | 'tls'): boolean {
    const address = socket.remoteAddress ?? '';
    const perAddress = this.#perAddress.get(address) ?? 0;
    const max = this.#s.maxConnections ?? DEFAULTS.maxConnections;
    const maxPer = this.#s.maxConnectionsPerAddress ?? DEFAULTS.maxConnectionsPerAddress;
    if (this.#admitted >= max || perAddress >= maxPer) {
      this.#metrics.connectionEvents.inc({ transport, event: 'refused', reason: 'connection_limit' });
      socket.destroy();
      return false;
    }
    this.#admitted++;
    this.#perAddress.set(address, perAddress + 1);
    socket.once('close', () => {
      this.#admitted--;
      const n = (this.#perAddress.get(address) ?? 1) - 1;
      if (n <= 0) this.#perAddress.delete(address);
      else this.#perAddress.set(address, n);
    });
    return true;
  }

  #onStream(socket: Socket | TLSSocket, transport: 'tcp' | 'tls'): void {
    const address = socket.remoteAddress ?? '';
    const id = `${transport}:${this.#nextConnection++}`;
    const conn: StreamConnection = {
      socket,
      decoder: new IketcpDecoder({ expectPrefix: true }),
      path: {
        connection: id,
        transport,
        local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
        remote: { address, port: socket.remotePort ?? 0 },
      },
    };
    this.#streams.set(id, conn);
    this.#metrics.connections.inc({ transport });
    this.#metrics.connectionEvents.inc({ transport, event: 'opened', reason: '' });
    this.#log.debug({ connection: id, remote: `${address}:${conn.path.remote.port}` }, 'connection-opened');
    // RFC 9329 §3: the prefix must come first; a peer that never sends it holds no resources long.
    conn.prefixTimer = setTimeout(
      () => this.#closeStream(conn, 'prefix_timeout'),
      this.#s.prefixTimeoutMs ?? DEFAULTS.prefixTimeoutMs,
    );
    conn.prefixTimer.unref();
    socket.setTimeout(this.#s.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs, () => this.#closeStream(conn, 'idle'));
    socket.setNoDelay(true);
    let reason = 'peer_closed';
    socket.on('data', (chunk: Buffer) => {
      conn.decoder.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      this.#metrics.hot(this.#metrics.frameBytes, transport, 'in').inc(chunk.length);
      this.#drain(conn);
    });
    socket.on('end', () => {
      conn.decoder.end();
      this.#drain(conn);
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      reason = conn.closeReason ?? (err.code === 'ECONNRESET' ? 'reset' : 'error');
    });
    socket.on('close', () => {
      clearTimeout(conn.prefixTimer);
      if (conn.closeReason) reason = conn.closeReason;
      if (this.#streams.delete(id)) {
        this.#metrics.connections.dec({ transport });
        this.#metrics.connectionEvents.inc({ transport, event: 'closed', reason });
        this.#log.debug({ connection: id, reason }, 'connection-closed');
        for (const w of this.#s.workers()) w.connectionClosed(conn.path);
      }
    });
  }

  #drain(conn: StreamConnection): void {
    for (let e = conn.decoder.poll(); e !== undefined; e = conn.decoder.poll()) {
      switch (e.kind) {
        case 'prefix':
          clearTimeout(conn.prefixTimer);
          break;
        case 'ike':
          this.#routeIke(e.message, conn.path);
          break;
        case 'esp':
          this.#routeEsp(e.packet, conn.path);
          break;
        case 'keepalive':
          // RFC 9329 §3: NAT keepalives have no place on a stream; the frame is dropped.
          this.#metrics.drops.inc({ layer: 'iketcp', reason: 'keepalive' });
          break;
        case 'drop':
          this.#metrics.drops.inc({ layer: 'iketcp', reason: e.reason });
          break;
        case 'close':
          this.#metrics.drops.inc({ layer: 'iketcp', reason: e.reason });
          this.#closeStream(conn, e.reason);
          return;
        case 'end':
          if (e.discarded > 0) this.#metrics.drops.inc({ layer: 'iketcp', reason: 'truncated' });
          break;
      }
    }
  }

  #closeStream(conn: StreamConnection, reason: string): void {
    this.#log.info(
      { connection: conn.path.connection, remote: conn.path.remote.address, reason },
      'connection-closing',
    );
    conn.closeReason ??= reason;
    conn.socket.once('error', () => undefined);
    conn.socket.destroy();
    this.#metrics.connectionEvents.inc({ transport: conn.path.transport, event: 'closing', reason });
  }

  // --- routing -----------------------------------------------------------------------------------

  #routeIke(message: Uint8Array, path: PeerPath): void {
    this.#metrics.hot(this.#metrics.frames, path.transport, 'ike', 'in').inc();
    const d = routeIkeMessage(message, path.remote.address, this.#s.initialHashKey, this.#s.layout);
    if (d.kind === 'drop') return void this.#metrics.drops.inc({ layer: 'edge', reason: `ike_${d.reason}` });
    const worker = this.#s.route(d.shard);
    const frame: InboundFrame = { kind: 'ike', path, bytes: message, shard: d.shard };
    if (worker) worker.deliver(frame);
    else this.#unrouted(frame);
  }

  #routeEsp(packet: Uint8Array, path: PeerPath): void {
    this.#metrics.hot(this.#metrics.frames, path.transport, 'esp', 'in').inc();
    const d = routeEspPacket(packet, this.#s.layout);
    if (d.kind === 'drop') return void this.#metrics.drops.inc({ layer: 'edge', reason: `esp_${d.reason}` });
    const worker = this.#s.route(d.shard);
    const frame: InboundFrame = { kind: 'esp', path, bytes: packet, shard: d.shard };
    if (worker) worker.deliver(frame);
    else this.#unrouted(frame);
  }

  #unrouted(frame: InboundFrame): void {
    if (!this.#s.unrouted) return void this.#metrics.drops.inc({ layer: 'edge', reason: 'no_owner' });
    // The frame outlives this turn (it waits for a new owner): copy it out of the decoder's buffer.
    this.#s.unrouted({ ...frame, bytes: frame.bytes.slice() });
  }

  // --- sending -----------------------------------------------------------------------------------

  send(frame: OutboundFrame): SendResult {
    const { path } = frame;
    this.#metrics.hot(this.#metrics.frames, path.transport, frame.kind, 'out').inc();
    if (path.transport === 'udp') {
      const natT = path.local.port === this.#ports.natT;
      const socket = natT || frame.kind === 'esp' ? this.#natT : this.#ike;
      if (!socket) return 'no-connection';
      const bytes = frame.kind === 'ike' && natT ? encodeNonEspMarker(frame.bytes) : frame.bytes;
      socket.send(bytes, path.remote.port, path.remote.address);
      this.#metrics.hot(this.#metrics.frameBytes, 'udp', 'out').inc(bytes.length);
      return 'sent';
    }
    const conn = this.#streams.get(path.connection);
    if (!conn || conn.socket.destroyed) {
      this.#metrics.drops.inc({ layer: 'edge', reason: 'no_connection' });
      return 'no-connection';
    }
    if (
      frame.kind === 'esp' &&
      conn.socket.writableLength > (this.#s.maxWriteBuffer ?? DEFAULTS.maxWriteBuffer)
    )
      return 'congested';
    const bytes = frame.kind === 'ike' ? encodeIkeFrame(frame.bytes) : encodeEspFrame(frame.bytes);
    conn.socket.write(bytes);
    this.#metrics.hot(this.#metrics.frameBytes, path.transport, 'out').inc(bytes.length);
    return 'sent';
  }

  async close(): Promise<void> {
    for (const c of this.#streams.values()) c.socket.destroy();
    await Promise.all([
      this.#ike ? new Promise<void>((r) => this.#ike!.close(() => r())) : undefined,
      this.#natT ? new Promise<void>((r) => this.#natT!.close(() => r())) : undefined,
      this.#tcp ? new Promise<void>((r) => this.#tcp!.close(() => r())) : undefined,
      this.#tls ? new Promise<void>((r) => this.#tls!.close(() => r())) : undefined,
    ]);
  }
}

function bindUdp(address: string, port: number): Promise<UdpSocket> {
  const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(port, address, () => {
      socket.off('error', reject);
      socket.on('error', () => undefined);
      resolve(socket);
    });
  });
}

function listen(server: Server, address: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
}

export type { PeerTransport };
