/**
 * A multiplexing Connector: the edge side of one initiator Worker that holds many IKE SAs.
 *
 * - UDP: a few shared sockets (SA i uses socket i mod n). IKE_SA_INIT goes to the server's IKE port,
 *   everything after to its NAT-T port behind the non-ESP marker (RFC 7296 §2.23, RFC 3948), as in
 *   `ikegate connect`. Responses are handed to the Worker, which routes them by IKE SPI.
 * - TCP/TLS: one RFC 9329 stream (an IketcpStream) per IKE SA, the realistic load (each client has
 *   its own stream).
 *
 * Frames the Worker sends name their stream by `PeerPath.connection`.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIPv4 } from 'node:net';
import type { EdgeLink, OutboundFrame, PeerPath, SendResult } from '@ikegate/cluster';
import { classifyUdpPayload, encodeNonEspMarker } from '@ikegate/esp';
import { dialStream, IketcpStream } from '@ikegate/transport';

const EXCHANGE_IKE_SA_INIT = 34;

export interface MuxPorts {
  readonly ike: number;
  readonly natT: number;
  readonly tcp: number;
  readonly tls: number;
}

export type Deliver = (kind: 'ike' | 'esp', bytes: Uint8Array, path: PeerPath) => void;

export class MuxConnector implements EdgeLink {
  readonly #udp = new Map<string, UdpSocket>();
  readonly #udpPaths: PeerPath[] = [];
  readonly #streams = new Map<string, IketcpStream>();
  /** Gives up the dials in progress on close(). */
  readonly #dialing = new AbortController();
  #nextStream = 1;
  #closed = false;
  /** Called when a stream closes (not after `close()`), with its connection id. */
  onStreamClosed: ((connection: string) => void) | undefined;

  constructor(
    private readonly server: string,
    private readonly ports: MuxPorts,
    private readonly deliver: Deliver,
    private readonly tlsOptions: { readonly insecure: boolean; readonly ca?: Uint8Array | string } = {
      insecure: false,
    },
  ) {}

  /** Opens `n` UDP sockets (bound to ephemeral ports). */
  async openUdp(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const s = createSocket({ type: isIPv4(this.server) ? 'udp4' : 'udp6', recvBufferSize: 4 << 20 });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.bind(0, () => {
          s.removeListener('error', reject);
          resolve();
        });
      });
      const path: PeerPath = {
        connection: `udp:${s.address().port}`,
        transport: 'udp',
        local: { address: s.address().address, port: s.address().port },
        remote: { address: this.server, port: this.ports.natT },
      };
      s.on('message', (m, rinfo) => {
        const bytes = new Uint8Array(m.buffer, m.byteOffset, m.byteLength);
        if (rinfo.port === this.ports.ike) return this.deliver('ike', bytes, path);
        const c = classifyUdpPayload(bytes);
        if (c.kind === 'ike') this.deliver('ike', c.message, path);
        else if (c.kind === 'esp') this.deliver('esp', c.packet, path);
      });
      s.on('error', () => undefined); // ICMP errors: the SA's retransmissions and timeout account for it
      this.#udp.set(path.connection, s);
      this.#udpPaths.push(path);
    }
  }

  /** The shared UDP path for SA number `i`. */
  udpPath(i: number): PeerPath {
    const p = this.#udpPaths[i % this.#udpPaths.length];
    if (!p) throw new Error('openUdp() first');
    return p;
  }

  /**
   * Opens one RFC 9329 stream (an IketcpStream, originator: the IKETCP prefix goes first). Rejects
   * with DialError (@ikegate/transport) on a connect or TLS error, or after `timeoutMs`.
   */
  async openStream(transport: 'tcp' | 'tls', timeoutMs: number): Promise<PeerPath> {
    if (this.#closed) throw new Error('connector closed');
    const port = transport === 'tls' ? this.ports.tls : this.ports.tcp;
    const socket = await dialStream({
      transport,
      host: this.server,
      port,
      timeoutMs,
      signal: this.#dialing.signal,
      tls: {
        rejectUnauthorized: !this.tlsOptions.insecure,
        ...(this.tlsOptions.ca ? { ca: this.tlsOptions.ca } : {}),
      },
    });
    if (this.#closed) {
      socket.destroy();
      throw new Error('connector closed');
    }
    const connection = `${transport}:${this.#nextStream++}`;
    const path: PeerPath = {
      connection,
      transport,
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      remote: { address: this.server, port },
    };
    const stream: IketcpStream = new IketcpStream(socket, {
      role: 'originator',
      onEvent: (e) => {
        switch (e.kind) {
          case 'ike':
          case 'esp':
            // Copied: the Worker may keep it past this call.
            return this.deliver(e.kind, (e.kind === 'ike' ? e.message : e.packet).slice(), path);
          case 'close':
            if (this.#streams.get(connection) !== stream) return; // closeStream() or close()
            this.#streams.delete(connection);
            if (!this.#closed) this.onStreamClosed?.(connection);
            return;
          case 'keepalive':
          case 'drop':
            return;
        }
      },
    });
    this.#streams.set(connection, stream);
    return path;
  }

  /** Closes one stream (quietly: no onStreamClosed). */
  closeStream(connection: string): void {
    const s = this.#streams.get(connection);
    this.#streams.delete(connection);
    s?.close('loadgen_done');
  }

  get streams(): number {
    return this.#streams.size;
  }

  send(frame: OutboundFrame): SendResult {
    if (this.#closed) return 'no-connection';
    const udp = this.#udp.get(frame.path.connection);
    if (udp) {
      if (frame.kind === 'ike' && frame.bytes[18] === EXCHANGE_IKE_SA_INIT) {
        udp.send(frame.bytes, this.ports.ike, this.server);
      } else {
        const bytes = frame.kind === 'ike' ? encodeNonEspMarker(frame.bytes) : frame.bytes;
        udp.send(bytes, this.ports.natT, this.server);
      }
      return 'sent';
    }
    const s = this.#streams.get(frame.path.connection);
    if (!s) return 'no-connection';
    const r =
      frame.kind === 'ike'
        ? s.sendIke(
            frame.bytes,
            frame.closeAfter !== undefined ? { closeAfter: frame.closeAfter } : undefined,
          )
        : s.sendEsp(frame.bytes);
    return r === 'closed' ? 'no-connection' : r;
  }

  close(): void {
    this.#closed = true;
    this.#dialing.abort();
    for (const s of this.#udp.values()) s.close();
    this.#udp.clear();
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    for (const s of streams) s.close('loadgen_done');
  }
}
