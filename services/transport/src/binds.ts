/**
 * Binds: what a listening service needs from the OS, behind narrow interfaces (wireguard-go's
 * `conn.Bind`), so it can run on real sockets (./node-binds.ts) or on in-memory fakes
 * (./testing) in unit tests without root and without a network.
 *
 * - DatagramBind: one bound UDP port (IKE on 500, RFC 7296 §2.23; NAT-T on 4500, RFC 3948).
 * - StreamListener: one listening TCP or TLS port (RFC 9329, TCP 4500 or TLS 443) that hands
 *   over each accepted connection as a node Duplex, for an IketcpStream.
 */
import type { Duplex } from 'node:stream';
import type { UdpSocketStats } from './udp-socket-stats.js';

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/**
 * One datagram from `address`:`port`. Ownership: `datagram` is valid only during the call (a
 * real bind hands a fresh buffer each time, a fake may reuse one); copy what you keep.
 */
export type DatagramReceiver = (datagram: Uint8Array, address: string, port: number) => void;

export interface DatagramBind {
  /**
   * Binds the port and calls `receive` for every datagram from then on. Resolves with the bound
   * endpoint (the real port when 0 was asked for); rejects if the bind fails. Call once.
   */
  open(receive: DatagramReceiver): Promise<Endpoint>;
  /** A real socket's receive buffer and the kernel's drops at it (undefined before open). */
  stats?(): UdpSocketStats | undefined;
  /**
   * Sends one datagram. Never throws and never reports failure: UDP is best effort, and send
   * errors (ICMP unreachable and the like) are not a reason to stop. The bind may read `datagram`
   * until the datagram is sent: do not modify it afterwards. Before open() or after close(), a no-op.
   */
  send(datagram: Uint8Array, address: string, port: number): void;
  /**
   * As send(), but a bind may hold the datagram (a copy) until the current run of JavaScript ends,
   * to send several to one destination at once (NodeUdpBind: UDP GSO). For ESP; IKE uses send().
   */
  sendCoalesced?(datagram: Uint8Array, address: string, port: number): void;
  /** True when send() is done with `datagram` once it returns (the caller may reuse it then). */
  readonly sendsCopy?: boolean;
  /** Stops receiving and releases the port. Idempotent. */
  close(): Promise<void>;
}

export type StreamTransport = 'tcp' | 'tls';

/** An accepted connection, ready for RFC 9329 (TLS: the handshake is done). */
export interface AcceptedStream {
  /** The connection; whoever takes it (an IketcpStream) owns it from now on. */
  readonly duplex: Duplex;
  readonly local: Endpoint;
  readonly remote: Endpoint;
  /** TLS: the protocol version the handshake agreed on (`TLSv1.3`, `TLSv1.2`). */
  readonly tlsVersion?: string;
}

/**
 * What a StreamListener tells its owner per connection: first `admit` at TCP accept (before any
 * TLS handshake, so caps count from the first SYN); for an admitted one then either `accepted`
 * (TCP: at once; TLS: after the handshake) or `handshakeFailed`; and once, `released` when the TCP
 * connection is gone, whatever became of it (after `accepted`; before or after `handshakeFailed`,
 * as node reports a failed handshake once the socket has closed).
 */
export interface StreamAcceptor {
  /** False refuses the connection: it is destroyed at once, and nothing else is called for it. */
  admit(remote: Endpoint): boolean;
  accepted(stream: AcceptedStream): void;
  /**
   * TLS only: the handshake failed or timed out; `message` says why (for a debug log), `code`
   * is node's error code when it gave one (`ERR_SSL_...`, `ECONNRESET`, `ERR_TLS_HANDSHAKE_TIMEOUT`).
   */
  handshakeFailed(message: string, code?: string): void;
  released(remote: Endpoint): void;
}

export interface StreamListener {
  readonly transport: StreamTransport;
  /** Starts listening. Resolves with the bound endpoint; rejects if listening fails. Call once. */
  listen(acceptor: StreamAcceptor): Promise<Endpoint>;
  /** Stops accepting (connections already accepted stay up). Idempotent. */
  close(): Promise<void>;
}

/**
 * The sockets an IKEv2 responder listens on: UDP 500 (`ike`), UDP 4500 (`natT`), RFC 9329 TCP
 * (`tcp`) and TLS (`tls`). Each is optional.
 */
export interface ResponderBinds {
  readonly ike?: DatagramBind;
  readonly natT?: DatagramBind;
  readonly tcp?: StreamListener;
  readonly tls?: StreamListener;
}
