/**
 * In-memory binds (STYLE.md rule 8): they stand where NodeUdpBind, NodeTcpListener and
 * NodeTlsListener stand, so a service is unit-tested without root, sockets or a network. A test
 * plays the peers: it injects datagrams and reads what was sent, or connects a MemoryStreamPeer
 * and writes, reads, ends or resets its side of the connection.
 */
import type {
  DatagramBind,
  DatagramReceiver,
  Endpoint,
  ResponderBinds,
  StreamAcceptor,
  StreamListener,
  StreamTransport,
} from '../binds.js';
import { LocalUsageError } from '../errors.js';
import { MemoryDuplex } from './memory-duplex.js';

export interface SentDatagram {
  readonly datagram: Uint8Array;
  readonly address: string;
  readonly port: number;
}

/** A UDP port: `inject` is a peer's datagram arriving, `sent` is what the owner sent (copied). */
export class MemoryDatagramBind implements DatagramBind {
  readonly sent: SentDatagram[] = [];
  #receive: DatagramReceiver | undefined;
  #closed = false;

  constructor(readonly local: Endpoint) {}

  open(receive: DatagramReceiver): Promise<Endpoint> {
    if (this.#receive || this.#closed) {
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'open() called twice'));
    }
    this.#receive = receive;
    return Promise.resolve(this.local);
  }

  send(datagram: Uint8Array, address: string, port: number): void {
    if (!this.#receive || this.#closed) return;
    this.sent.push({ datagram: Uint8Array.from(datagram), address, port });
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#receive = undefined;
    return Promise.resolve();
  }

  /** A datagram from `address`:`port` arrives (a fresh copy, as from a socket). False when not open. */
  inject(datagram: Uint8Array, address: string, port: number): boolean {
    if (!this.#receive) return false;
    this.#receive(Uint8Array.from(datagram), address, port);
    return true;
  }
}

/** The peer's end of one connection to a MemoryStreamListener. */
export class MemoryStreamPeer {
  /** The listener's owner refused it (admit returned false), or nobody listens. */
  readonly refused: boolean;
  readonly #duplex: MemoryDuplex | undefined;
  readonly #chunks: Buffer[] = [];
  #reading = true;
  #eof = false;
  #closed: boolean;
  /** Resolves when the owner's end of the connection has closed. */
  readonly closed: Promise<void>;

  constructor(ends: { ours: MemoryDuplex; theirs: MemoryDuplex } | undefined) {
    this.refused = ends === undefined;
    this.#closed = ends === undefined;
    if (!ends) {
      this.closed = Promise.resolve();
      return;
    }
    const d = ends.theirs;
    this.#duplex = d;
    d.on('data', (c: Buffer) => this.#chunks.push(c));
    d.on('end', () => {
      this.#eof = true;
      d.end(); // as a socket with allowHalfOpen false: EOF in, FIN out
    });
    d.on('error', () => undefined);
    this.closed = new Promise((resolve) =>
      ends.ours.once('close', () => {
        this.#closed = true;
        resolve();
      }),
    );
  }

  /** Whether the owner's end is closed (destroyed, or FIN exchanged both ways). */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** Whether this peer read EOF (the owner sent FIN or closed) after everything before it. */
  get readEof(): boolean {
    return this.#eof;
  }

  /** Everything read so far, in one buffer. */
  received(): Buffer {
    return Buffer.concat(this.#chunks);
  }

  write(bytes: Uint8Array): void {
    const d = this.#duplex;
    if (d && !d.destroyed && !d.writableEnded) d.write(bytes);
  }

  /** FIN. */
  end(): void {
    const d = this.#duplex;
    if (d && !d.writableEnded) d.end();
  }

  /** RST: the owner's end fails with ECONNRESET. */
  reset(): void {
    const d = this.#duplex;
    if (d && !d.destroyed) {
      d.destroy(Object.assign(new Error('reset by the test'), { code: 'ECONNRESET' }));
    }
  }

  /** Stops reading: what the owner writes piles up on its side (its writableLength grows). */
  stopReading(): void {
    if (!this.#reading) return;
    this.#reading = false;
    this.#duplex?.pause();
  }

  resumeReading(): void {
    if (this.#reading) return;
    this.#reading = true;
    this.#duplex?.resume();
  }
}

let nextPeerPort = 40_000;

/**
 * A listening TCP or TLS port. `connect` plays a peer: admission, then `accepted` at once (TLS:
 * as if the handshake had succeeded, or `handshakeFailed` when asked), then `released` when the
 * owner's end closes, in the order a real listener keeps.
 */
export class MemoryStreamListener implements StreamListener {
  #acceptor: StreamAcceptor | undefined;
  #closed = false;

  constructor(
    readonly transport: StreamTransport,
    readonly local: Endpoint,
  ) {}

  listen(acceptor: StreamAcceptor): Promise<Endpoint> {
    if (this.#acceptor || this.#closed) {
      return Promise.reject(new LocalUsageError('IKEGATE_ERR_TRANSPORT_USAGE', 'listen() called twice'));
    }
    this.#acceptor = acceptor;
    return Promise.resolve(this.local);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  /**
   * A peer connects from `remote` (default 198.51.100.1, a fresh port). The readable buffer of
   * each end holds `highWaterMark` octets (a socket buffer).
   */
  connect(
    remote: Partial<Endpoint> = {},
    options: { readonly handshake?: 'ok' | 'fail'; readonly highWaterMark?: number } = {},
  ): MemoryStreamPeer {
    const from: Endpoint = { address: remote.address ?? '198.51.100.1', port: remote.port ?? nextPeerPort++ };
    const acceptor = this.#acceptor;
    if (!acceptor || this.#closed || !acceptor.admit(from)) return new MemoryStreamPeer(undefined);
    const [ours, theirs] = MemoryDuplex.pair(options.highWaterMark);
    ours.once('close', () => acceptor.released(from));
    const peer = new MemoryStreamPeer({ ours, theirs });
    if (options.handshake === 'fail') {
      acceptor.handshakeFailed('handshake failed (simulated)');
      ours.destroy();
      return peer;
    }
    acceptor.accepted({ duplex: ours, local: this.local, remote: from });
    return peer;
  }
}

export interface MemoryResponderBinds {
  readonly ike: MemoryDatagramBind;
  readonly natT: MemoryDatagramBind;
  readonly tcp: MemoryStreamListener;
  readonly tls: MemoryStreamListener;
}

/** All four responder binds in memory, on 192.0.2.1 (RFC 5737) ports 500, 4500, 4500 and 443. */
export function memoryResponderBinds(address = '192.0.2.1'): MemoryResponderBinds {
  return {
    ike: new MemoryDatagramBind({ address, port: 500 }),
    natT: new MemoryDatagramBind({ address, port: 4500 }),
    tcp: new MemoryStreamListener('tcp', { address, port: 4500 }),
    tls: new MemoryStreamListener('tls', { address, port: 443 }),
  } satisfies ResponderBinds;
}
