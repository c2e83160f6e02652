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
import {
  type NativeUdpAddon,
  type NativeUdpHandle,
  nativeUdpFor,
  type UdpReceivePath,
} from './native-udp.js';
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

/** What one coalesced (UDP_SEGMENT) send may carry: the kernel's limit is 64 segments, 64 KiB. */
const COALESCE_MAX_DATAGRAMS = 64;
const COALESCE_MAX_BYTES = 60 * 1024;
/**
 * errno of a UDP_SEGMENT send that the kernel or the device will never do (udp(7)): EIO (no
 * checksum offload), ENOPROTOOPT, EOPNOTSUPP (no UDP_SEGMENT: the addon asked the kernel).
 */
const GSO_UNSUPPORTED = new Set([5, 92, 95]);

/**
 * One UDP socket bound to `address`:`port` (port 0: an ephemeral port), with a receive buffer of
 * `receiveBuffer` octets asked for (0: the kernel's default; Linux caps it at net.core.rmem_max).
 *
 * Two receive paths, one behaviour (issue #14): `batched`, the native addon (./native-udp.ts:
 * reads until the socket is empty in one callback, UDP GRO, coalesced datagrams cut apart here),
 * and `dgram`, node's, one callback per datagram. `receivePath` (default `IKEGATE_UDP_RECEIVE`,
 * else `auto`: batched when the addon loads) chooses; `stats().receivePath` says which one runs.
 */
export class NodeUdpBind implements DatagramBind {
  #socket: UdpSocket | undefined;
  #native: { addon: NativeUdpAddon; handle: NativeUdpHandle | undefined } | undefined;
  #local: Endpoint | undefined;
  #closed = false;
  /** Why dgram, when it is dgram. */
  readonly dgramBecause: string | undefined;

  constructor(
    readonly address: string,
    readonly port: number,
    readonly receiveBuffer: number = DEFAULT_UDP_RECEIVE_BUFFER,
    receivePath?: 'auto' | UdpReceivePath,
  ) {
    if (!Number.isSafeInteger(receiveBuffer) || receiveBuffer < 0 || receiveBuffer > 2 ** 31 - 1)
      throw new LocalUsageError(
        'IKEGATE_ERR_TRANSPORT_USAGE',
        `bad UDP receive buffer size ${receiveBuffer}`,
      );
    let native: ReturnType<typeof nativeUdpFor>;
    try {
      native = nativeUdpFor(receivePath);
    } catch (e) {
      throw new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', (e as Error).message);
    }
    if ('addon' in native) this.#native = { addon: native.addon, handle: undefined };
    else this.dgramBecause = native.why;
  }

  /** True when send() has handed the datagram to the kernel by the time it returns (batched). */
  get sendsCopy(): boolean {
    return this.#native !== undefined;
  }

  /** `batched` (the native addon) or `dgram`. */
  get receivePath(): UdpReceivePath {
    return this.#native ? 'batched' : 'dgram';
  }

  open(receive: DatagramReceiver): Promise<Endpoint> {
    if (this.#socket || this.#native?.handle || this.#closed) {
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'open() called twice'));
    }
    if (this.#native) return this.#openNative(this.#native, receive);
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

  #openNative(
    native: { addon: NativeUdpAddon; handle: NativeUdpHandle | undefined },
    receive: DatagramReceiver,
  ): Promise<Endpoint> {
    let handle: NativeUdpHandle;
    try {
      handle = native.addon.open(
        this.address,
        this.port,
        this.receiveBuffer,
        (data, segment, address, port) => {
          const n = data.byteLength;
          if (segment === 0) {
            receive(new Uint8Array(data.buffer, data.byteOffset, n), address, port);
            return;
          }
          // GRO: datagrams of `segment` octets back to back, the last one possibly shorter.
          for (let at = 0; at < n && !this.#closed; at += segment)
            receive(
              new Uint8Array(data.buffer, data.byteOffset + at, Math.min(segment, n - at)),
              address,
              port,
            );
        },
      );
    } catch (e) {
      return Promise.reject(e as Error);
    }
    native.handle = handle;
    this.#coalesced.gso = native.addon.features(handle).gso;
    this.#local = { address: this.address, port: native.addon.localPort(handle) };
    return Promise.resolve(this.#local);
  }

  /** The socket's receive buffer and the kernel's drops at it; undefined unless open. */
  stats(): UdpSocketStats | undefined {
    const native = this.#native;
    if (native) {
      const local = this.#local;
      if (!native.handle || !local || this.#closed) return undefined;
      const sendErrors = native.addon.counters(native.handle)[0] + this.#coalescedDrops;
      return {
        requestedReceiveBuffer: this.receiveBuffer,
        receiveBuffer: native.addon.receiveBuffer(native.handle),
        drops: udpSocketDrops(local.address, local.port),
        receivePath: 'batched',
        sendErrors,
      };
    }
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
      receivePath: 'dgram',
      sendErrors: undefined,
    };
  }

  /**
   * Sent within the call for a numeric `address` (dgram keeps `datagram` until the send completes);
   * a name is looked up first. The batched path drops a datagram the kernel refuses and counts it
   * (`stats().sendErrors`); dgram queues it.
   */
  send(datagram: Uint8Array, address: string, port: number): void {
    if (this.#closed) return;
    const native = this.#native;
    if (!native) {
      try {
        this.#socket?.send(datagram, port, address);
      } catch {
        // dgram throws at once for what it can tell is unsendable (port 0, a bad address): a
        // datagram the kernel would refuse, dropped as those are. Never out of a caller's handler.
      }
      return;
    }
    const handle = native.handle;
    if (!handle) return;
    if (this.#coalesced.count > 0) this.#flush(); // in order: what was queued goes first
    if (isIP(address) !== 0) {
      native.addon.send(handle, datagram, address, port, 0);
      return;
    }
    const family = this.address.includes(':') ? 0 : 4;
    const copy = datagram.slice(); // the caller may reuse `datagram` once send returns (sendsCopy)
    dnsLookup(address, { family }, (err, resolved) => {
      if (!err && !this.#closed) native.addon.send(handle, copy, resolved, port, 0);
    });
  }

  /**
   * As send(), but on the batched path datagrams to one destination in one run of JavaScript go out
   * as one UDP_SEGMENT (GSO) send when they are of one size (the last may be shorter): the kernel
   * cuts them apart again, on the wire or at the NIC (issue #14: ESP from a TUN batch). Queued
   * datagrams leave when the run ends (a microtask), before any send(), when another destination
   * or a larger one comes, or at 64 datagrams or 60 KiB. Copied when queued (sendsCopy holds).
   */
  sendCoalesced(datagram: Uint8Array, address: string, port: number): void {
    const c = this.#coalesced;
    if (
      this.#closed ||
      !this.#native?.handle ||
      !c.gso ||
      // c.address was numeric when queued: checked again only for another address, not per packet.
      (address !== c.address && isIP(address) === 0) ||
      datagram.length === 0 ||
      datagram.length > COALESCE_MAX_BYTES
    )
      return this.send(datagram, address, port);
    if (
      c.count > 0 &&
      (port !== c.port ||
        address !== c.address ||
        datagram.length > c.segment ||
        c.length + datagram.length > COALESCE_MAX_BYTES)
    )
      this.#flush();
    if (c.count === 0) {
      if (c.buffer.length === 0) c.buffer = Buffer.allocUnsafe(COALESCE_MAX_BYTES);
      c.address = address;
      c.port = port;
      c.segment = datagram.length;
    }
    c.buffer.set(datagram, c.length);
    c.length += datagram.length;
    c.count++;
    // A shorter datagram ends a GSO send (only the last segment may be short).
    if (datagram.length < c.segment || c.count >= COALESCE_MAX_DATAGRAMS) this.#flush();
    else if (!c.scheduled) {
      c.scheduled = true;
      queueMicrotask(this.#flushTask);
    }
  }

  readonly #coalesced = {
    buffer: Buffer.allocUnsafe(0),
    length: 0,
    count: 0,
    segment: 0,
    /** Always a numeric address (sendCoalesced skips its isIP check for this one). */
    address: '0.0.0.0',
    port: 0,
    scheduled: false,
    /** False once the kernel refused a UDP_SEGMENT send: datagrams go one by one from then on. */
    gso: true,
  };
  /** Datagrams of coalesced sends refused as a whole for a full send buffer (the addon counts the rest). */
  #coalescedDrops = 0;
  readonly #flushTask = (): void => {
    this.#coalesced.scheduled = false;
    this.#flush();
  };

  #flush(): void {
    const c = this.#coalesced;
    const count = c.count;
    if (count === 0) return;
    c.count = 0;
    const length = c.length;
    c.length = 0;
    const native = this.#native;
    if (this.#closed || !native?.handle) return;
    const data = c.buffer.subarray(0, length);
    const rc = native.addon.send(native.handle, data, c.address, c.port, count > 1 ? c.segment : 0);
    if (rc === 0 || count === 1) return;
    // A full send buffer (EAGAIN, ENOBUFS) would refuse them one by one as well: all dropped, counted.
    if (rc === -11 || rc === -105) {
      this.#coalescedDrops += count;
      return;
    }
    // Refused as a whole for what they are (a segment over the path's MTU: EINVAL, ...): one by one,
    // each counted if refused; a kernel or device without UDP GSO gets no more coalesced sends.
    if (GSO_UNSUPPORTED.has(-rc)) c.gso = false;
    for (let at = 0; at < length; at += c.segment)
      native.addon.send(
        native.handle,
        data.subarray(at, Math.min(at + c.segment, length)),
        c.address,
        c.port,
        0,
      );
  }

  close(): Promise<void> {
    const native = this.#native;
    if (native) {
      if (!this.#closed) this.#flush();
      this.#closed = true;
      if (native.handle) native.addon.close(native.handle);
      native.handle = undefined;
      return Promise.resolve();
    }
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

/**
 * Stops accepting: resolves once the listening socket is closed, not when every connection it
 * accepted has ended (what server.close()'s callback waits for): StreamListener.close() leaves
 * those up, and a drain closes them only after this resolves.
 */
function closeServer(server: Server | undefined): Promise<void> {
  if (!server?.listening) return Promise.resolve();
  server.close();
  return new Promise((resolve) => setImmediate(resolve));
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
    // One refused there is destroyed under the TLS socket node already wrapped around it, which
    // then reports a handshake error (ECONNRESET): not a TLS failure, the refusal is counted.
    const refused = new WeakSet<Socket>();
    server.on('connection', (raw: Socket) => {
      if (!admitted(raw, acceptor)) refused.add(raw);
    });
    server.on('tlsClientError', (err: Error & { code?: string }, tlsSocket: TLSSocket) => {
      // node keeps the raw socket a server-side TLSSocket wraps as `_parent` (no public accessor).
      const raw = (tlsSocket as unknown as { _parent?: Socket })._parent;
      if (raw !== undefined && refused.has(raw)) return;
      acceptor.handshakeFailed(err.message, err.code);
    });
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
