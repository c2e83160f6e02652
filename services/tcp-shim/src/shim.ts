/**
 * TcpShim: a UDP-to-RFC-9329 relay in front of an unmodified, UDP-only IKE daemon (strongSwan has
 * no TCP encapsulation). The daemon is configured with the shim's listen address as its remote
 * peer; the shim carries everything over one TCP (or TLS) stream per daemon to a responder that
 * speaks RFC 9329. This is the "TCP proxy in front of unmodified IKE" idea of seed `000_*`.
 *
 * How this works, per daemon (keyed by its IP address: IKE floats from port 500 to 4500 with NAT-T,
 * and both belong to the same IKE SA and the same stream):
 *
 *   idle        -> a datagram arrives: dial upstream (TCP, or TLS when configured), queue the
 *                  frame (at most maxQueuedBytes; the oldest frames are dropped and counted)
 *   connecting  -> connected (TLS: handshake done): an IketcpStream (originator) writes "IKETCP",
 *                  then the queue follows, in one corked write (RFC 9329 §4, the originator's
 *                  prefix comes first on every new stream)
 *               -> error, close or connectTimeoutMs: drop the queue, hold further dials off for
 *                  retryHoldoffMs (the daemon retransmits; no connect storm at ESP packet rate)
 *   open        -> each datagram becomes one frame; each frame from upstream becomes a datagram
 *               -> upstream closed or reset: back to idle. RFC 9329 §6: the initiator restores a
 *                  broken connection, so the shim (the daemon's side) redials on the next datagram.
 *               -> IKE output the responder has not read passes maxQueuedBytes: the stream is
 *                  closed (ike_output_overflow) and redialled on the next datagram; ESP past it is
 *                  dropped (backpressure).
 *
 * Daemon -> upstream (RFC 9329 §3):
 *   port 500 socket:  the payload is an IKE message          -> IKE frame
 *   port 4500 socket: classifyUdpPayload (RFC 3948)
 *                       non-ESP marker + IKE                 -> IKE frame, marker stripped
 *                       ESP (non-zero SPI)                   -> ESP frame
 *                       0xFF NAT-keepalive                   -> dropped (never sent on TCP), counted
 * Upstream -> daemon:
 *   IKE frame -> from the socket the daemon last used for IKE: 4500 with the non-ESP marker
 *                prepended, or 500 as is
 *   ESP frame -> from the 4500 socket
 *   keepalive / malformed frame -> dropped and counted; RFC 9329 framing error -> stream closed, logged
 * The stream itself (prefix, framing, decoding, output caps) is @ikegate/transport's IketcpStream.
 *
 * Nothing received from the network throws: every bad input is a drop with a reason in
 * `counters.dropsByReason`, every socket error is logged. All timers are unref'd and cleared by
 * close().
 */
import dgram from 'node:dgram';
import { createWriteStream, type WriteStream } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import { espFrameLength, IKE_HEADER_SIZE, ikeFrameLength, MAX_FRAME_LENGTH } from '@ikegate/iketcp';
import { DialError, dialStream, IketcpStream, type IketcpStreamEvent } from '@ikegate/transport';

import { LocalUsageError } from './errors.js';
import type { ShimDropReason, ShimEvent } from './events.js';

export interface TcpShimTlsOptions {
  /** SNI and the name checked in the certificate. Default: the upstream host when it is a name. */
  readonly servername?: string;
  /** PEM trust anchors (contents, not a path). Default: Node's bundled CAs. */
  readonly ca?: string | Buffer;
  /** Default true. False accepts any certificate (tests, lab setups only). */
  readonly rejectUnauthorized?: boolean;
  /** Appends NSS key-log lines (SSLKEYLOGFILE format) for Wireshark. */
  readonly keylogFile?: string;
}

export interface TcpShimOptions {
  /** UDP sockets the local daemon sends to. Port 0 binds an ephemeral port (see `ports`). */
  readonly listen: { readonly address: string; readonly ikePort?: number; readonly natTPort?: number };
  /** The RFC 9329 responder. Port defaults to 4500. */
  readonly upstream: { readonly host: string; readonly port?: number; readonly tls?: TcpShimTlsOptions };
  /** TCP connect plus TLS handshake. Default 10000 ms. */
  readonly connectTimeoutMs?: number;
  /** Frames held per daemon while connecting, and the send-buffer bound when open. Default 256 KiB. */
  readonly maxQueuedBytes?: number;
  /** After a dial that never connected, datagrams are dropped (not redialled) this long. Default 1000 ms. */
  readonly retryHoldoffMs?: number;
  /** One call per event; `fields` are plain JSON-able values. Must not throw. */
  readonly logger?: (event: ShimEvent, fields: Record<string, unknown>) => void;
}

export interface TcpShimCounters {
  /** Datagrams received from the daemon (both sockets, keepalives included). */
  datagramsIn: number;
  /** Frames written upstream. */
  framesOut: number;
  /** IKE and ESP frames decoded from upstream. */
  framesIn: number;
  /** Datagrams sent to the daemon (counted when the send completed). */
  datagramsOut: number;
  /** NAT-keepalives from the daemon, dropped (RFC 9329 §3). */
  keepalivesDropped: number;
  /** Dials after a daemon's first one. */
  reconnects: number;
  dropsByReason: Partial<Record<ShimDropReason, number>>;
}

type SessionState = 'idle' | 'connecting' | 'open';
type DaemonSocket = 'ike' | 'natT';

/** A frame waiting for the stream; `bytes` (an IKE message or ESP packet) is owned here. */
interface QueuedFrame {
  readonly kind: 'ike' | 'esp';
  readonly bytes: Uint8Array;
}

interface Session {
  readonly daemon: string;
  /** The daemon's source port as seen on each of our sockets. */
  ikeRemotePort: number | undefined;
  natTRemotePort: number | undefined;
  /** Where the daemon last sent IKE from; replies go back the same way. */
  lastIkeVia: DaemonSocket;
  state: SessionState;
  /** State 'open': the stream to the responder. */
  stream: IketcpStream | undefined;
  /** Settles when the stream's socket has closed (close() waits for it). */
  streamGone: Promise<void> | undefined;
  /** State 'connecting': aborting gives the dial up. */
  dialing: AbortController | undefined;
  /** Settles once the dial in progress has been handled (close() waits for it). */
  dialDone: Promise<void> | undefined;
  /** Frames waiting for the stream to connect, in octets on the stream: `queuedBytes`. */
  queue: QueuedFrame[];
  queuedBytes: number;
  dials: number;
  holdoffUntil: number;
  /** Octets of a partial frame the stream discarded when it ended (for the upstream_closed log). */
  discarded: number;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
const DEFAULT_MAX_QUEUED_BYTES = 256 * 1024;
const DEFAULT_RETRY_HOLDOFF_MS = 1000;

function checkPort(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_BAD_OPTION', `${name} must be 0..65535, got ${value}`);
  }
}

function checkPositive(name: string, value: number): void {
  if (!Number.isFinite(value) || value <= 0) {
    throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_BAD_OPTION', `${name} must be > 0, got ${value}`);
  }
}

function errorFields(err: unknown): Record<string, unknown> {
  if (err instanceof DialError) {
    return { error: err.cause instanceof Error ? err.cause.message : err.message, code: err.reason };
  }
  if (err instanceof Error) {
    return { error: err.message, code: (err as NodeJS.ErrnoException).code };
  }
  return { error: String(err) };
}

export class TcpShim {
  readonly counters: TcpShimCounters = {
    datagramsIn: 0,
    framesOut: 0,
    framesIn: 0,
    datagramsOut: 0,
    keepalivesDropped: 0,
    reconnects: 0,
    dropsByReason: {},
  };
  readonly #listen: { address: string; ikePort: number; natTPort: number };
  readonly #upstream: { host: string; port: number; tls: TcpShimTlsOptions | undefined };
  readonly #connectTimeoutMs: number;
  readonly #maxQueuedBytes: number;
  readonly #retryHoldoffMs: number;
  readonly #log: (event: ShimEvent, fields: Record<string, unknown>) => void;
  readonly #sessions = new Map<string, Session>();
  #ikeSocket: dgram.Socket | undefined;
  #natTSocket: dgram.Socket | undefined;
  #keylog: WriteStream | undefined;
  #started = false;
  #closing = false;

  /** @throws LocalUsageError for options out of range. */
  constructor(options: TcpShimOptions) {
    const ikePort = options.listen.ikePort ?? 500;
    const natTPort = options.listen.natTPort ?? 4500;
    const upstreamPort = options.upstream.port ?? 4500;
    checkPort('listen.ikePort', ikePort);
    checkPort('listen.natTPort', natTPort);
    checkPort('upstream.port', upstreamPort);
    if (upstreamPort === 0) {
      throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_BAD_OPTION', 'upstream.port cannot be 0');
    }
    if (!net.isIP(options.listen.address)) {
      throw new LocalUsageError(
        'IKEGATE_ERR_TCP_SHIM_BAD_OPTION',
        `listen.address must be an IP address, got ${JSON.stringify(options.listen.address)}`,
      );
    }
    if (options.upstream.host.length === 0) {
      throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_BAD_OPTION', 'upstream.host is empty');
    }
    this.#connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    this.#maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    this.#retryHoldoffMs = options.retryHoldoffMs ?? DEFAULT_RETRY_HOLDOFF_MS;
    checkPositive('connectTimeoutMs', this.#connectTimeoutMs);
    checkPositive('maxQueuedBytes', this.#maxQueuedBytes);
    if (!Number.isFinite(this.#retryHoldoffMs) || this.#retryHoldoffMs < 0) {
      throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_BAD_OPTION', 'retryHoldoffMs must be >= 0');
    }
    this.#listen = { address: options.listen.address, ikePort, natTPort };
    this.#upstream = { host: options.upstream.host, port: upstreamPort, tls: options.upstream.tls };
    const logger = options.logger;
    this.#log = (event, fields) => {
      if (logger === undefined) return;
      try {
        logger(event, fields);
      } catch {
        // A broken logger must not take the relay down.
      }
    };
  }

  /** The bound UDP ports (meaningful after start(); useful with port 0). */
  get ports(): { ike: number; natT: number } {
    if (this.#ikeSocket === undefined || this.#natTSocket === undefined) {
      throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_USAGE', 'ports are known after start()');
    }
    return { ike: this.#ikeSocket.address().port, natT: this.#natTSocket.address().port };
  }

  /** Daemons currently known, with their stream state (for status output and tests). */
  sessions(): { daemon: string; state: SessionState; lastIkeVia: DaemonSocket; queuedBytes: number }[] {
    return [...this.#sessions.values()].map((s) => ({
      daemon: s.daemon,
      state: s.state,
      lastIkeVia: s.lastIkeVia,
      queuedBytes: s.queuedBytes,
    }));
  }

  /**
   * Binds both UDP sockets (and opens the keylog file). Rejects if a bind fails, after releasing
   * whatever was bound. @throws LocalUsageError if called twice.
   */
  async start(): Promise<void> {
    if (this.#started) throw new LocalUsageError('IKEGATE_ERR_TCP_SHIM_USAGE', 'start() called twice');
    this.#started = true;
    const type = net.isIPv6(this.#listen.address) ? 'udp6' : 'udp4';
    try {
      this.#ikeSocket = await this.#bind(type, this.#listen.ikePort, 'ike');
      this.#natTSocket = await this.#bind(type, this.#listen.natTPort, 'natT');
    } catch (err) {
      await this.close();
      throw err;
    }
    const keylogFile = this.#upstream.tls?.keylogFile;
    if (keylogFile !== undefined) {
      this.#keylog = createWriteStream(keylogFile, { flags: 'a', mode: 0o600 });
      this.#keylog.on('error', (err) => this.#log('keylog_error', { file: keylogFile, ...errorFields(err) }));
    }
    this.#log('listening', { address: this.#listen.address, ...this.ports });
  }

  /** Closes the UDP sockets and every upstream stream, clears timers, flushes the keylog. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const waits: Promise<unknown>[] = [];
    for (const s of this.#sessions.values()) {
      if (s.dialing !== undefined && s.dialDone !== undefined) {
        s.dialing.abort();
        waits.push(s.dialDone);
      }
      if (s.stream !== undefined && s.streamGone !== undefined) {
        waits.push(s.streamGone);
        s.stream.close('shim_closed');
      }
    }
    for (const sock of [this.#ikeSocket, this.#natTSocket]) {
      if (sock === undefined) continue;
      waits.push(
        new Promise<void>((resolve) => {
          try {
            sock.close(() => resolve());
          } catch {
            resolve(); // already closed
          }
        }),
      );
    }
    const keylog = this.#keylog;
    if (keylog !== undefined) waits.push(new Promise((resolve) => keylog.end(resolve)));
    await Promise.all(waits);
    this.#log('closed', { counters: this.counters });
  }

  #bind(type: 'udp4' | 'udp6', port: number, which: DaemonSocket): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type });
      const onError = (err: Error): void => {
        sock.close();
        reject(err);
      };
      sock.once('error', onError);
      sock.bind({ address: this.#listen.address, port }, () => {
        sock.off('error', onError);
        sock.on('error', (err) => this.#log('udp_error', { socket: which, ...errorFields(err) }));
        sock.on('message', (msg, rinfo) =>
          which === 'ike' ? this.#onIkeDatagram(msg, rinfo) : this.#onNatTDatagram(msg, rinfo),
        );
        resolve(sock);
      });
    });
  }

  #drop(reason: ShimDropReason, n = 1): void {
    this.counters.dropsByReason[reason] = (this.counters.dropsByReason[reason] ?? 0) + n;
  }

  #session(daemon: string): Session {
    let s = this.#sessions.get(daemon);
    if (s === undefined) {
      s = {
        daemon,
        ikeRemotePort: undefined,
        natTRemotePort: undefined,
        lastIkeVia: 'ike',
        state: 'idle',
        stream: undefined,
        streamGone: undefined,
        dialing: undefined,
        dialDone: undefined,
        queue: [],
        queuedBytes: 0,
        dials: 0,
        holdoffUntil: 0,
        discarded: 0,
      };
      this.#sessions.set(daemon, s);
    }
    return s;
  }

  /** Port 500: the payload is a bare IKE message (RFC 7296 §2.23). */
  #onIkeDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closing) return;
    this.counters.datagramsIn++;
    if (msg.length < IKE_HEADER_SIZE) return this.#drop('udp_short_ike');
    if (ikeFrameLength(msg.length) > MAX_FRAME_LENGTH) return this.#drop('too_large');
    const s = this.#session(rinfo.address);
    s.ikeRemotePort = rinfo.port;
    s.lastIkeVia = 'ike';
    this.#sendUpstream(s, 'ike', msg);
  }

  /** Port 4500: IKE after a non-ESP marker, ESP, or a NAT-keepalive (RFC 3948 §2). */
  #onNatTDatagram(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (this.#closing) return;
    this.counters.datagramsIn++;
    const c = classifyUdpPayload(msg);
    switch (c.kind) {
      case 'keepalive':
        // RFC 9329 §3: NAT-keepalives are not sent over TCP. It still tells us where the daemon is.
        this.#session(rinfo.address).natTRemotePort = rinfo.port;
        this.counters.keepalivesDropped++;
        return;
      case 'drop':
        return this.#drop(`udp_${c.reason}`);
      case 'ike': {
        if (ikeFrameLength(c.message.length) > MAX_FRAME_LENGTH) return this.#drop('too_large');
        const s = this.#session(rinfo.address);
        s.natTRemotePort = rinfo.port;
        s.lastIkeVia = 'natT';
        // The marker is not used on TCP: the frame carries its own (RFC 9329 §3).
        return this.#sendUpstream(s, 'ike', c.message);
      }
      case 'esp': {
        if (espFrameLength(c.packet.length) > MAX_FRAME_LENGTH) return this.#drop('too_large');
        const s = this.#session(rinfo.address);
        s.natTRemotePort = rinfo.port;
        return this.#sendUpstream(s, 'esp', c.packet);
      }
    }
  }

  /**
   * `bytes` (an IKE message or ESP packet) is a view of the datagram node handed us, fresh per
   * datagram: the queue may keep it without a copy.
   */
  #sendUpstream(s: Session, kind: 'ike' | 'esp', bytes: Uint8Array): void {
    if (s.state === 'open' && s.stream !== undefined) {
      const r = kind === 'ike' ? s.stream.sendIke(bytes) : s.stream.sendEsp(bytes);
      if (r === 'sent') this.counters.framesOut++;
      else this.#drop(r === 'congested' ? 'backpressure' : 'upstream_closed');
      return;
    }
    if (s.state === 'idle') {
      if (performance.now() < s.holdoffUntil) return this.#drop('upstream_holdoff');
      this.#dial(s);
    }
    s.queue.push({ kind, bytes });
    s.queuedBytes += kind === 'ike' ? ikeFrameLength(bytes.length) : espFrameLength(bytes.length);
    while (s.queuedBytes > this.#maxQueuedBytes) {
      const oldest = s.queue.shift();
      if (oldest === undefined) break;
      s.queuedBytes -=
        oldest.kind === 'ike' ? ikeFrameLength(oldest.bytes.length) : espFrameLength(oldest.bytes.length);
      this.#drop('queue_overflow');
    }
  }

  #dial(s: Session): void {
    const reconnect = s.dials > 0;
    s.dials++;
    if (reconnect) this.counters.reconnects++;
    const up = this.#upstream;
    this.#log('upstream_connecting', {
      daemon: s.daemon,
      upstream: `${up.host}:${up.port}`,
      tls: up.tls !== undefined,
      reconnect,
    });
    s.state = 'connecting';
    const dialing = new AbortController();
    s.dialing = dialing;
    const keylog = this.#keylog;
    const t = up.tls;
    s.dialDone = dialStream({
      transport: t !== undefined ? 'tls' : 'tcp',
      host: up.host,
      port: up.port,
      timeoutMs: this.#connectTimeoutMs,
      signal: dialing.signal,
      ...(t !== undefined
        ? {
            tls: {
              rejectUnauthorized: t.rejectUnauthorized ?? true,
              ...(t.servername !== undefined ? { servername: t.servername } : {}),
              ...(t.ca !== undefined ? { ca: t.ca } : {}),
              ...(keylog !== undefined ? { onKeylog: (line: Buffer) => void keylog.write(line) } : {}),
            },
          }
        : {}),
    }).then(
      (socket) => this.#opened(s, dialing, socket),
      (err: unknown) => this.#dialFailed(s, dialing, err),
    );
  }

  #opened(s: Session, dialing: AbortController, socket: net.Socket): void {
    if (s.dialing !== dialing || this.#closing) {
      socket.destroy(); // close() came first
      return;
    }
    s.dialing = undefined;
    s.discarded = 0;
    socket.on('error', (err) => this.#log('upstream_error', { daemon: s.daemon, ...errorFields(err) }));
    s.streamGone = new Promise((resolve) => socket.once('close', () => resolve()));
    // The prefix and everything queued go out in one write, prefix first (RFC 9329 §4).
    socket.cork();
    const stream: IketcpStream = new IketcpStream(socket, {
      role: 'originator',
      maxEspBuffer: this.#maxQueuedBytes,
      maxIkeBuffer: this.#maxQueuedBytes,
      onEvent: (e) => this.#onUpstreamEvent(s, stream, e),
    });
    const queue = s.queue;
    s.queue = [];
    s.queuedBytes = 0;
    s.state = 'open';
    s.stream = stream;
    let flushed = 0;
    for (const f of queue) {
      if ((f.kind === 'ike' ? stream.sendIke(f.bytes) : stream.sendEsp(f.bytes)) === 'sent') flushed++;
    }
    socket.uncork();
    this.counters.framesOut += flushed;
    this.#log('upstream_connected', {
      daemon: s.daemon,
      local: `${socket.localAddress}:${socket.localPort}`,
      flushedFrames: flushed,
    });
  }

  #dialFailed(s: Session, dialing: AbortController, err: unknown): void {
    if (s.dialing !== dialing) return;
    s.dialing = undefined;
    const reason = err instanceof DialError ? err.reason : 'error';
    if (reason === 'timeout') {
      this.#log('upstream_connect_timeout', { daemon: s.daemon, timeoutMs: this.#connectTimeoutMs });
    } else if (reason !== 'aborted') {
      this.#log('upstream_error', { daemon: s.daemon, ...errorFields(err) });
    }
    this.#upstreamGone(s, { hadError: reason !== 'timeout' && reason !== 'aborted', opened: false, reason });
  }

  /** Views in `e` are valid during this call only: what goes to the daemon is copied first. */
  #onUpstreamEvent(s: Session, stream: IketcpStream, e: IketcpStreamEvent): void {
    if (s.stream !== stream) return;
    switch (e.kind) {
      case 'ike':
        this.counters.framesIn++;
        this.#sendIkeToDaemon(s, e.message);
        return;
      case 'esp':
        this.counters.framesIn++;
        if (s.natTRemotePort === undefined) this.#drop('no_natt_port');
        else this.#sendToDaemon(this.#natTSocket, s.daemon, s.natTRemotePort, e.packet.slice());
        return;
      case 'keepalive':
        this.#drop('upstream_keepalive');
        return;
      case 'drop':
        if (e.reason === 'truncated') s.discarded += e.octets;
        else this.#drop(`upstream_${e.reason}`);
        return;
      case 'close':
        if (e.origin === 'protocol')
          this.#log('upstream_protocol_error', { daemon: s.daemon, reason: e.reason });
        this.#upstreamGone(s, {
          hadError: e.reason === 'reset' || e.reason === 'error',
          opened: true,
          reason: e.reason,
        });
        return;
    }
  }

  /** The stream (or the dial) is over: back to idle; what waited for it is dropped and counted. */
  #upstreamGone(s: Session, how: { hadError: boolean; opened: boolean; reason: string }): void {
    const droppedQueued = s.queue.length;
    if (droppedQueued > 0) this.#drop('upstream_closed', droppedQueued);
    s.queue = [];
    s.queuedBytes = 0;
    s.stream = undefined;
    s.state = 'idle';
    if (!how.opened) s.holdoffUntil = performance.now() + this.#retryHoldoffMs;
    this.#log('upstream_closed', {
      daemon: s.daemon,
      hadError: how.hadError,
      opened: how.opened,
      droppedQueued,
      discarded: s.discarded,
      reason: how.reason,
    });
    s.discarded = 0;
  }

  #sendIkeToDaemon(s: Session, message: Uint8Array): void {
    if (s.lastIkeVia === 'natT' && s.natTRemotePort !== undefined) {
      // encodeNonEspMarker copies the view into a fresh datagram.
      this.#sendToDaemon(this.#natTSocket, s.daemon, s.natTRemotePort, encodeNonEspMarker(message));
    } else if (s.ikeRemotePort !== undefined) {
      this.#sendToDaemon(this.#ikeSocket, s.daemon, s.ikeRemotePort, message.slice());
    } else {
      this.#drop('no_daemon');
    }
  }

  #sendToDaemon(sock: dgram.Socket | undefined, address: string, port: number, data: Uint8Array): void {
    if (sock === undefined || this.#closing) return this.#drop('no_daemon');
    sock.send(data, port, address, (err) => {
      if (err) {
        this.#drop('udp_send_error');
        this.#log('udp_error', { socket: sock === this.#ikeSocket ? 'ike' : 'natT', ...errorFields(err) });
      } else {
        this.counters.datagramsOut++;
      }
    });
  }
}
