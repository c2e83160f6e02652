/**
 * The real binds (./binds.ts) on node's dgram, net and tls. Socket errors never escape: a UDP send
 * error is ignored (best effort), an accepted connection's errors belong to whoever took it, a
 * failed TLS handshake is reported through `handshakeFailed`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import { appendFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type TLSSocket } from 'node:tls';
import type {
  DatagramBind,
  DatagramReceiver,
  Endpoint,
  StreamAcceptor,
  StreamListener,
  StreamTransport,
} from './binds.js';
import { LocalUsageError } from './errors.js';
import { DEFAULT_UDP_RECEIVE_BUFFER, type UdpSocketStats, udpSocketDrops } from './udp-socket-stats.js';

/**
 * The `lookup` for dgram sockets that send to numeric addresses (issue #14): dgram resolves the
 * destination of every send(), and node's dns.lookup answers a numeric one on the next tick, so
 * each datagram paid a tick and a closure. A numeric address is answered at once (the send goes
 * out within the call); a name still goes to dns.lookup.
 */
export function numericLookup(
  hostname: string,
  options: number | LookupOneOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string, family: number) => void,
): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dnsLookup(hostname, typeof options === 'number' ? { family: options } : options, callback);
}

/**
 * One UDP socket bound to `address`:`port` (port 0: an ephemeral port), with a receive buffer of
 * `receiveBuffer` octets asked for (0: the kernel's default; Linux caps it at net.core.rmem_max).
 */
export class NodeUdpBind implements DatagramBind {
  #socket: UdpSocket | undefined;
  #local: Endpoint | undefined;
  #closed = false;

  constructor(
    readonly address: string,
    readonly port: number,
    readonly receiveBuffer: number = DEFAULT_UDP_RECEIVE_BUFFER,
  ) {
    if (!Number.isSafeInteger(receiveBuffer) || receiveBuffer < 0 || receiveBuffer > 2 ** 31 - 1)
      throw new LocalUsageError(
        'IKEGATE_ERR_TRANSPORT_USAGE',
        `bad UDP receive buffer size ${receiveBuffer}`,
      );
  }

  open(receive: DatagramReceiver): Promise<Endpoint> {
    if (this.#socket || this.#closed) {
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'open() called twice'));
    }
    const socket = createSocket({
      type: this.address.includes(':') ? 'udp6' : 'udp4',
      reuseAddr: false,
      lookup: numericLookup,
      ...(this.receiveBuffer > 0 ? { recvBufferSize: this.receiveBuffer } : {}),
    });
    this.#socket = socket;
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.port, this.address, () => {
        socket.off('error', reject);
        socket.on('error', () => undefined);
        socket.on('message', (m, r) =>
          receive(new Uint8Array(m.buffer, m.byteOffset, m.byteLength), r.address, r.port),
        );
        const a = socket.address();
        this.#local = { address: a.address, port: a.port };
        resolve(this.#local);
      });
    });
  }

  /** The socket's receive buffer and the kernel's drops at it; undefined unless open. */
  stats(): UdpSocketStats | undefined {
    const socket = this.#socket;
    const local = this.#local;
    if (!socket || !local || this.#closed) return undefined;
    let receiveBuffer: number;
    try {
      receiveBuffer = socket.getRecvBufferSize();
    } catch {
      return undefined; // closed under us
    }
    return {
      requestedReceiveBuffer: this.receiveBuffer,
      receiveBuffer,
      drops: udpSocketDrops(local.address, local.port),
    };
  }

  /** Sent within the call for a numeric `address`; dgram keeps `datagram` until the send completes. */
  send(datagram: Uint8Array, address: string, port: number): void {
    if (this.#closed) return;
    this.#socket?.send(datagram, port, address);
  }

  close(): Promise<void> {
    const socket = this.#socket;
    if (this.#closed || !socket) {
      this.#closed = true;
      return Promise.resolve();
    }
    this.#closed = true;
    return new Promise((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // never bound
      }
    });
  }
}

function remoteOf(s: Socket): Endpoint {
  return { address: s.remoteAddress ?? '', port: s.remotePort ?? 0 };
}

function localOf(s: Socket): Endpoint {
  return { address: s.localAddress ?? '', port: s.localPort ?? 0 };
}

function listen(server: Server, address: string, port: number): Promise<Endpoint> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, () => {
      server.off('error', reject);
      const a = server.address();
      resolve(typeof a === 'object' && a ? { address: a.address, port: a.port } : { address, port });
    });
  });
}

function closeServer(server: Server | undefined): Promise<void> {
  return server ? new Promise((resolve) => server.close(() => resolve())) : Promise.resolve();
}

/** Caps apply from the TCP accept: admit, and release on the TCP close. */
function admitted(socket: Socket, acceptor: StreamAcceptor): Endpoint | undefined {
  const remote = remoteOf(socket);
  if (!acceptor.admit(remote)) {
    socket.destroy();
    return undefined;
  }
  socket.once('close', () => acceptor.released(remote));
  return remote;
}

/** RFC 9329 over plain TCP (port 4500 by convention). */
export class NodeTcpListener implements StreamListener {
  readonly transport: StreamTransport = 'tcp';
  #server: Server | undefined;

  constructor(
    readonly address: string,
    readonly port: number,
  ) {}

  listen(acceptor: StreamAcceptor): Promise<Endpoint> {
    if (this.#server)
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'listen() called twice'));
    this.#server = createServer({ noDelay: true }, (socket) => {
      const remote = admitted(socket, acceptor);
      if (!remote) return;
      socket.setNoDelay(true);
      acceptor.accepted({ duplex: socket, local: localOf(socket), remote });
    });
    return listen(this.#server, this.address, this.port);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }
}

export interface NodeTlsListenerOptions {
  readonly address: string;
  readonly port: number;
  /** PEM certificate chain and key. */
  readonly certificate: string;
  readonly key: string;
  /** The TLS handshake must finish within this long after the TCP accept. */
  readonly handshakeTimeoutMs: number;
  /** Append TLS secrets in NSS key log format here (for decrypting captures in tests). */
  readonly keylogFile?: string;
}

/** RFC 9329 inside TLS 1.2 or 1.3 (RFC 9329 §8; port 443 by convention). */
export class NodeTlsListener implements StreamListener {
  readonly transport: StreamTransport = 'tls';
  readonly #o: NodeTlsListenerOptions;
  #server: Server | undefined;

  constructor(options: NodeTlsListenerOptions) {
    this.#o = options;
  }

  listen(acceptor: StreamAcceptor): Promise<Endpoint> {
    if (this.#server)
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'listen() called twice'));
    const o = this.#o;
    const server = createTlsServer(
      { cert: o.certificate, key: o.key, minVersion: 'TLSv1.2', handshakeTimeout: o.handshakeTimeoutMs },
      (s: TLSSocket) => {
        s.setNoDelay(true);
        const version = s.getProtocol();
        acceptor.accepted({
          duplex: s,
          local: localOf(s),
          remote: remoteOf(s),
          ...(version ? { tlsVersion: version } : {}),
        });
      },
    );
    // A TLS peer counts against the caps from its TCP accept, not from the end of its handshake.
    server.on('connection', (raw: Socket) => void admitted(raw, acceptor));
    server.on('tlsClientError', (err: Error & { code?: string }) =>
      acceptor.handshakeFailed(err.message, err.code),
    );
    if (o.keylogFile) {
      const file = o.keylogFile;
      server.on('keylog', (line) => appendFileSync(file, line));
    }
    this.#server = server;
    return listen(server, o.address, o.port);
  }

  close(): Promise<void> {
    return closeServer(this.#server);
  }
}
